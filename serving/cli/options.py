"""What several command modules share: the stderr console, `--set` override parsing, the Label Studio import
options (`--images-root`, `--map`, `--normal-label`, ...), and the service settings and database the service's
commands open."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from annotation.errors import LineInspectError

console = Console(stderr=True)

# Label Studio exports and how their labels and image references are read (dataset check, train, evaluate, inspect)
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

# the service's commands (serve, keys, bench serve|soak)
ServiceConfig = Annotated[Path | None, typer.Option(help="Service settings YAML (see configs/serve.yaml).")]
ServiceOverrides = Annotated[
    list[str] | None, typer.Option("--set", help="Override a setting: engine.max_wait_ms=2 (repeat).")
]
ModelFile = Annotated[Path | None, typer.Option("--model", help="ONNX model written by `lineinspect export`.")]

# commands that read the service's database while it runs or not (monitor, records)
DatabaseConfig = Annotated[
    Path | None, typer.Option(help="The service's settings YAML (its database, monitor settings).")
]
DatabaseOverrides = Annotated[list[str] | None, typer.Option("--set", help="Override a service setting (repeat).")]
Moment = typer.Option(help="UTC unless it says otherwise, e.g. 2026-11-20T06:00:00.")

# the OCR readers' and their benchmark's --json
JsonOut = Annotated[Path | None, typer.Option("--json", help="Write every result, in full, to this JSON file.")]


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


def cli_settings(config: Path | None, overrides: list[str] | None, **values):
    """Service settings from the YAML, its --set overrides and the command's own options (None: not given)."""
    from annotation.config_loader import parse_overrides
    from serving.settings import load_settings

    given = {
        key: str(value) if isinstance(value, Path) else value for key, value in values.items() if value is not None
    }
    return load_settings(config, {**parse_overrides(overrides or []), **given})


def open_database(config: Path | None, overrides: list[str] | None):
    from sqlalchemy.exc import SQLAlchemyError

    from serving.records.database import Database

    settings = cli_settings(config, overrides)
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    try:
        db.migrate()
    except SQLAlchemyError as exc:
        raise LineInspectError(f"cannot open the database {db.engine.url!r}: {str(exc).splitlines()[0]}") from None
    return db


def utc(moment: datetime | None) -> datetime | None:
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)
