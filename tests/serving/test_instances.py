"""Several `lineinspect serve` instances on one PostgreSQL database: they share one schema and one history."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa

from serving.monitor.lines import evaluate, store_alarms
from serving.records.alarms import list_alarms
from serving.records.database import Database
from serving.records.lines import BaselinePeriod
from serving.records.tables import inspections
from serving.settings import MonitorSettings
from tests.conftest import jpeg_bytes
from tests.nginx import Balancer
from tests.serving.conftest import metric, wait_for
from tests.serving.monitor.streams import hours_ago, records, write

TRUSTED = {"auth": {"mode": "disabled"}}


def test_instances_started_together_on_an_empty_database_migrate_it_once_and_store_every_record_once(
    server_factory, postgres
):
    """Both find no schema and migrate at the same moment: one waits for the other, neither fails."""
    url = postgres.database()
    servers = [server_factory({**TRUSTED, "database_url": url}).launch() for _ in range(2)]
    for server in servers:
        server.wait_started()

    def post(k: int) -> httpx.Response:
        url = servers[k % 2].url + "/v1/inspect"
        return httpx.post(url, content=jpeg_bytes(64, 64, seed=k), headers={"content-type": "image/jpeg"},
                          params={"line": "L-two"}, timeout=60)  # fmt: skip

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(40)))
    assert [a.status_code for a in answers] == [200] * 40
    for server in servers:
        with server.client() as client:
            assert client.get("/readyz").json()["records"] == "database"
            text = client.get("/metrics").text
            assert metric(text, "lineinspect_records_spooled_total") == 0
            # each instance names itself in /metrics (host name:port unless `instance` is set)
            named = {"instance": f"{socket.gethostname()}:{server.port}", "database": "postgresql"}
            assert metric(text, "lineinspect_instance_info", **named) == 1, text
        server.stop()
        log = server.log.read_text()
        assert "ERROR" not in log and "Traceback" not in log, log
    db = Database(url)
    with db.engine.connect() as connection:
        stored = connection.execute(sa.select(inspections.c.id).where(inspections.c.line == "L-two")).scalars().all()
        versions = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    db.close()
    assert sorted(stored) == sorted(a.json()["id"] for a in answers)
    assert len(versions) == 1


def test_instances_storing_a_lines_alarms_at_once_store_each_rule_once(postgres):
    """Two instances judge the same shift at the same moment: one stores its alarm, the other finds it stored. Five
    lines, five races: without the guard at least one of them fails on the unique rule or stores the alarm twice."""
    url = postgres.database()
    dbs = [Database(url) for _ in range(2)]
    for db in dbs:  # each connected before the race
        db.migrate()
    start = hours_ago(6)
    period = BaselinePeriod("", start, start + timedelta(seconds=20 * 200), 200, None, datetime.now(UTC))
    together = threading.Barrier(2)

    def store(db: Database, state) -> tuple[int, int]:
        together.wait()
        return store_alarms(db, state)

    for k in range(5):
        line = f"L{k}"
        dbs[0].insert_inspections(records(line, start, [0.05] * 20 + [0.15] * 10, 200, seed=k))
        state = evaluate(dbs[0], replace(period, line=line), MonitorSettings())
        with ThreadPoolExecutor(2) as pool:
            stored = sorted(pool.map(store, dbs, [state, state]))
        (alarm,) = list_alarms(dbs[0], line)
        assert stored == [(0, 0), (len(alarm.rules), 1)] and len(alarm.rules) >= 4
    for db in dbs:
        db.close()


def test_instances_watching_one_line_raise_its_alarm_once(server_factory, postgres):
    """Both evaluate the line every 0.3 s; the shift is one alarm, seen alike from either, and neither fails a round."""
    url = postgres.database()
    servers = [server_factory({**TRUSTED, "database_url": url, "monitor": {"interval_seconds": 0.3}}).launch()
               for _ in range(2)]  # fmt: skip
    for server in servers:
        server.wait_started()
    start = hours_ago(4)
    write(url, records("L-jump", start, [0.05] * 20 + [0.15] * 4, 400, seed=1))
    until = start + timedelta(seconds=20 * 400)
    body = {"since": start.isoformat(), "until": until.isoformat(), "subgroup": {"size": 400}}
    clients = [server.client() for server in servers]
    assert clients[0].put("/v1/lines/L-jump/baseline", json=body).status_code == 200
    for client in clients:  # each instance has evaluated the line since the alarm was stored
        wait_for(lambda c=client: metric(c.get("/metrics").text, "lineinspect_alarms_open", line="L-jump"),
                 what="the alarm in both instances' gauges")  # fmt: skip
    time.sleep(1)  # a few more rounds of both
    (alarm,) = clients[0].get("/v1/alarms", params={"line": "L-jump"}).json()["alarms"]
    assert clients[1].get("/v1/alarms", params={"line": "L-jump"}).json()["alarms"] == [alarm]
    assert ("p", "beyond_3sigma") in {(r["chart"], r["rule"]) for r in alarm["rules"]}
    for client, server in zip(clients, servers, strict=True):
        client.close()
        server.stop()
        log = server.log.read_text()
        assert "skipped a round" not in log and "ERROR" not in log and "Traceback" not in log, log


def test_a_key_created_or_revoked_once_is_seen_by_every_instance(server_factory, postgres):
    url = postgres.database()
    servers = [server_factory({"database_url": url}).launch() for _ in range(2)]
    for server in servers:
        server.wait_started()
    key = servers[0].keys("create", "camera-ha").stdout.strip()  # through the first instance's config

    def answers(server, status: int) -> bool:
        headers = {"X-API-Key": key, "content-type": "image/jpeg"}
        return httpx.post(server.url + "/v1/inspect", content=jpeg_bytes(64, 64), headers=headers).status_code == status

    for server in servers:
        wait_for(lambda s=server: answers(s, 200), what=f"{server.url} to accept the new key")
    servers[1].keys("revoke", "camera-ha")  # through the second's
    for server in servers:
        wait_for(lambda s=server: answers(s, 401), what=f"{server.url} to refuse the revoked key")
        server.stop()


def test_one_of_two_instances_killed_under_load_loses_and_doubles_no_record(server_factory, postgres):
    """5,000 requests, each with its Idempotency-Key, sent through nginx configured as README says to two instances;
    one instance is SIGKILLed mid-run and started again on its port (as `Restart=always` would), replaying its
    journal: every request answered 200 and exactly 5,000 records."""
    total, clients = 5000, 8
    url = postgres.database()
    # records gather 3 s before an insert: at the kill, the killed instance's newest records are only in its journal
    settings = {**TRUSTED, "database_url": url, "records": {"max_delay_ms": 3000}}
    servers = [server_factory(settings).start() for _ in range(2)]
    balancer = Balancer([server.port for server in servers]).start()
    images = [jpeg_bytes(96, 96, seed=k) for k in range(50)]
    requests = itertools.count()
    answered: dict[int, str] = {}  # request -> record id
    refused: list[int] = []
    resent: list[int] = []  # sent again by the camera: nginx found no instance to answer (502/503)
    broken: list[int] = []  # sent again by the camera: its answer was cut off (the instance died mid-answer)

    def client() -> None:
        with httpx.Client(timeout=60, headers={"content-type": "image/jpeg"}) as session:  # kept-alive connections
            while (k := next(requests)) < total:
                send(session, k)

    def send(session: httpx.Client, k: int) -> None:
        for _ in range(100):
            try:
                answer = session.post(
                    balancer.url + "/v1/inspect", content=images[k % 50], params={"line": "L-ha"},
                    headers={"Idempotency-Key": f"part-{k}"},
                )  # fmt: skip
            except httpx.RemoteProtocolError:  # nginx had begun relaying the answer when its instance died
                broken.append(k)
                continue
            if answer.status_code == 200:
                answered[k] = answer.json()["id"]
                return
            if answer.status_code not in (502, 503):
                refused.append(answer.status_code)
                return
            resent.append(k)
            time.sleep(0.1)
        refused.append(0)  # no instance answered

    killed = servers[0]
    with ThreadPoolExecutor(clients) as pool:
        done = [pool.submit(client) for _ in range(clients)]
        wait_for(lambda: len(answered) >= 1500, timeout=120, what="1500 answers")
        killed.process.kill()
        killed.process.wait()
        at_kill = set(answered.values())
        assert at_kill - stored_ids(url), "every answered record was already stored: the kill proves nothing"
        killed.start(ready=False, port=killed.port)  # nginx sends it requests again once it is listening
        for future in done:
            future.result()
    retried_by_nginx = f'upstream: "http://127.0.0.1:{killed.port}/v1/inspect' in balancer.error_log.read_text()
    balancer.stop()
    assert refused == [] and len(answered) == len(set(answered.values())) == total
    assert retried_by_nginx, "nginx never met the killed instance: the kill proves nothing"
    wait_for(lambda: set(answered.values()) <= stored_ids(url), timeout=60, what="every answered record stored")
    killed.wait_started()  # ready, its journal replayed
    for k in range(0, total, 500):  # a camera's late retry, to either instance: the stored record's id, not stored
        for server in servers:
            again = httpx.post(
                server.url + "/v1/inspect", content=images[k % 50], params={"line": "L-ha"},
                headers={"content-type": "image/jpeg", "Idempotency-Key": f"part-{k}"},
            )  # fmt: skip
            assert again.json()["id"] == answered[k] and again.headers["Idempotent-Replayed"] == "true"
    pages = []  # the whole history, paged through each instance: the same records in the same order
    for server in servers:
        with server.client() as client:
            page = {"next_offset": 0}
            listed: list[str] = []
            while page["next_offset"] is not None:
                params = {"line": "L-ha", "limit": 1000, "offset": page["next_offset"]}
                page = client.get("/v1/inspections", params=params).json()
                listed += [item["id"] for item in page["items"]]
            pages.append(listed)
        server.stop()
    assert pages[0] == pages[1]
    db = Database(url)
    with db.engine.connect() as connection:
        rows = connection.execute(sa.select(inspections.c.id).where(inspections.c.line == "L-ha")).scalars().all()
    db.close()
    # nothing lost, nothing stored twice: a request in flight at the kill (journaled by the killed instance,
    # unanswered, and sent by nginx to the other one) is one record under its key's id
    assert sorted(rows) == sorted(answered.values()) == sorted(pages[0])
    restarted = killed.log.read_text().rsplit("Started server", 1)[-1]  # its log since the start after the kill
    assert "segments of a process that did not stop cleanly" in restarted and "Traceback" not in restarted
    print(f"sent again by the cameras: {len(resent)} after a 502/503, {len(broken)} after an answer cut off")


def stored_ids(url: str) -> set[str]:
    db = Database(url)
    try:
        with db.engine.connect() as connection:
            return set(connection.execute(sa.select(inspections.c.id).where(inspections.c.line == "L-ha")).scalars())
    finally:
        db.close()
