"""The `lineinspect` command line: verbs that follow the flow of data.

Heavy imports (torch above all) happen inside the commands that need them, so
`inspect` and the service start fast and run where torch is not installed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from annotation.errors import LineInspectError
from serving import cli_accuracy, cli_batch, cli_labelstudio, cli_monitor, cli_ocr, cli_records, cli_serve

console = Console(stderr=True)
app = typer.Typer(help="Defect inspection for manufacturing lines.", no_args_is_help=True, add_completion=False)
dataset_app = typer.Typer(help="Label Studio exports: check what they hold.", no_args_is_help=True)
model_app = typer.Typer(help="Model files: show what they carry.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")
app.add_typer(model_app, name="model")
cli_serve.register(app)  # serve, keys, bench serve
cli_batch.register(app)  # bench inspect
cli_accuracy.register(app)  # bench accuracy
cli_ocr.register(app)  # ocr label|gauge, bench ocr
cli_labelstudio.register(app)  # labelstudio up|down|project|import|pull|predict|connect|send-review
cli_monitor.register(app)  # monitor baseline|alarms|ack|report
cli_records.register(app)  # records export|prune

Exports = Annotated[list[Path], typer.Argument(help="Label Studio export(s): JSON, JSON-MIN or CSV.")]
ImagesRoot = Annotated[
    Path | None, typer.Option(help="Folder the export's image references resolve against (local-files root).")
]
PrefixMap = Annotated[
    list[str] | None,
    typer.Option("--map", help="URL prefix to local folder, e.g. s3://bucket/raw/=/data/raw (repeat)."),
]
FromName = Annotated[str | None, typer.Option(help="The Choices control to read when the project has several.")]
NormalLabels = Annotated[list[str] | None, typer.Option("--normal-label", help="Label Studio label meaning normal.")]
DefectLabels = Annotated[list[str] | None, typer.Option("--defect-label", help="Label Studio label meaning defect.")]
Consensus = Annotated[str, typer.Option(help="Several annotators: majority | unanimous | latest.")]


def import_options(
    images_root: Path | None,
    prefix_map: list[str] | None,
    from_name: str | None,
    normal_labels: list[str] | None,
    defect_labels: list[str] | None,
    consensus: str,
):
    from annotation.exports import ImportOptions

    if consensus not in ("majority", "unanimous", "latest"):
        raise LineInspectError(f"--consensus must be majority, unanimous or latest, not {consensus!r}")
    mapping = {}
    for entry in prefix_map or []:
        prefix, sep, folder = entry.partition("=")
        if not sep or not prefix or not folder:
            raise LineInspectError(f"--map {entry!r}: write it as PREFIX=FOLDER, e.g. s3://bucket/raw/=/data/raw")
        mapping[prefix] = Path(folder)
    return ImportOptions(
        images_root=images_root,
        prefix_map=mapping,
        from_name=from_name,
        normal_labels=tuple(normal_labels or ("normal",)),
        defect_labels=tuple(defect_labels or ("defect",)),
        consensus=consensus,  # type: ignore[arg-type]
    )


@dataset_app.command("check")
def dataset_check(
    exports: Exports,
    images_root: ImagesRoot = None,
    prefix_map: PrefixMap = None,
    from_name: FromName = None,
    normal_label: NormalLabels = None,
    defect_label: DefectLabels = None,
    consensus: Consensus = "majority",
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the full report as JSON.")] = None,
) -> None:
    """Summarise an export: images per class and every problem found. Exits 1 when there are errors."""
    from annotation.exports import load_exports
    from annotation.report import render_report

    options = import_options(images_root, prefix_map, from_name, normal_label, defect_label, consensus)
    manifest = load_exports(exports, options)
    Console().print(render_report(manifest))
    if json_out:
        json_out.write_text(json.dumps(manifest.to_json(), indent=1), encoding="utf-8")
    if manifest.errors:
        raise typer.Exit(1)


@dataset_app.command("from-folders")
def dataset_from_folders(
    root: Annotated[Path, typer.Argument(help="Folder whose sub-folders are named after labels (e.g. ok/, scratch/).")],
    out: Annotated[Path, typer.Option(help="Export file to write.")],
    fmt: Annotated[str, typer.Option("--format", help="json | json-min | csv")] = "json",
) -> None:
    """Write a Label Studio export for images already sorted into label folders."""
    from annotation.export_writer import tasks_from_folders, write_export

    if fmt not in ("json", "json-min", "csv"):
        raise LineInspectError(f"--format must be json, json-min or csv, not {fmt!r}")
    if not root.is_dir():
        raise LineInspectError(f"not a folder: {root}")
    tasks = tasks_from_folders(root)
    if not tasks:
        raise LineInspectError(f"no images under {root}")
    write_export(tasks, out, fmt)  # type: ignore[arg-type]
    labels = sorted({t["annotations"][0]["result"][0]["value"]["choices"][0] for t in tasks})
    console.print(f"wrote {out}: {len(tasks)} tasks, labels {', '.join(labels)}; use --images-root {root}")


@dataset_app.command("sample")
def dataset_sample(
    out: Annotated[Path, typer.Argument(help="Folder for the images, export.json and README.txt.")],
    normal: Annotated[int, typer.Option(help="Number of normal images.")] = 300,
    defect: Annotated[int, typer.Option(help="Number of defect images.")] = 300,
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = 256,
    texture: Annotated[
        list[str] | None, typer.Option(help="Surface(s) to draw: brushed, machined, cast, painted, knurled (repeat).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 0,
) -> None:
    """Generate synthetic normal/defect surface images with a Label Studio export pointing at them."""
    from vision.sample_data import TEXTURES, generate

    data = generate(out, normal, defect, size=(size, size), seed=seed, textures=texture or TEXTURES)
    console.print(f"wrote {len(data.images)} images and {data.export}; use --images-root {data.root}")


@app.command()
def train(
    exports: Exports,
    out: Annotated[Path, typer.Option(help="Run folder for checkpoints, split and history.")],
    images_root: ImagesRoot = None,
    config: Annotated[
        Path | None, typer.Option(help="Training recipe YAML (default: configs/train/default.yaml).")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a recipe key: train.epochs=5 (repeat).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    prefix_map: PrefixMap = None,
    from_name: FromName = None,
    normal_label: NormalLabels = None,
    defect_label: DefectLabels = None,
    consensus: Consensus = "majority",
) -> None:
    """Train a classifier on Label Studio export(s)."""
    from annotation.exports import load_exports
    from annotation.report import render_report
    from vision.recipe import load_recipe
    from vision.train import train as run_training

    recipe = load_recipe(config, parse_overrides(set_ or []))
    manifest = load_exports(
        exports, import_options(images_root, prefix_map, from_name, normal_label, defect_label, consensus)
    )
    if manifest.problems:
        console.print(render_report(manifest))
    result = run_training(manifest, recipe, out, resume=resume, console=console)
    console.print(f"trained in {result.seconds:.0f} s; next: lineinspect export {out} --out model.onnx")


@app.command("export")
def export_cmd(
    run: Annotated[Path, typer.Argument(help="Run folder written by `lineinspect train`.")],
    out: Annotated[Path, typer.Option(help="ONNX file to write.")],
    miss_rate: Annotated[
        float | None, typer.Option(help="Allowed fraction of defects passed as normal (95% upper bound).")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Write the model even when its holdout ROC-AUC cannot be told from chance.")
    ] = False,
) -> None:
    """Export the best checkpoint to ONNX, check parity with PyTorch and calibrate the threshold."""
    from vision.export import export_run

    if miss_rate is not None and not 0 < miss_rate < 1:
        raise LineInspectError(f"--miss-rate must be between 0 and 1 (a fraction), not {miss_rate}")
    export_run(run, out, miss_rate=miss_rate, console=console, force=force)


@app.command()
def evaluate(
    model: Annotated[Path, typer.Argument(help="ONNX model written by `lineinspect export`.")],
    exports: Exports,
    out: Annotated[Path, typer.Option(help="Folder for metrics.json, predictions.csv and plots.")],
    images_root: ImagesRoot = None,
    prefix_map: PrefixMap = None,
    from_name: FromName = None,
    normal_label: NormalLabels = None,
    defect_label: DefectLabels = None,
    consensus: Consensus = "majority",
) -> None:
    """Evaluate a model on labelled data at its operating point."""
    from annotation.exports import load_exports
    from vision.evaluate import evaluate_model

    manifest = load_exports(
        exports, import_options(images_root, prefix_map, from_name, normal_label, defect_label, consensus)
    )
    result = evaluate_model(model, manifest, out, console=console)
    print_metrics(result.metrics)
    console.print(f"wrote {', '.join(str(p) for p in result.files.values())}")


@app.command()
def inspect(
    model: Annotated[Path, typer.Argument(help="ONNX model written by `lineinspect export`.")],
    inputs: Annotated[
        list[str], typer.Argument(help="Folders, image files, globs, file lists (.txt) or Label Studio exports.")
    ],
    out: Annotated[Path, typer.Option(help="Output, one row per image: .csv, .jsonl or .parquet.")] = Path(
        "results.csv"
    ),
    fmt: Annotated[str | None, typer.Option("--format", help="csv | jsonl | parquet (default: from --out).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the interrupted run that was writing --out.")] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=1024)] = 32,
    workers: Annotated[int | None, typer.Option(min=1, help="Decode worker processes (default: one per core).")] = None,
    engine: Annotated[
        str, typer.Option(help="local (worker processes) | ray (Ray Data: pip install 'lineinspect[cluster]').")
    ] = "local",
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster for --engine ray (default: a local instance of --workers CPUs).")
    ] = None,
    heatmaps: Annotated[
        Path | None, typer.Option(help="Folder for heatmap overlays: where the model saw the defect (PNG per image).")
    ] = None,
    heatmaps_for: Annotated[str, typer.Option(help="Heatmaps for: defects (defect verdicts) | all.")] = "defects",
    images_root: ImagesRoot = None,
    prefix_map: PrefixMap = None,
    from_name: FromName = None,
    normal_label: NormalLabels = None,
    defect_label: DefectLabels = None,
    report: Annotated[
        Path | None, typer.Option(help="Also write a self-contained HTML report of the run (open it in a browser).")
    ] = None,
) -> None:
    """Inspect images offline with an ONNX model: parallel decoding, batched inference, resumable."""
    from contextlib import nullcontext

    from serving.batch.heatmaps import HeatmapWriter
    from serving.batch.ray_engine import RayEngine
    from serving.batch.run import inspect_paths
    from serving.offline import collect_inputs
    from vision.onnx_model import OnnxClassifier

    if engine not in ("local", "ray"):
        raise LineInspectError(f"--engine must be local or ray, not {engine!r}")
    if engine == "local" and ray_address:
        raise LineInspectError("--ray-address goes with --engine ray")
    if engine == "ray" and heatmaps is not None:
        raise LineInspectError("--heatmaps runs on the local engine only: leave out --engine ray")
    classifier = OnnxClassifier(model)
    writer = HeatmapWriter(heatmaps, classifier, heatmaps_for) if heatmaps is not None else None
    options = import_options(images_root, prefix_map, from_name, normal_label, defect_label, "majority")
    found = collect_inputs(inputs, options)
    if not found:
        raise LineInspectError(f"no images found in {' '.join(inputs)}")
    with RayEngine(ray_address, workers) if engine == "ray" else nullcontext() as ray:
        summary = inspect_paths(classifier, found, out, fmt, batch_size, workers, resume, console, writer, ray)
    console.print(
        f"{summary.images} images: {summary.defects} defect, {summary.images - summary.defects - summary.errors} "
        f"normal, {summary.errors} unreadable; {summary.throughput:.1f} img/s; wrote {summary.out}",
        highlight=False,
    )
    if writer is not None:
        console.print(f"wrote {writer.written} heatmaps to {heatmaps}", highlight=False)
    if report is not None:
        from serving.batch.output import read_rows
        from serving.batch.report import write_report

        write_report(read_rows(summary.out), classifier.meta, report, summary.seconds, heatmaps)
        console.print(f"wrote {report}")


@model_app.command("info")
def model_info(model: Annotated[Path, typer.Argument(help="ONNX model file.")]) -> None:
    """Print the metadata a model carries (JSON)."""
    from vision.metadata import read_metadata

    print(read_metadata(model).model_dump_json(indent=2))


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the sample data, run, model and results.")] = Path(
        "demo-output"
    ),
    config: Annotated[Path | None, typer.Option(help="Recipe (default: configs/train/demo.yaml).")] = None,
) -> None:
    """The whole chain on generated sample data: data -> check -> train -> export -> evaluate -> inspect."""
    from serving.demo import run_demo

    run_demo(out, config, console)


def parse_overrides(entries: list[str]) -> dict:
    import yaml

    overrides = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key:
            raise LineInspectError(f"--set {entry!r}: write it as key=value, e.g. train.epochs=5")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def print_metrics(metrics: dict) -> None:
    from vision.metrics import interval_text

    op = metrics.get("operating_point", {})
    console.print(
        f"images {metrics['n']} ({metrics['n_defect']} defect / {metrics['n_normal']} normal)  "
        f"ROC-AUC {_num(metrics.get('roc_auc'))}{interval_text(metrics.get('roc_auc_ci'))}  "
        f"AP {_num(metrics.get('average_precision'))}  "
        f"accuracy {_num(metrics.get('accuracy'))}"
    )
    upper = op.get("miss_rate_upper", float("nan"))
    console.print(
        f"at threshold {metrics['threshold']:.4f}: miss rate {_pct(metrics['miss_rate'])} (95% upper {upper:.2%}), "
        f"false-reject rate {_pct(metrics['false_reject_rate'])}"
    )


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def main() -> None:
    """Entry point: user errors print one line and exit 2, never a traceback."""
    try:
        app()  # typer handles usage errors and exit codes itself
    except LineInspectError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)  # a [x] in it is text
        sys.exit(2)
