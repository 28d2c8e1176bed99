"""Alembic migrations: a database written before a revision is brought up to date without losing records, on SQLite
and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from serving.records.alarms import AlarmRule, add_alarms, list_alarms
from serving.records.database import MIGRATIONS, Database, InspectionFilter
from serving.records.lines import BaselinePeriod, get_baselines, set_baseline
from serving.records.model import InspectionRecord
from serving.records.tables import VIEWS, metadata


@pytest.fixture
def db(database_url):
    """An empty database, at no revision."""
    database = Database(database_url)
    yield database
    database.close()


def _alembic(db: Database, action, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        action(config, revision)


def _columns(db: Database) -> set[str]:
    return {c["name"] for c in sa.inspect(db.engine).get_columns("inspections")}


def test_a_database_from_before_ocr_gains_the_ocr_columns_and_keeps_its_records(db):
    _alembic(db, command.upgrade, "0001")
    with db.engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO inspections (id, created_at, image_bytes, verdict) VALUES ('old', :t, 10, 'normal')"),
            {"t": datetime(2024, 1, 1)},
        )
    db.migrate()
    old = db.get_inspection("old")
    assert old.verdict == "normal" and old.ocr_template is None and old.ocr_fields is None
    fields = {"lot": "L240101A1", "serial": None}
    db.insert_inspections(
        [InspectionRecord(id="new", created_at=datetime.now(UTC), ocr_template="default", ocr_fields=fields,
                          ocr_missing=True, ocr_problems="serial: not found", ocr_ms=812.5)]
    )  # fmt: skip
    assert db.get_inspection("new").ocr_fields == fields
    assert [r.id for r in db.list_inspections(InspectionFilter(ocr_missing=True), 10, 0)] == ["new"]
    _alembic(db, command.downgrade, "0001")
    assert not {c for c in _columns(db) if c.startswith("ocr_")}


def test_a_database_from_before_monitoring_gains_quality_baselines_and_alarms(db):
    _alembic(db, command.upgrade, "0002")
    with db.engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO inspections (id, created_at, image_bytes, verdict) VALUES ('old', :t, 10, 'normal')"),
            {"t": datetime(2024, 1, 1)},
        )
    db.migrate()
    assert db.get_inspection("old").brightness is None
    now = datetime.now(UTC)
    set_baseline(db, BaselinePeriod("L1", datetime(2024, 1, 1, tzinfo=UTC), now, 200, None, now, "qe", "week 1"))
    assert get_baselines(db)[0].subgroup_size == 200
    rule = AlarmRule("L1", "p", "", "beyond_3sigma", now, now, 0.2, "defect rate 20%", now)
    assert add_alarms(db, [rule, rule], lambda *_: 0, 8) == (1, 1) and add_alarms(db, [rule], lambda *_: 0, 8) == (0, 0)
    assert len(list_alarms(db, "L1", open_only=True)) == 1
    _alembic(db, command.downgrade, "0002")
    assert not {"brightness", "contrast", "sharpness"} & _columns(db)
    assert not {"alarms", "baselines"} & set(sa.inspect(db.engine).get_table_names())
    with db.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT verdict FROM inspections WHERE id = 'old'")).scalar() == "normal"


SUBGROUP = timedelta(seconds=200)


def _per_rule_alarm(chart: str, rule: str, k: int, camera: str = "", acked: bool = False) -> dict:
    """An alarm row as revision 0003 stored it: one rule at subgroup k of 200 s."""
    start = datetime(2026, 11, 20, 6) + k * SUBGROUP
    end = start + SUBGROUP - timedelta(seconds=1)
    ack = {"acknowledged_at": end, "acknowledged_by": "anna", "note": "checked"} if acked else {}
    return {"line": "L1", "chart": chart, "camera": camera, "rule": rule, "subgroup_start": start, "subgroup_end": end,
            "value": 0.1, "detail": f"{rule} at {k}", "raised_at": end, **{**dict.fromkeys(ACK), **ack}}  # fmt: skip


ACK = ("acknowledged_at", "acknowledged_by", "note")
OLD_ALARMS = [
    _per_rule_alarm("p", "beyond_3sigma", -30, acked=True),  # an earlier event, acknowledged
    _per_rule_alarm("p", "beyond_3sigma", 0),  # one shift: five alarms, open
    _per_rule_alarm("ewma", "ewma_beyond_limits", 0),
    _per_rule_alarm("drift", "score_shift", 0, camera="cam-1"),
    _per_rule_alarm("p", "2_of_3_beyond_2sigma", 1),
    _per_rule_alarm("p", "8_same_side", 7),
    _per_rule_alarm("p", "beyond_3sigma", 20),  # a later event, open
]


def _old_alarms(db: Database) -> list[dict]:
    times = ("subgroup_start", "subgroup_end", "raised_at", "acknowledged_at")
    query = sa.text("SELECT * FROM alarms ORDER BY subgroup_start, chart").columns(**dict.fromkeys(times, sa.DateTime))
    with db.engine.connect() as connection:
        return [{k: v for k, v in row.items() if k != "id"} for row in connection.execute(query).mappings()]


def test_per_rule_alarms_from_before_grouping_become_one_alarm_per_event(db):
    _alembic(db, command.upgrade, "0003")
    columns = ", ".join(OLD_ALARMS[0])
    with db.engine.begin() as connection:
        insert = sa.text(f"INSERT INTO alarms ({columns}) VALUES ({', '.join(':' + c for c in OLD_ALARMS[0])})")
        connection.execute(insert, OLD_ALARMS)
    db.migrate()
    later, shift, earlier = list_alarms(db, "L1")
    assert shift.id == 2 and shift.acknowledged_at is None  # the id of its first rule
    assert [(r.chart, r.camera, r.rule) for r in shift.rules] == [
        ("drift", "cam-1", "score_shift"), ("ewma", "", "ewma_beyond_limits"), ("p", "", "beyond_3sigma"),
        ("p", "", "2_of_3_beyond_2sigma"), ("p", "", "8_same_side"),
    ]  # fmt: skip
    assert shift.rules[-1].detail == "8_same_side at 7"
    assert [r.rule for r in later.rules] == ["beyond_3sigma"] and later.acknowledged_at is None
    assert (earlier.acknowledged_by, earlier.note, len(earlier.rules)) == ("anna", "checked", 1)
    rule = AlarmRule(**{k: v.replace(tzinfo=UTC) if isinstance(v, datetime) else v
                        for k, v in _per_rule_alarm("p", "beyond_3sigma", 40).items() if k not in ACK})  # fmt: skip
    assert add_alarms(db, [rule], lambda *_: 20, 8) == (1, 1)  # new alarms go on after the upgrade
    assert list_alarms(db, "L1")[0].id == 8
    _alembic(db, command.downgrade, "0003")
    assert _old_alarms(db)[:-1] == sorted(OLD_ALARMS, key=lambda a: (a["subgroup_start"], a["chart"]))


def _undeclared(db: Database) -> list:
    """How the database's columns, their types and constraints differ from what serving's tables declare (indexes
    live in the migrations only), and the views it lacks."""
    with db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    missing_views = [("add_view", v) for v in VIEWS if v not in sa.inspect(db.engine).get_view_names()]
    return [d for d in differences if not (isinstance(d, tuple) and d[0] == "remove_index")] + missing_views


def test_a_new_database_gets_the_tables_the_code_declares(db):
    db.migrate()
    assert _undeclared(db) == []


def _earlier_revisions() -> list[str]:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    revisions = [script.revision for script in ScriptDirectory.from_config(config).walk_revisions()]
    return revisions[:0:-1]  # oldest first, without the newest


@pytest.mark.parametrize("revision", _earlier_revisions())
def test_a_database_at_each_earlier_revision_upgrades_to_the_tables_the_code_declares(db, revision):
    _alembic(db, command.upgrade, revision)
    assert _undeclared(db) != []
    db.migrate()
    assert _undeclared(db) == []
