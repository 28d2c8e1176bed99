"""The `lineinspect` command line: verbs that follow the flow of data, one module per verb or group.

This module builds the root `app` from them, in the order `--help` lists the verbs, and holds `main`, the entry
point. Heavy imports (torch above all) happen inside the commands that need them, so `inspect` and the service
start fast and run where torch is not installed.
"""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from annotation.errors import LineInspectError
from serving.cli import data, demo, inspect, labelstudio, model, monitor, ocr, records, serve
from serving.cli.bench import bench_app
from serving.cli.options import console

app = typer.Typer(help="Defect inspection for manufacturing lines.", no_args_is_help=True, add_completion=False)
app.command("serve")(serve.serve)
app.command("train")(model.train)
app.command("export")(model.export)
app.command("evaluate")(model.evaluate)
app.command("inspect")(inspect.inspect)
app.command("demo")(demo.demo)
app.add_typer(data.dataset_app, name="dataset")
app.add_typer(model.model_app, name="model")
app.add_typer(serve.keys_app, name="keys")
app.add_typer(bench_app, name="bench")
app.add_typer(ocr.ocr_app, name="ocr")
app.add_typer(labelstudio.ls_app, name="labelstudio")
app.add_typer(monitor.monitor_app, name="monitor")
app.add_typer(records.records_app, name="records")


def main() -> None:
    """Entry point: user errors print one line and exit 2, never a traceback."""
    try:
        app()  # typer handles usage errors and exit codes itself
    except LineInspectError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)  # a [x] in it is text
        sys.exit(2)
