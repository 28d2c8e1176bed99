"""Inspection records out of the service's database into a CSV or Parquet file, for analysis.

Page by page, so a year of records costs no more memory than a page of them, and a serving instance keeps
writing while it runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa

from annotation.errors import LineInspectError
from serving.records.database import Database
from serving.records.tables import inspections, naive_utc

FORMATS = (".csv", ".parquet")
PAGE = 1_000  # rows fetched, converted and written at a time
ROW_GROUP = 50_000  # Parquet rows per row group: pages gathered into groups readers scan efficiently


def _arrow_type(column: sa.Column) -> pa.DataType:
    kind = column.type
    if isinstance(kind, sa.DateTime):
        return pa.timestamp("us", tz="UTC")
    if isinstance(kind, sa.Boolean):
        return pa.bool_()
    if isinstance(kind, sa.Integer):
        return pa.int64()
    if isinstance(kind, sa.Float):
        return pa.float64()
    return pa.string()  # String, Text, and JSON written as JSON text


SCHEMA = pa.schema([pa.field(c.name, _arrow_type(c)) for c in inspections.columns])  # one for either database


def check_export(out: Path, since: datetime | None, until: datetime | None) -> None:
    """Refuse what no database can answer, before one is opened."""
    if out.suffix.lower() not in FORMATS:
        raise LineInspectError(f"--out {out}: write a .csv or a .parquet file")
    if since is not None and until is not None and since >= until:
        raise LineInspectError("--since must be before --until")


def _batches(
    db: Database, since: datetime | None, until: datetime | None, line: str | None
) -> Iterator[pa.RecordBatch]:
    """Rows by time then id, streamed through a server-side cursor (PostgreSQL) or SQLite's own stepping."""
    query = sa.select(inspections)
    if since is not None:
        query = query.where(inspections.c.created_at >= naive_utc(since))
    if until is not None:
        query = query.where(inspections.c.created_at < naive_utc(until))
    if line is not None:
        query = query.where(inspections.c.line == line)
    query = query.order_by(inspections.c.created_at, inspections.c.id)
    with db.engine.connect() as connection:
        result = connection.execution_options(yield_per=PAGE).execute(query)
        for rows in result.partitions():
            columns = list(zip(*rows, strict=True))
            arrays = []
            for field, values in zip(SCHEMA, columns, strict=True):
                if field.name == "ocr_fields":  # a dict from either driver: the same JSON text from both
                    values = [None if v is None else json.dumps(v, sort_keys=True) for v in values]
                arrays.append(pa.array(values, type=field.type))  # naive times are UTC, as stored
            yield pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)


def export_records(
    db: Database, out: Path, since: datetime | None = None, until: datetime | None = None, line: str | None = None
) -> int:
    """Write the records from `since` (inclusive) to `until` (exclusive), optionally of one line, to `out`
    (.csv or .parquet, by its suffix) page by page; return how many. A failed export leaves no file behind."""
    check_export(out, since, until)
    tmp = out.with_name(out.name + ".tmp")
    written = 0
    try:
        if out.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            writer = pq.ParquetWriter(tmp, SCHEMA)
        else:
            import pyarrow.csv as pcsv

            writer = pcsv.CSVWriter(tmp, SCHEMA)
        with writer:
            gathered: list[pa.RecordBatch] = []
            for batch in _batches(db, since, until, line):
                gathered.append(batch)
                written += batch.num_rows
                if sum(b.num_rows for b in gathered) >= ROW_GROUP or out.suffix.lower() == ".csv":
                    writer.write_table(pa.Table.from_batches(gathered, SCHEMA))
                    gathered = []
            if gathered:
                writer.write_table(pa.Table.from_batches(gathered, SCHEMA))
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LineInspectError(f"cannot write {out}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return written
