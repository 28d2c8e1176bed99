"""`lineinspect records`: export the service's records for analysis and prune them past their retention, straight
from its database (the service may be running meanwhile)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from serving.cli.options import DatabaseConfig, DatabaseOverrides, Moment, console, open_database, utc

records_app = typer.Typer(help="Inspection records: export them for analysis, prune old ones.", no_args_is_help=True)


@records_app.command("export")
def export(
    out: Annotated[Path, typer.Option(help="The file to write: .csv or .parquet.")],
    since: Annotated[datetime | None, Moment] = None,
    until: Annotated[datetime | None, Moment] = None,
    line: Annotated[str | None, typer.Option(help="Only this line.")] = None,
    config: DatabaseConfig = None,
    set_: DatabaseOverrides = None,
) -> None:
    """Write the records from SINCE (inclusive) to UNTIL (exclusive), oldest first, page by page in constant memory;
    the same columns from SQLite and PostgreSQL."""
    from serving.records.export import check_export, export_records

    since, until = utc(since), utc(until)
    check_export(out, since, until)  # before the database is opened: a typo costs nothing
    written = export_records(open_database(config, set_), out, since, until, line)
    console.print(f"wrote {out}: {written} records", highlight=False, soft_wrap=True)


@records_app.command("prune")
def prune(
    older_than: Annotated[str, typer.Option(help="Age past which records go, e.g. 90d, 12h, 2w.")],
    dry_run: Annotated[bool, typer.Option(help="Count what would go; remove nothing.")] = False,
    config: DatabaseConfig = None,
    set_: DatabaseOverrides = None,
) -> None:
    """Delete records older than --older-than, and the images kept with them, in short transactions."""
    from serving.records.prune import parse_age, prune_records

    cutoff = datetime.now(UTC) - parse_age(older_than)
    done = prune_records(open_database(config, set_), cutoff, dry_run)
    verb = "would remove" if dry_run else "removed"
    console.print(
        f"{verb} {done.records} records older than {cutoff:%Y-%m-%d %H:%M} UTC and {done.files} kept images "
        f"({done.missing} images already missing)",
        highlight=False,
        soft_wrap=True,
    )
