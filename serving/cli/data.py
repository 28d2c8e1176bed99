"""`lineinspect dataset check|from-folders|sample`: Label Studio exports, what they hold and how to make one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

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

dataset_app = typer.Typer(help="Label Studio exports: check what they hold.", no_args_is_help=True)


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
