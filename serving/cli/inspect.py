"""`lineinspect inspect`: images offline through an ONNX model, on worker processes or Ray (no torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from annotation.errors import LineInspectError
from serving.cli.options import (
    DefectLabels,
    FromName,
    ImagesRoot,
    NormalLabels,
    PrefixMap,
    console,
    import_options,
)


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
    from serving.batch.inputs import collect_inputs
    from serving.batch.ray_engine import RayEngine
    from serving.batch.run import inspect_paths
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
