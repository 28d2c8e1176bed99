"""Baselines, alarms and the records a line's charts are drawn from, in the service's database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa

from annotation.errors import LineInspectError
from serving.storage import Database, aware, insert_ignoring_duplicates, inspections, metadata, naive_utc
from serving.times import stamp

baselines = sa.Table(
    "baselines", metadata,
    sa.Column("line", sa.String(128), primary_key=True),
    sa.Column("since", sa.DateTime(), nullable=False),
    sa.Column("until", sa.DateTime(), nullable=False),
    sa.Column("subgroup_size", sa.Integer()),
    sa.Column("subgroup_minutes", sa.Float()),
    sa.Column("set_at", sa.DateTime(), nullable=False),
    sa.Column("set_by", sa.String(128)),
    sa.Column("note", sa.Text()),
)  # fmt: skip
alarms = sa.Table(
    "alarms", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("line", sa.String(128), nullable=False),
    sa.Column("chart", sa.String(32), nullable=False),  # p | ewma | drift
    sa.Column("camera", sa.String(128), nullable=False),  # drift alarms: the camera; "" for the line's charts
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("subgroup_start", sa.DateTime(), nullable=False),
    sa.Column("subgroup_end", sa.DateTime(), nullable=False),
    sa.Column("value", sa.Float(), nullable=False),
    sa.Column("detail", sa.Text(), nullable=False),
    sa.Column("raised_at", sa.DateTime(), nullable=False),
    sa.Column("acknowledged_at", sa.DateTime()),
    sa.Column("acknowledged_by", sa.String(128)),
    sa.Column("note", sa.Text()),
    sa.UniqueConstraint("line", "chart", "camera", "rule", "subgroup_start", name="uq_alarms_episode"),
)  # fmt: skip
QUALITY = ("brightness", "contrast", "sharpness")
EPISODE = ("line", "chart", "camera", "rule", "subgroup_start")  # an alarm is raised once for these


class AlarmNotFound(LineInspectError):
    """No alarm has this id."""


class AlreadyAcknowledged(LineInspectError):
    """The alarm was acknowledged before: by whom and when is in the message."""


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
class Alarm:
    """A rule that fired at one subgroup; open until acknowledged."""

    line: str
    chart: str
    camera: str
    rule: str
    subgroup_start: datetime
    subgroup_end: datetime
    value: float
    detail: str
    raised_at: datetime
    id: int | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
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


def add_alarms(db: Database, raised: list[Alarm]) -> int:
    """Store alarms not stored before (one per line, chart, camera, rule and subgroup); returns how many were new."""
    if not raised:
        return 0
    rows = [_alarm_row(a) for a in raised]
    with db.engine.begin() as connection:
        before = connection.execute(sa.select(sa.func.count()).select_from(alarms)).scalar_one()
        connection.execute(insert_ignoring_duplicates(db.engine.dialect.name, alarms, EPISODE), rows)
        return connection.execute(sa.select(sa.func.count()).select_from(alarms)).scalar_one() - before


def list_alarms(
    db: Database, line: str | None = None, open_only: bool = False, limit: int = 100, offset: int = 0
) -> list[Alarm]:
    """Newest first."""
    query = sa.select(alarms)
    if line is not None:
        query = query.where(alarms.c.line == line)
    if open_only:
        query = query.where(alarms.c.acknowledged_at.is_(None))
    query = query.order_by(alarms.c.subgroup_start.desc(), alarms.c.id.desc()).limit(limit).offset(offset)
    with db.engine.connect() as connection:
        return [_alarm(r) for r in connection.execute(query).mappings()]


def open_alarm_counts(db: Database) -> dict[tuple[str, str, str], int]:
    """(line, chart, rule) -> alarms not acknowledged."""
    c = alarms.c
    query = sa.select(c.line, c.chart, c.rule, sa.func.count()).where(c.acknowledged_at.is_(None))
    with db.engine.connect() as connection:
        rows = connection.execute(query.group_by(c.line, c.chart, c.rule)).all()
    return {(line, chart, rule): n for line, chart, rule, n in rows}


def acknowledge(db: Database, alarm_id: int, by: str | None, note: str) -> Alarm:
    with db.engine.begin() as connection:
        row = connection.execute(sa.select(alarms).where(alarms.c.id == alarm_id)).mappings().first()
        if row is None:
            raise AlarmNotFound(f"no alarm {alarm_id}")
        if row["acknowledged_at"] is not None:
            by_whom = f" by {row['acknowledged_by']}" if row["acknowledged_by"] else ""
            when = f"{stamp(aware(row['acknowledged_at']))} UTC"
            raise AlreadyAcknowledged(f"alarm {alarm_id} was already acknowledged at {when}{by_whom}")
        values: dict[str, Any] = {"acknowledged_at": naive_utc(datetime.now(UTC)), "acknowledged_by": by, "note": note}
        connection.execute(alarms.update().where(alarms.c.id == alarm_id).values(**values))
    return _alarm({**row, **values})


def _alarm_row(alarm: Alarm) -> dict[str, Any]:
    row = {k: v for k, v in alarm.__dict__.items() if k != "id"}
    for key in ("subgroup_start", "subgroup_end", "raised_at", "acknowledged_at"):
        if row[key] is not None:
            row[key] = naive_utc(row[key])
    return row


def _alarm(row) -> Alarm:
    times = ("subgroup_start", "subgroup_end", "raised_at", "acknowledged_at")
    return Alarm(**{**row, **{k: aware(row[k]) for k in times}})
