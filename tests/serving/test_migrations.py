"""Alembic migrations: a database written before a revision is brought up to date without losing records."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from serving.storage import MIGRATIONS, Database, InspectionFilter, InspectionRecord


def _alembic(db: Database, action, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        action(config, revision)


def _columns(db: Database) -> set[str]:
    return {c["name"] for c in sa.inspect(db.engine).get_columns("inspections")}


def test_a_database_from_before_ocr_gains_the_ocr_columns_and_keeps_its_records(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
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


def test_a_database_from_before_monitoring_gains_quality_baselines_and_alarms(tmp_path):
    from serving.monitor.store import Alarm, BaselinePeriod, add_alarms, get_baselines, list_alarms, set_baseline

    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
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
    alarm = Alarm("L1", "p", "", "beyond_3sigma", now, now, 0.2, "defect rate 20%", now)
    assert add_alarms(db, [alarm, alarm]) == 1 and add_alarms(db, [alarm]) == 0  # one alarm per episode
    assert len(list_alarms(db, "L1", open_only=True)) == 1
    _alembic(db, command.downgrade, "0002")
    assert not {"brightness", "contrast", "sharpness"} & _columns(db)
    assert not {"alarms", "baselines"} & set(sa.inspect(db.engine).get_table_names())
    with db.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT verdict FROM inspections WHERE id = 'old'")).scalar() == "normal"
