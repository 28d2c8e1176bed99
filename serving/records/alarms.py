"""Alarms in the database: the rules the line monitor fired, grouped into events, stored once however many
instances see them fire, and acknowledged once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from annotation.errors import LineInspectError
from serving.records.database import Database, advisory_lock
from serving.records.tables import alarm_rules, alarms, aware, naive_utc
from serving.times import stamp

EPISODE = ("line", "chart", "camera", "rule", "subgroup_start")  # a rule is stored once for these


class AlarmNotFound(LineInspectError):
    """No alarm has this id."""


class AlreadyAcknowledged(LineInspectError):
    """The alarm was acknowledged before: by whom and when is in the message."""


@dataclass(frozen=True)
class AlarmRule:
    """A rule that fired at one subgroup (the start of its episode): one line of an alarm's detail."""

    line: str
    chart: str
    camera: str
    rule: str
    subgroup_start: datetime
    subgroup_end: datetime
    value: float
    detail: str
    raised_at: datetime


@dataclass(frozen=True)
class Alarm:
    """One event on a line: the rules that fired together on its charts and its cameras' drift, open until
    acknowledged once."""

    id: int
    line: str
    subgroup_start: datetime  # the subgroup of the rule that opened it
    raised_at: datetime
    rules: tuple[AlarmRule, ...]  # by subgroup, then chart
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    note: str | None = None


Gap = Callable[[AlarmRule, datetime], int]  # subgroups from the one that starts at a time to the rule's


def add_alarms(db: Database, fired: list[AlarmRule], gap: Gap, window: int) -> tuple[int, int]:
    """Store the rules not stored before (one per line, chart, camera, rule and subgroup), in subgroup order: a rule
    joins the open alarm of its line whose newest rule is at most `window` subgroups before it (by `gap`), else it
    opens an alarm. Returns (rules stored, alarms opened). Instances sharing a database store a line's rules one at a
    time, so a rule two of them see fire is stored by the first and found stored by the other."""
    with db.engine.begin() as connection:
        for line in sorted({r.line for r in fired}):  # in one order everywhere: no deadlock
            advisory_lock(connection, f"lineinspect:alarms:{line}")
        new = sorted(_unstored(connection, fired), key=lambda r: (r.subgroup_start, r.chart, r.rule))
        if not new:
            return 0, 0
        newest = _open_newest(connection, {r.line for r in new})
        opened = 0
        for rule in new:
            alarm_id, last = newest.get(rule.line, (None, None))
            if alarm_id is None or gap(rule, last) > window:
                alarm_id, opened = _open_alarm(connection, rule), opened + 1
            newest[rule.line] = (alarm_id, max(last or rule.subgroup_start, rule.subgroup_start))
            connection.execute(alarm_rules.insert(), {**_rule_row(rule), "alarm_id": alarm_id})
    return len(new), opened


def _unstored(connection: sa.Connection, fired: list[AlarmRule]) -> list[AlarmRule]:
    if not fired:
        return []
    c = alarm_rules.c
    since = naive_utc(min(r.subgroup_start for r in fired))
    query = sa.select(*(c[k] for k in EPISODE)).where(c.line.in_({r.line for r in fired}), c.subgroup_start >= since)
    stored = {tuple(row) for row in connection.execute(query)}
    unique = {tuple(_rule_row(r)[k] for k in EPISODE): r for r in fired}
    return [r for key, r in unique.items() if key not in stored]


def _open_newest(connection: sa.Connection, lines: set[str]) -> dict[str, tuple[int, datetime]]:
    """line -> its open alarm whose newest rule is the latest, and that rule's subgroup start."""
    a, r = alarms.c, alarm_rules.c
    query = (
        sa.select(a.id, a.line, sa.func.max(r.subgroup_start))
        .join_from(alarms, alarm_rules, r.alarm_id == a.id)
        .where(a.line.in_(lines), a.acknowledged_at.is_(None))
        .group_by(a.id, a.line)
    )
    newest: dict[str, tuple[int, datetime]] = {}
    for alarm_id, line, last in connection.execute(query):
        if line not in newest or aware(last) > newest[line][1]:
            newest[line] = (alarm_id, aware(last))
    return newest


def _open_alarm(connection: sa.Connection, rule: AlarmRule) -> int:
    row = {"line": rule.line, "subgroup_start": naive_utc(rule.subgroup_start), "raised_at": naive_utc(rule.raised_at)}
    return connection.execute(alarms.insert(), row).inserted_primary_key[0]


def list_alarms(
    db: Database, line: str | None = None, open_only: bool = False, limit: int = 100, offset: int = 0
) -> list[Alarm]:
    """Newest first (by the subgroup of their first rule), each with its rules."""
    query = sa.select(alarms)
    if line is not None:
        query = query.where(alarms.c.line == line)
    if open_only:
        query = query.where(alarms.c.acknowledged_at.is_(None))
    query = query.order_by(alarms.c.subgroup_start.desc(), alarms.c.id.desc()).limit(limit).offset(offset)
    with db.engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
        rules = _rules_of(connection, [r["id"] for r in rows])
    return [_alarm(row, rules.get(row["id"], ())) for row in rows]


def open_alarm_counts(db: Database) -> dict[str, int]:
    """line -> alarms not acknowledged."""
    c = alarms.c
    query = sa.select(c.line, sa.func.count()).where(c.acknowledged_at.is_(None)).group_by(c.line)
    with db.engine.connect() as connection:
        return {line: n for line, n in connection.execute(query)}


def open_rule_counts(db: Database) -> dict[tuple[str, str, str], int]:
    """(line, chart, rule) -> how often the rule fired in alarms not acknowledged."""
    r = alarm_rules.c
    query = (
        sa.select(r.line, r.chart, r.rule, sa.func.count())
        .join_from(alarm_rules, alarms, r.alarm_id == alarms.c.id)
        .where(alarms.c.acknowledged_at.is_(None))
        .group_by(r.line, r.chart, r.rule)
    )
    with db.engine.connect() as connection:
        return {(line, chart, rule): n for line, chart, rule, n in connection.execute(query)}


def acknowledge(db: Database, alarm_id: int, by: str | None, note: str) -> Alarm:
    """Acknowledge the alarm and so every rule it lists, once."""
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
        rules = _rules_of(connection, [alarm_id])
    return _alarm({**row, **values}, rules.get(alarm_id, ()))


def _rules_of(connection: sa.Connection, alarm_ids: list[int]) -> dict[int, tuple[AlarmRule, ...]]:
    r = alarm_rules.c
    query = sa.select(alarm_rules).where(r.alarm_id.in_(alarm_ids)).order_by(r.subgroup_start, r.chart, r.id)
    found: dict[int, list[AlarmRule]] = {}
    for row in connection.execute(query).mappings():
        times = {k: aware(row[k]) for k in ("subgroup_start", "subgroup_end", "raised_at")}
        rule = {k: v for k, v in row.items() if k not in ("id", "alarm_id")}
        found.setdefault(row["alarm_id"], []).append(AlarmRule(**{**rule, **times}))
    return {alarm_id: tuple(rules) for alarm_id, rules in found.items()}


def _rule_row(rule: AlarmRule) -> dict[str, Any]:
    times = {k: naive_utc(getattr(rule, k)) for k in ("subgroup_start", "subgroup_end", "raised_at")}
    return {**rule.__dict__, **times}


def _alarm(row, rules: tuple[AlarmRule, ...]) -> Alarm:
    times = ("subgroup_start", "raised_at", "acknowledged_at")
    return Alarm(**{**row, **{k: aware(row[k]) for k in times}}, rules=rules)
