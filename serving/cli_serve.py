"""`lineinspect serve`, `lineinspect keys ...` and `lineinspect bench serve`: the service's commands.

Nothing here imports torch: the service runs where only onnxruntime is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from annotation.errors import LineInspectError
from serving.times import stamp

console = Console(stderr=True)
keys_app = typer.Typer(
    help="API keys for the inspection service (stored hashed in its database).", no_args_is_help=True
)
# the one `bench` group: cli_batch, cli_accuracy and cli_ocr add their commands to it, in any order
bench_app = typer.Typer(help="Benchmarks of the product's parts.", no_args_is_help=True)

Config = Annotated[Path | None, typer.Option(help="Service settings YAML (see configs/serve.yaml).")]
Overrides = Annotated[
    list[str] | None, typer.Option("--set", help="Override a setting: engine.max_wait_ms=2 (repeat).")
]
ModelFile = Annotated[Path | None, typer.Option("--model", help="ONNX model written by `lineinspect export`.")]


def cli_settings(config: Path | None, overrides: list[str] | None, **values):
    """Service settings from the YAML, its --set overrides and the command's own options (None: not given)."""
    from serving.cli import parse_overrides
    from serving.settings import load_settings

    given = {
        key: str(value) if isinstance(value, Path) else value for key, value in values.items() if value is not None
    }
    return load_settings(config, {**parse_overrides(overrides or []), **given})


def open_database(config: Path | None, overrides: list[str] | None):
    from sqlalchemy.exc import SQLAlchemyError

    from serving.storage import Database

    settings = cli_settings(config, overrides)
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    try:
        db.migrate()
    except SQLAlchemyError as exc:
        raise LineInspectError(f"cannot open the database {db.engine.url!r}: {str(exc).splitlines()[0]}") from None
    return db


def serve(
    model: ModelFile = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8000).")] = None,
    config: Config = None,
    set_: Overrides = None,
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
    config: Config = None,
    set_: Overrides = None,
) -> None:
    """Create a key and print it (stdout); only its hash is stored, so it cannot be shown again."""
    from serving.auth import create_key

    key = create_key(open_database(config, set_), name)
    print(key)
    console.print(f"created a key for {name}: keep it now, it is not shown again")


@keys_app.command("list")
def keys_list(config: Config = None, set_: Overrides = None) -> None:
    """List keys: name, first characters, created and revoked times (never the keys themselves)."""
    table = Table("name", "key starts", "created", "revoked")
    for key in open_database(config, set_).list_keys():
        revoked = stamp(key.revoked_at) if key.revoked_at else ""
        table.add_row(key.name, key.prefix + "...", stamp(key.created_at), revoked)
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(name: str, config: Config = None, set_: Overrides = None) -> None:
    """Revoke a client's key; a running service refuses it within auth.refresh_seconds."""
    open_database(config, set_).revoke_key(name)
    console.print(f"revoked the key of {name}")


@bench_app.command("serve")
def bench_serve(
    model: ModelFile = None,
    images: Annotated[
        Path | None, typer.Option(help="Folder of images to send (default: generated 512x512 JPEGs).")
    ] = None,
    concurrency: Annotated[str, typer.Option(help="Concurrent clients, comma-separated.")] = "1,8,32",
    duration: Annotated[float, typer.Option(min=1, help="Seconds per measurement.")] = 10.0,
    url: Annotated[str | None, typer.Option(help="Target a running service instead of starting one.")] = None,
    api_key: Annotated[str | None, typer.Option(help="Key for --url (a started service runs without keys).")] = None,
    config: Config = None,
    set_: Overrides = None,
) -> None:
    """Throughput and latency of the service over HTTP against the engine's in-process ceiling."""
    from serving.bench import bench_serve, sample_images
    from serving.engine import load_model
    from serving.local_server import LocalServer

    settings = cli_settings(config, set_, model=model)
    if settings.model is None:
        raise LineInspectError("no model: pass --model MODEL.onnx")
    try:
        levels = [int(c) for c in concurrency.split(",")]
    except ValueError:
        raise LineInspectError(
            f"--concurrency {concurrency!r}: give numbers separated by commas, e.g. 1,8,32"
        ) from None
    if any(c < 1 for c in levels):
        raise LineInspectError("--concurrency: every level must be at least 1")
    loaded = load_model(settings.model, settings.engine, settings.limits.max_pixels)
    server = None if url else LocalServer(settings.model, config, set_ or [])
    try:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        bench_serve(loaded, settings.engine, sample_images(images), levels, duration, server,
                    url or server.url, headers, Console())  # fmt: skip
    finally:
        if server:
            server.stop()


@bench_app.command("soak")
def bench_soak(
    model: ModelFile = None,
    images: Annotated[
        Path | None, typer.Option(help="Folder of images to send (default: generated 512x512 JPEGs).")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=1024, help="Concurrent connections.")] = 64,
    duration: Annotated[float, typer.Option(min=1, max=3600, help="Seconds in all.")] = 300.0,
    window: Annotated[float, typer.Option(min=1, help="Seconds per reported window.")] = 30.0,
    max_growth_mb: Annotated[float, typer.Option(help="Fail when the server's memory grows more than this.")] = 50.0,
    config: Config = None,
    set_: Overrides = None,
) -> None:
    """Sustained load on a service started on loopback: fails on any 5xx or memory growth over the bound."""
    from serving.bench import sample_images
    from serving.local_server import LocalServer
    from serving.soak import soak

    settings = cli_settings(config, set_, model=model)
    if settings.model is None:
        raise LineInspectError("no model: pass --model MODEL.onnx")
    server = LocalServer(settings.model, config, set_ or [])
    try:
        result = soak(
            server.url, server.process.pid, sample_images(images), concurrency, duration, window, {}, Console()
        )
    finally:
        server.stop()
    verdict = "passed" if result.server_errors == 0 and result.growth_mb <= max_growth_mb else "FAILED"
    console.print(f"soak {verdict}: {result.server_errors} server errors, memory {result.growth_mb:+.0f} MB after "
                  f"the first window (bound {max_growth_mb:.0f} MB)", highlight=False)  # fmt: skip
    if verdict != "passed":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the service's commands to the main CLI."""
    app.command()(serve)
    app.add_typer(keys_app, name="keys")
    app.add_typer(bench_app, name="bench")
