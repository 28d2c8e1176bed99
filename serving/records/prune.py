"""Inspection records past their retention deleted, with their kept images, a few hundred a transaction so
that a serving instance keeps writing while it runs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from annotation.errors import LineInspectError
from serving.records.database import Database
from serving.records.tables import inspections, naive_utc

PRUNE_BATCH = 500  # rows deleted per transaction: short, so the service's inserts never wait long


def parse_age(text: str) -> timedelta:
    """'90d', '12h', '2w', '30m' (minutes) as a duration."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([wdhm])\s*", text)
    if not match or float(match[1]) <= 0:
        raise LineInspectError(f"--older-than {text!r}: write a positive number and a unit, e.g. 90d, 12h, 2w, 30m")
    unit = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}[match[2]]
    return timedelta(**{unit: float(match[1])})


@dataclass(frozen=True)
class Pruned:
    records: int
    files: int  # kept images removed (or, in a dry run, that would be)
    missing: int  # kept images already gone: not an error, the record goes all the same


def prune_records(db: Database, cutoff: datetime, dry_run: bool = False) -> Pruned:
    """Delete the records created before `cutoff` and their kept images, `PRUNE_BATCH` records a transaction.

    Images go after their records' transaction commits: a failure never leaves a record pointing at a removed file.
    Relative image paths resolve against the current folder, as the service that wrote them did."""
    old = inspections.c.created_at < naive_utc(cutoff)
    if dry_run:
        records = files = missing = 0
        query = sa.select(inspections.c.image_path).where(old)
        with db.engine.connect() as connection:
            for rows in connection.execution_options(yield_per=PRUNE_BATCH).execute(query).partitions():
                records += len(rows)
                paths = [Path(p) for (p,) in rows if p]
                kept = sum(p.is_file() for p in paths)
                files, missing = files + kept, missing + len(paths) - kept
        return Pruned(records, files, missing)
    records = files = missing = 0
    page = sa.select(inspections.c.id, inspections.c.image_path).where(old).limit(PRUNE_BATCH)
    while True:
        with db.engine.begin() as connection:
            rows = connection.execute(page).all()
            if rows:
                connection.execute(inspections.delete().where(inspections.c.id.in_([i for i, _ in rows])))
        if not rows:
            return Pruned(records, files, missing)
        records += len(rows)
        for _, path in rows:
            if path:
                try:
                    Path(path).unlink()
                    files += 1
                except FileNotFoundError:
                    missing += 1
                except OSError as exc:  # its record is gone already: say which file to remove by hand
                    raise LineInspectError(f"cannot remove the kept image {path}: {exc.strerror}") from None
