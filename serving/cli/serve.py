"""`lineinspect serve` and `lineinspect keys create|list|revoke`: the service and its API keys.

Nothing here imports torch: the service runs where only onnxruntime is installed.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from annotation.errors import LineInspectError
from serving.cli.options import ModelFile, ServiceConfig, ServiceOverrides, cli_settings, console, open_database
from serving.times import stamp

keys_app = typer.Typer(
    help="API keys for the inspection service (stored hashed in its database).", no_args_is_help=True
)


def serve(
    model: ModelFile = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8000).")] = None,
    config: ServiceConfig = None,
    set_: ServiceOverrides = None,
) -> None:
    """Serve a model over HTTP to line cameras: verdicts, records, metrics."""
    from serving.app import run
    from serving.engine import load_model
    from vision.ocr.tesseract import limit_openmp

    limit_openmp()  # the service reads labels too, and never runs torch
    settings = cli_settings(config, set_, **{"model": model, "server.host": host, "server.port": port})
    if settings.model is None:
        raise LineInspectError("no model: pass --model MODEL.onnx (or set model: in the config)")
    console.print(f"loading {settings.model} ...")
    loaded = load_model(settings.model, settings.engine, settings.limits.max_pixels)
    console.print(
        f"{loaded.name} {loaded.version} on {', '.join(loaded.classifier.session.get_providers())}; "
        f"listening on http://{settings.server.host}:{settings.server.port} (auth: {settings.auth.mode})",
        highlight=False,
    )
    run(settings, loaded)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who holds the key: a camera or a person.")],
    config: ServiceConfig = None,
    set_: ServiceOverrides = None,
) -> None:
    """Create a key and print it (stdout); only its hash is stored, so it cannot be shown again."""
    from serving.auth import create_key

    key = create_key(open_database(config, set_), name)
    print(key)
    console.print(f"created a key for {name}: keep it now, it is not shown again")


@keys_app.command("list")
def keys_list(config: ServiceConfig = None, set_: ServiceOverrides = None) -> None:
    """List keys: name, first characters, created and revoked times (never the keys themselves)."""
    table = Table("name", "key starts", "created", "revoked")
    for key in open_database(config, set_).list_keys():
        revoked = stamp(key.revoked_at) if key.revoked_at else ""
        table.add_row(key.name, key.prefix + "...", stamp(key.created_at), revoked)
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(name: str, config: ServiceConfig = None, set_: ServiceOverrides = None) -> None:
    """Revoke a client's key; a running service refuses it within auth.refresh_seconds."""
    open_database(config, set_).revoke_key(name)
    console.print(f"revoked the key of {name}")
