"""The BI view `inspection_facts` on both databases: one row per inspection, the verdict as numbers, the label's lot
out of the OCR fields; on PostgreSQL a role granted only the view reads it and cannot touch the records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from serving.records.database import Database
from serving.records.model import InspectionRecord

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def _database(url: str) -> Database:
    database = Database(url)
    database.migrate()
    database.insert_inspections([
        InspectionRecord(id="a", created_at=T0, line="L1", camera="cam-1", model_name="m", model_version="1",
                         score=0.91, threshold=0.5, verdict="defect", ocr_template="default",
                         ocr_fields={"lot": "K24B0917", "serial": None}, ocr_missing=True),
        InspectionRecord(id="b", created_at=T0 + timedelta(seconds=1), line="L1", score=0.02, threshold=0.5,
                         verdict="normal"),
        InspectionRecord(id="c", created_at=T0 + timedelta(seconds=2), line="L2", error_code="corrupt_image",
                         error="truncated"),
    ])  # fmt: skip
    return database


@pytest.fixture
def db(database_url):
    database = _database(database_url)
    yield database
    database.close()


def test_the_view_has_a_row_per_inspection_with_the_verdict_as_numbers_and_the_lot(db):
    query = "SELECT id, line, is_defect, refused, error_code, lot, ocr_missing FROM inspection_facts ORDER BY id"
    with db.engine.connect() as connection:
        rows = [tuple(r) for r in connection.execute(sa.text(query))]
    assert rows == [
        ("a", "L1", 1, 0, None, "K24B0917", True),
        ("b", "L1", 0, 0, None, None, None),
        ("c", "L2", 0, 1, "corrupt_image", None, None),
    ]
    per_line = "SELECT line, SUM(is_defect), COUNT(*) FROM inspection_facts WHERE refused = 0 GROUP BY line"
    with db.engine.connect() as connection:
        assert {tuple(r) for r in connection.execute(sa.text(per_line))} == {("L1", 1, 2)}


def test_a_postgresql_role_granted_only_the_view_reads_it_and_cannot_touch_the_records(postgres):
    db = _database(postgres.database())
    with db.engine.begin() as connection:
        connection.execute(sa.text("CREATE ROLE bi_reader LOGIN"))
        connection.execute(sa.text("GRANT SELECT ON inspection_facts TO bi_reader"))
    reader = sa.create_engine(db.engine.url.set(username="bi_reader"), poolclass=sa.NullPool)
    with reader.connect() as connection:
        assert connection.execute(sa.text("SELECT COUNT(*) FROM inspection_facts")).scalar() == 3
    for statement in ("SELECT COUNT(*) FROM inspections", "DELETE FROM inspections"):
        with reader.connect() as connection, pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            connection.execute(sa.text(statement))
    reader.dispose()
    db.close()
