"""`lineinspect demo`: the whole chain on generated sample data (the work is in `serving.demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from serving.cli.options import console


def demo(
    out: Annotated[Path, typer.Option(help="Folder for the sample data, run, model and results.")] = Path(
        "demo-output"
    ),
    config: Annotated[Path | None, typer.Option(help="Recipe (default: configs/train/demo.yaml).")] = None,
) -> None:
    """The whole chain on generated sample data: data -> check -> train -> export -> evaluate -> inspect."""
    from serving.demo import run_demo

    run_demo(out, config, console)
