"""Records: they survive a restart, a clean shutdown loses none, and a database outage spools them; on SQLite and on
PostgreSQL, but for SQLite's own failures (a locked file, a full disk under it)."""

from __future__ import annotations

import resource
import signal
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa

from serving.records.database import Database, InspectionFilter
from serving.records.model import InspectionRecord
from serving.records.tables import inspections
from tests.conftest import jpeg_bytes
from tests.postgres import Cluster
from tests.serving.conftest import metric, wait_for

RAW = {"content-type": "image/jpeg"}
TRUSTED = {"auth": {"mode": "disabled"}}


def post(url: str, seed: int, **params) -> httpx.Response:
    return httpx.post(
        url + "/v1/inspect", content=jpeg_bytes(96, 96, seed=seed), headers=RAW, params=params, timeout=60
    )


def stored(server, query: sa.Executable) -> list:
    db = Database(server.database_url)
    try:
        with db.engine.connect() as connection:
            return list(connection.execute(query).scalars())
    finally:
        db.close()


def stored_ids(server) -> set[str]:
    return set(stored(server, sa.select(inspections.c.id)))


def test_inspections_are_listed_newest_first_filtered_and_paged_alike_on_either_database(database_url):
    """Ties in time are ordered by id, so pages never overlap or skip; each record comes back as it was stored."""
    db = Database(database_url)
    db.migrate()
    t0 = datetime(2026, 12, 1, 6, tzinfo=UTC)
    made = [
        InspectionRecord(id=f"r{k:02d}", created_at=t0 + timedelta(seconds=k // 2), line=f"L{k % 3}",
                         camera=f"cam-{k % 2}", image_bytes=k, verdict=None if k % 7 == 0 else "normal",
                         error_code="not_an_image" if k % 7 == 0 else None, ocr_missing=k % 5 == 0)
        for k in range(20)
    ]  # fmt: skip
    db.insert_inspections(made)
    newest_first = sorted(made, key=lambda r: (r.created_at, r.id), reverse=True)
    pages = [db.list_inspections(InspectionFilter(), 7, offset) for offset in (0, 7, 14)]
    assert [r for page in pages for r in page] == newest_first
    since, until = t0 + timedelta(seconds=2), t0 + timedelta(seconds=8)
    where = InspectionFilter(line="L1", camera="cam-1", verdict="normal", since=since, until=until)
    assert db.list_inspections(where, 100, 0) == [
        r for r in newest_first
        if (r.line, r.camera, r.verdict) == ("L1", "cam-1", "normal") and since <= r.created_at < until
    ]  # fmt: skip
    errors = db.list_inspections(InspectionFilter(verdict="error"), 100, 0)
    assert [r.id for r in errors] == ["r14", "r07", "r00"]
    assert db.list_inspections(InspectionFilter(ocr_missing=True), 100, 0) == [r for r in newest_first if r.ocr_missing]
    db.close()


def test_records_survive_a_restart(server_factory, database_url, tmp_path):
    server = server_factory({**TRUSTED, "database_url": database_url}, root=tmp_path / "svc").start()
    ids = [post(server.url, seed, line="L-restart").json()["id"] for seed in range(3)]
    server.stop()
    server.start()
    with server.client() as client:
        for inspection_id in ids:
            assert client.get(f"/v1/inspections/{inspection_id}").json()["line"] == "L-restart"
    server.stop()


def test_sigterm_finishes_requests_in_flight_and_loses_no_record(server_factory, database_url, tmp_path):
    # one record per insert: the writer is still busy when the signal comes
    settings = {**TRUSTED, "database_url": database_url, "records": {"batch_size": 1}}
    server = server_factory(settings, root=tmp_path / "svc").start()
    first_answer = threading.Event()

    def one(seed: int) -> httpx.Response | None:
        try:
            answer = post(server.url, seed)
        except httpx.TransportError:
            return None  # sent after the server stopped listening: refused, not lost
        first_answer.set()
        return answer

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(one, seed) for seed in range(64)]
        assert first_answer.wait(60)
        server.process.send_signal(signal.SIGTERM)
        answers = [f.result() for f in futures]
    server.stop()
    answered = {a.json()["id"] for a in answers if a is not None and a.status_code == 200}
    assert answered, "some requests were answered before the shutdown"
    assert all(a is None or a.status_code == 200 for a in answers), "no request in flight failed"
    assert answered <= stored_ids(server)


def test_database_outage_spools_records_and_writes_them_back(server_factory, backend, tmp_path):
    database_url, database_back = backend.absent()  # the database cannot be opened
    root = tmp_path / "svc"
    (root / "data" / "spool.jsonl").mkdir(parents=True)  # and the spool cannot be written either
    server = server_factory(
        {**TRUSTED, "database_url": database_url, "records": {"retry_seconds": 0.2}}, root=root
    ).start(ready=False)
    client = server.client()

    held = post(server.url, 0, line="L-outage")
    assert held.status_code == 200  # the camera still gets its verdict
    ready = wait_for(lambda: (r := client.get("/readyz")).status_code == 503 and r, what="not ready")
    assert ready.json()["records"] == "failing" and ready.json()["records_held"] == 1
    text = client.get("/metrics").text
    assert metric(text, "lineinspect_records_held") == 1 and metric(text, "lineinspect_records_lost_total") == 0

    (root / "data" / "spool.jsonl").rmdir()  # the spool can be written again: the held record goes there too
    ids = [held.json()["id"]] + [post(server.url, seed, line="L-outage").json()["id"] for seed in range(1, 4)]
    ready = wait_for(lambda: (r := client.get("/readyz")).status_code == 200 and r.json()["spool_pending"] == 4 and r,
                     what="records spooled")  # fmt: skip
    assert ready.json()["records"] == "spool" and ready.json()["database_error"]
    text = client.get("/metrics").text
    assert metric(text, "lineinspect_database_up") == 0 and metric(text, "lineinspect_records_spooled_total") == 4
    for path in ("/v1/inspections", "/v1/alarms", "/v1/lines/L-outage/spc", "/dashboard/panel"):
        answer = client.get(path)  # every reading route answers alike, in one place (routes/errors.py)
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "database_unavailable", path

    database_back()
    wait_for(lambda: client.get("/readyz").json()["records"] == "database", what="the database to be used again")
    listed = client.get("/v1/inspections", params={"line": "L-outage"}).json()["items"]
    assert sorted(r["id"] for r in listed) == sorted(ids)
    assert client.get("/readyz").json()["spool_pending"] == 0
    assert metric(client.get("/metrics").text, "lineinspect_database_up") == 1
    client.close()
    server.stop()


def test_sigkill_under_load_loses_no_answered_record(server_factory, backend, database_url, tmp_path):
    # records gather 3 s before an insert: at the kill, most answered records are only in the journal
    settings = {**TRUSTED, "database_url": database_url, "records": {"max_delay_ms": 3000}}
    server = server_factory(settings, root=tmp_path / "svc").start()
    answered: list[str] = []
    stop = threading.Event()

    def client(k: int) -> None:
        seed = k
        while not stop.is_set():
            try:
                answer = post(server.url, seed % 50, line="L-kill")
            except httpx.TransportError:
                return  # the server is gone: the request was not answered
            if answer.status_code == 200:
                answered.append(answer.json()["id"])
            seed += 8

    with ThreadPoolExecutor(8) as pool:
        for k in range(8):
            pool.submit(client, k)
        wait_for(lambda: len(answered) >= 40, timeout=60, what="40 answers")
        server.process.kill()
        server.process.wait()
        stop.set()
    at_kill = stored_ids(server)
    assert len(set(answered) - at_kill) > 0, "every record was already stored: the test proves nothing"
    server.start()
    with server.client() as client:
        wait_for(lambda: set(answered) <= stored_ids(server), timeout=30, what="journaled records stored")
        assert client.get("/readyz").status_code == 200
    if backend.name == "sqlite":
        assert stored(server, sa.text("PRAGMA integrity_check")) == ["ok"]
    (count,) = stored(server, sa.select(sa.func.count()).where(inspections.c.line == "L-kill"))
    assert count >= len(answered) and len(set(answered)) == len(answered)
    server.stop()
    assert list((server.root / "data" / "journal").glob("segment-*")) == []  # a clean stop leaves no journal


def test_postgresql_restarted_under_load_loses_and_doubles_no_record(server_factory, tmp_path):
    """The database server goes away under load and comes back: every request is answered, the records made while
    it was down are spooled and written back once."""
    # its own server, not the suite's (restarted under other tests), and durable: the suite's runs with fsync and
    # synchronous commit off, so a crash there may lose transactions it had acknowledged (4 of 153 records here)
    cluster = Cluster(durable=True).start()
    try:
        settings = {**TRUSTED, "database_url": cluster.database(), "records": {"retry_seconds": 0.2}}
        server = server_factory(settings, root=tmp_path / "svc").start()
        answers: list[httpx.Response] = []
        stop = threading.Event()

        def client(k: int) -> None:
            seed = k
            while not stop.is_set():
                answers.append(post(server.url, seed % 50, line="L-pg-restart"))
                seed += 4

        with ThreadPoolExecutor(4) as pool:
            for k in range(4):
                pool.submit(client, k)
            wait_for(lambda: len(answers) >= 40, timeout=60, what="40 answers")
            cluster.stop_server()
            down = len(answers)
            wait_for(lambda: len(answers) >= down + 60, timeout=60, what="60 answers while the database is down")
            cluster.start_server()
            back = len(answers)
            wait_for(lambda: len(answers) >= back + 40, timeout=60, what="40 answers after it is back")
            stop.set()
        assert [a.status_code for a in answers] == [200] * len(answers)  # the cameras never noticed
        ids = [a.json()["id"] for a in answers]
        with server.client() as monitor:
            wait_for(lambda: monitor.get("/readyz").json()["records"] == "database", timeout=60, what="database")
            wait_for(lambda: set(ids) <= stored_ids(server), timeout=60, what="every answered record stored")
            assert metric(monitor.get("/metrics").text, "lineinspect_records_spooled_total") > 0, "no outage seen"
        (count,) = stored(server, sa.select(sa.func.count()).where(inspections.c.line == "L-pg-restart"))
        assert count == len(set(ids)) == len(ids)  # nothing lost, nothing doubled
        server.stop()
    finally:
        cluster.stop()


def test_locked_database_spools_records_until_the_lock_is_gone(server_factory, tmp_path):
    server = server_factory({**TRUSTED, "records": {"retry_seconds": 0.2}}, root=tmp_path / "svc").start()
    client = server.client()
    locker = sqlite3.connect(server.root / "data" / "lineinspect.db", timeout=0, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another program holds the database
    try:
        ids = [post(server.url, seed, line="L-locked").json()["id"] for seed in range(3)]
        ready = wait_for(lambda: (r := client.get("/readyz").json())["spool_pending"] == 3 and r, timeout=60,
                         what="records spooled while the database is locked")  # fmt: skip
        assert ready["records"] == "spool" and "locked" in ready["database_error"]
        assert metric(client.get("/metrics").text, "lineinspect_database_up") == 0
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    wait_for(lambda: client.get("/readyz").json()["records"] == "database", what="the database to be used again")
    assert ids and set(ids) <= stored_ids(server)
    client.close()
    server.stop()


def test_disk_full_holds_records_in_memory_until_they_can_be_written(server_factory, tmp_path):
    """A file-size limit on the running service (RLIMIT_FSIZE, what a full disk looks like to a write)."""
    server = server_factory({**TRUSTED, "records": {"retry_seconds": 0.2}}, root=tmp_path / "svc").start()
    client = server.client()
    ids = [post(server.url, seed, line="L-full").json()["id"] for seed in range(2)]
    wait_for(lambda: set(ids) <= stored_ids(server), what="records stored before the disk fills")
    resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))
    try:
        answers = [post(server.url, seed, line="L-full") for seed in range(2, 5)]
        assert [a.status_code for a in answers] == [200, 200, 200]  # the cameras still get their verdicts
        ids += [a.json()["id"] for a in answers]
        ready = wait_for(lambda: (r := client.get("/readyz")).status_code == 503 and r, what="not ready")
        assert ready.json()["records"] == "failing" and ready.json()["records_held"] >= 1
        text = client.get("/metrics").text
        assert metric(text, "lineinspect_records_held") >= 1 and metric(text, "lineinspect_records_lost_total") == 0
    finally:
        resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30, what="ready again")
    wait_for(lambda: set(ids) <= stored_ids(server), timeout=30, what="held records stored")
    assert stored(server, sa.text("PRAGMA integrity_check")) == ["ok"]
    client.close()
    server.stop()
