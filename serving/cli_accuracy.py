"""`lineinspect bench accuracy`: how well each method and backbone finds defects on labelled data sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from annotation.errors import LineInspectError
from serving.cli_serve import bench_app

console = Console(stderr=True)


def bench_accuracy(
    datasets: Annotated[
        list[str],
        typer.Argument(
            help="Labelled data: a folder of label sub-folders (ok/, defect/, at any depth), or an export file, "
            "written EXPORT@IMAGES_ROOT when its images resolve against a folder. NAME=... names the row."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Folder for runs, models, accuracy.json and accuracy.md.")],
    method: Annotated[list[str] | None, typer.Option(help="classifier | anomaly (repeat; default both).")] = None,
    backbone: Annotated[
        list[str] | None, typer.Option(help="model.architecture to try (repeat; default: the recipe's).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="Recipe YAML (default: configs/train/default.yaml).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a recipe key for every run.")] = None,
    normal_label: Annotated[list[str] | None, typer.Option("--normal-label", help="Label meaning normal.")] = None,
    defect_label: Annotated[list[str] | None, typer.Option("--defect-label", help="Label meaning defect.")] = None,
) -> None:
    """Train, export and measure on a fixed holdout split: ROC-AUC (95% CI), AP, miss and false-reject rates at
    the exported 5%-miss threshold, training seconds, ONNX Runtime ms per image."""
    from serving.cli import parse_overrides
    from vision.bench_accuracy import bench_accuracy as run_bench
    from vision.recipe import load_recipe

    methods = method or ["classifier", "anomaly"]
    if unknown := [m for m in methods if m not in ("classifier", "anomaly")]:
        raise LineInspectError(f"--method {unknown[0]!r}: choose classifier or anomaly")
    overrides = parse_overrides(set_ or [])
    recipe = load_recipe(config, overrides)
    labels = {"normal_labels": normal_label, "defect_labels": defect_label}
    manifests = {name: _manifest(path, out / "data" / name, labels) for name, path in map(_named, datasets)}
    run_bench(manifests, methods, backbone or [recipe.model.architecture], config, overrides, out, console)
    console.print(f"wrote {out / 'accuracy.md'} and {out / 'accuracy.json'}")


def _named(entry: str) -> tuple[str, str]:
    name, sep, path = entry.partition("=")
    if sep and name and "/" not in name:
        return name, path
    return Path(entry.partition("@")[0]).stem if Path(entry).suffix else Path(entry).name, entry


def _manifest(entry: str, work: Path, labels: dict):
    from annotation.export_writer import tasks_from_folders, write_export
    from annotation.exports import load_exports
    from serving.cli import import_options

    path, _, root = entry.partition("@")
    source = Path(path)
    if source.is_dir():
        tasks = tasks_from_folders(source)
        if not tasks:
            raise LineInspectError(f"no images under {source}")
        work.mkdir(parents=True, exist_ok=True)
        export, images_root = write_export(tasks, work / "export.json"), source
    elif source.is_file():
        export, images_root = source, Path(root) if root else None
    else:
        raise LineInspectError(f"data set not found: {source}")
    options = import_options(images_root, None, None, labels["normal_labels"], labels["defect_labels"], "majority")
    manifest = load_exports([export], options)
    if manifest.errors:
        first = manifest.errors[0]
        raise LineInspectError(f"{entry}: {len(manifest.errors)} errors in the data set, first: {first.message}")
    return manifest


def register(app: typer.Typer) -> None:
    """Add `bench accuracy` to the `bench` group."""
    bench_app.command("accuracy")(bench_accuracy)
