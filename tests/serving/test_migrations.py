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
