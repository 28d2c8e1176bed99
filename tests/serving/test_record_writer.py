"""The record writer on a real SQLite database: records stored in batches and in the order submitted, spooled while
the database is away and written back once it returns, none lost and none stored twice (a journal replayed too)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from serving.metrics import Metrics
from serving.records.database import Database
from serving.records.journal import Journal
from serving.records.model import InspectionRecord
from serving.records.spool import Spool
from serving.records.tables import inspections
from serving.records.writer import RecordWriter
from serving.settings import RecordSettings
from tests.serving.conftest import wait_for

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def records(first: int, n: int) -> list[InspectionRecord]:
    return [
        InspectionRecord(
            id=f"{i:032x}", created_at=START + timedelta(seconds=i), line="L1", image_bytes=100 + i,
            score=0.1, verdict="normal", threshold=0.5,
        )
        for i in range(first, first + n)
    ]  # fmt: skip


def stored_in_insert_order(db: Database) -> list[str]:
    """The ids in the order SQLite stored them (its rowid), so a reordered write shows."""
    with db.engine.connect() as connection:
        return list(connection.execute(sa.select(inspections.c.id).order_by(sa.text("rowid"))).scalars())


def counted(writer: RecordWriter, name: str) -> float:
    return writer.metrics.registry.get_sample_value(f"lineinspect_{name}_total") or 0.0


def segments(folder: Path) -> list[Path]:
    return sorted(folder.glob("segment-*.jsonl"))


class Writers:
    """Record writers on one SQLite database in `root/db/`, with their spool and journal in `root/data/`."""

    def __init__(self, root: Path) -> None:
        self.root, self.data = root, root / "data"
        (root / "db").mkdir()
        self.data.mkdir()
        self.db = Database(f"sqlite:///{root / 'db' / 'records.db'}")
        self.open: list[RecordWriter] = []

    def writer(self, **settings) -> RecordWriter:
        settings = {"max_delay_ms": 1, "retry_seconds": 0.05, **settings}
        writer = RecordWriter(
            self.db, Spool(self.data / "spool.jsonl"), Journal(self.data / "journal"), RecordSettings(**settings),
            self.data / "images", Metrics(),
        )  # fmt: skip
        self.open.append(writer)
        return writer

    def close(self) -> None:
        for writer in self.open:
            if writer._thread.is_alive():
                writer.close()
        self.db.close()


@pytest.fixture
def writers(tmp_path) -> Iterator[Writers]:
    made = Writers(tmp_path)
    yield made
    made.close()


def count_inserts(db: Database) -> Callable[[], int]:
    """How many inserts of inspection records the database has been sent since."""
    calls = []

    def seen(connection, statement, *args) -> None:
        if isinstance(statement, sa.Insert) and statement.table is inspections:
            calls.append(statement)

    sa.event.listen(db.engine, "before_execute", seen)
    return lambda: len(calls)


def test_records_are_stored_in_batches_in_the_order_submitted(writers):
    writer = writers.writer(batch_size=50)
    inserts = count_inserts(writers.db)
    sent = records(0, 200)
    for record in sent:  # queued before the writer's thread runs: it finds full batches waiting
        writer.submit(record)
    writer.start()
    assert writer.flush(10)
    assert stored_in_insert_order(writers.db) == [r.id for r in sent]
    assert inserts() == 4  # 200 records, 50 an insert
    assert writers.db.get_inspection(sent[7].id) == sent[7]
    assert writer.database_ok and writer.spool.pending == 0 and writer.held == 0
    assert counted(writer, "records_written") == 200

    writer.close()
    assert segments(writers.data / "journal") == []  # every record stored: the journal is dropped


def test_a_read_waits_for_a_batch_still_gathering(writers):
    """A flush waits for the batch's gathering delay on top of its margin: a client reading its own record right after
    it was answered finds it, however long the service lets records gather."""
    writer = writers.writer(batch_size=10, max_delay_ms=1500)
    writer.start()
    sent = records(0, 1)
    writer.submit(sent[0])
    assert writer.flush(0.5)  # 0.5 s alone ends before the 1.5 s gathering does
    assert writers.db.get_inspection(sent[0].id) == sent[0]


def test_a_record_already_stored_is_skipped_and_not_counted_again(writers):
    """A journal replayed after another instance stored its records, or a request retried with its idempotency key."""
    writer = writers.writer(batch_size=10)
    writer.start()
    first, new = records(0, 10), records(10, 2)
    for record in first:
        writer.submit(record)
    assert writer.flush(10)
    for record in first[:4] + new:
        writer.submit(record)
    assert writer.flush(10)
    writer.close()
    assert stored_in_insert_order(writers.db) == [r.id for r in first + new]
    assert counted(writer, "records_written") == 12


def test_records_submitted_while_the_database_is_away_are_spooled_then_written_back_once(writers):
    writer = writers.writer(batch_size=10)
    writer.start()
    before = records(0, 25)
    for record in before:
        writer.submit(record)
    assert writer.flush(10) and writer.database_ok

    away = writers.root / "db-away"
    (writers.root / "db").rename(away)  # the database goes away: its file cannot be opened
    writers.db.engine.dispose()  # and the connections to it are gone
    during = records(25, 30)
    for record in during:
        writer.submit(record)
    assert writer.flush(10)  # answered requests' records are all spooled: none waits on the database
    assert not writer.database_ok and "unable to open database file" in writer.last_error
    assert writer.spool.pending == 30 and writer.held == 0
    assert [r.id for r in writer.spool.read()[0]] == [r.id for r in during]

    away.rename(writers.root / "db")  # the database is back
    wait_for(lambda: writer.database_ok and writer.spool.pending == 0, what="the spool written back")
    after = records(55, 5)
    for record in after:
        writer.submit(record)
    assert writer.flush(10)
    writer.close()

    assert stored_in_insert_order(writers.db) == [r.id for r in before + during + after]  # none lost, none twice
    assert writers.data.joinpath("spool.jsonl").read_bytes() == b""
    assert counted(writer, "records_spooled") == 30
    assert counted(writer, "records_written") == 60
    assert counted(writer, "records_lost") == 0
    assert segments(writers.data / "journal") == []


def test_a_database_away_at_start_gets_the_records_once_it_is_there(writers):
    (writers.root / "db").rename(writers.root / "db-away")
    writer = writers.writer()
    writer.start()  # cannot migrate: records go to the spool
    sent = records(0, 12)
    for record in sent:
        writer.submit(record)
    assert writer.flush(10) and not writer.database_ok and writer.spool.pending == 12

    (writers.root / "db-away").rename(writers.root / "db")
    wait_for(lambda: writer.database_ok and writer.spool.pending == 0, what="the spool written back")
    writer.close()
    assert stored_in_insert_order(writers.db) == [r.id for r in sent]


def test_a_journal_left_by_a_killed_process_is_stored_at_start_without_doubling_what_was_stored(writers):
    writers.db.migrate()
    stored, queued = records(0, 5), records(5, 7)
    writers.db.insert_inspections(stored)  # stored just before the kill, their segment not yet dropped
    journal = Journal(writers.data / "journal")
    for record in stored + queued:  # journaled before their answers left
        journal.append(record)
    journal.close(everything_stored=False)  # the files as a SIGKILL leaves them: every line already in the OS
    assert len(segments(writers.data / "journal")) == 1

    writer = writers.writer()
    writer.start()
    assert stored_in_insert_order(writers.db) == [r.id for r in stored + queued]
    writer.close()
    assert segments(writers.data / "journal") == []
