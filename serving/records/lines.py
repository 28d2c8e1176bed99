"""Each line's baseline (the period an engineer declared in control) and the records its charts are drawn from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa

from serving.records.database import Database
from serving.records.tables import aware, baselines, inspections, naive_utc

QUALITY = ("brightness", "contrast", "sharpness")


@dataclass(frozen=True)
class BaselinePeriod:
    """The period of a line an engineer declared in control, and how its records are grouped."""

    line: str
    since: datetime
    until: datetime
    subgroup_size: int | None
    subgroup_minutes: float | None
    set_at: datetime
    set_by: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class LineRecords:
    """A line's judged records in time order, as columns (errors left out: they have no verdict)."""

    times: list[datetime]
    camera: list[str]
    defect: np.ndarray
    score: np.ndarray
    quality: dict[str, np.ndarray]  # brightness, contrast, sharpness; NaN where not measured


def set_baseline(db: Database, period: BaselinePeriod) -> None:
    row = {**period.__dict__, **{k: naive_utc(getattr(period, k)) for k in ("since", "until", "set_at")}}
    with db.engine.begin() as connection:
        connection.execute(baselines.delete().where(baselines.c.line == period.line))
        connection.execute(baselines.insert(), row)


def get_baselines(db: Database, line: str | None = None) -> list[BaselinePeriod]:
    query = sa.select(baselines).order_by(baselines.c.line)
    if line is not None:
        query = query.where(baselines.c.line == line)
    with db.engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return [BaselinePeriod(**{**r, **{k: aware(r[k]) for k in ("since", "until", "set_at")}}) for r in rows]


def line_records(db: Database, line: str, since: datetime, until: datetime) -> LineRecords:
    c = inspections.c
    query = (
        sa.select(c.created_at, c.camera, c.verdict, c.score, *(c[q] for q in QUALITY))
        .where(
            c.line == line, c.verdict.is_not(None), c.created_at >= naive_utc(since), c.created_at < naive_utc(until)
        )
        .order_by(c.created_at, c.id)
    )
    with db.engine.connect() as connection:
        rows = connection.execute(query).all()
    columns = list(zip(*rows, strict=True)) if rows else [()] * (4 + len(QUALITY))
    times, cameras, verdicts, scores, *quality = columns
    return LineRecords(
        times=[t.replace(tzinfo=UTC) for t in times],
        camera=[c or "" for c in cameras],
        defect=np.array([v == "defect" for v in verdicts], dtype=bool),
        score=np.array(scores, dtype=float),
        quality={
            q: np.array([np.nan if v is None else v for v in values], dtype=float)
            for q, values in zip(QUALITY, quality, strict=True)
        },
    )


def lines_seen(db: Database) -> list[str]:
    query = sa.select(inspections.c.line).where(inspections.c.line.is_not(None)).distinct().order_by(inspections.c.line)
    with db.engine.connect() as connection:
        return list(connection.execute(query).scalars())
