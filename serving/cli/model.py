"""`lineinspect train|export|evaluate` and `lineinspect model info`: make a model, and show what one carries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from annotation.config_loader import parse_overrides
from annotation.errors import LineInspectError
from serving.cli.options import (
    Consensus,
    DefectLabels,
    Exports,
    FromName,
    ImagesRoot,
    NormalLabels,
    PrefixMap,
    console,
    import_options,
)

model_app = typer.Typer(help="Model files: show what they carry.", no_args_is_help=True)


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
    from vision.training.train import train as run_training

    recipe = load_recipe(config, parse_overrides(set_ or []))
    manifest = load_exports(
        exports, import_options(images_root, prefix_map, from_name, normal_label, defect_label, consensus)
    )
    if manifest.problems:
        console.print(render_report(manifest))
    result = run_training(manifest, recipe, out, resume=resume, console=console)
    console.print(f"trained in {result.seconds:.0f} s; next: lineinspect export {out} --out model.onnx")


def export(
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
    from vision.training.export import export_run

    if miss_rate is not None and not 0 < miss_rate < 1:
        raise LineInspectError(f"--miss-rate must be between 0 and 1 (a fraction), not {miss_rate}")
    export_run(run, out, miss_rate=miss_rate, console=console, force=force)


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


@model_app.command("info")
def model_info(model: Annotated[Path, typer.Argument(help="ONNX model file.")]) -> None:
    """Print the metadata a model carries (JSON)."""
    from vision.metadata import read_metadata

    print(read_metadata(model).model_dump_json(indent=2))


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
