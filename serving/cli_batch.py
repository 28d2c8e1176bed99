"""`lineinspect bench inspect`: the offline engine's benchmark (`inspect` itself lives in `serving.cli`)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from annotation.errors import LineInspectError
from serving.cli_serve import bench_app


def bench_inspect(
    model: Annotated[Path, typer.Option("--model", help="ONNX model written by `lineinspect export`.")],
    images: Annotated[Path | None, typer.Option(help="Folder of images to inspect (instead of --generate).")] = None,
    generate: Annotated[int | None, typer.Option(min=1, help="Generate this many JPEGs (default 2000).")] = None,
    size: Annotated[str, typer.Option(help="Generated image size: 512 or 1920x1080.")] = "512",
    batch_size: Annotated[int, typer.Option(min=1, max=1024)] = 32,
    workers: Annotated[int | None, typer.Option(min=1, help="Decode workers (default: one per core).")] = None,
) -> None:
    """Local engine throughput against the in-process ceiling (same run, same files), and peak memory."""
    from serving.batch.bench import bench_inspect as run_bench
    from serving.batch.bench import generate_images, parse_size
    from serving.offline import collect_inputs
    from serving.settings import cpu_count
    from vision.onnx_model import OnnxClassifier

    if images is not None and generate is not None:
        raise LineInspectError("give --images or --generate, not both")
    classifier = OnnxClassifier(model)
    console = Console(soft_wrap=True)  # one line per figure, however narrow the terminal
    threads = workers or cpu_count()
    if images is not None:
        from annotation.exports import ImportOptions

        if not images.is_dir():
            raise LineInspectError(f"--images {images}: not a folder")
        paths = [p for p, _ in collect_inputs([str(images)], ImportOptions())]
        if not paths:
            raise LineInspectError(f"no images in {images}")
        run_bench(classifier, paths, batch_size, threads, console)
        return
    dims, count = parse_size(size), generate or 2000
    with tempfile.TemporaryDirectory(prefix="lineinspect-images-") as tmp:
        console.print(f"generating {count} {dims[0]}x{dims[1]} JPEGs ...")
        paths = generate_images(Path(tmp), count, dims)
        run_bench(classifier, paths, batch_size, threads, console)


def register(app: typer.Typer) -> None:
    """Add `bench inspect` to the `bench` group."""
    bench_app.command("inspect")(bench_inspect)
