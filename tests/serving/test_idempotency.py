"""Idempotency keys: a request sent again with its `Idempotency-Key` (a camera's retry after a timeout) is answered
with the same record id and stored once, on SQLite and on PostgreSQL; a key reused for another image is refused.
Two instances and a kill: tests/serving/test_instances.py."""

from __future__ import annotations

import httpx

from serving.service import record_id
from tests.conftest import jpeg_bytes
from tests.serving.conftest import metric

TRUSTED = {"auth": {"mode": "disabled"}}


def post(client: httpx.Client, data: bytes, key: str | None, line: str = "L-key") -> httpx.Response:
    headers = {"content-type": "image/jpeg"} | ({"Idempotency-Key": key} if key is not None else {})
    return client.post("/v1/inspect", content=data, headers=headers, params={"line": line})


def listed(client: httpx.Client, line: str) -> list[str]:
    return [item["id"] for item in client.get("/v1/inspections", params={"line": line}).json()["items"]]


def test_a_request_sent_again_with_its_key_is_answered_alike_and_stored_once(app_factory, database_url):
    # records gather 2 s before an insert, so the first retry comes while the first record is still on its way in
    server = app_factory({**TRUSTED, "database_url": database_url, "records": {"max_delay_ms": 2000}}).start()
    part, other = jpeg_bytes(96, 96, seed=1), jpeg_bytes(96, 96, seed=2)
    with server.client() as client:
        first, at_once = post(client, part, "part-0001"), post(client, part, "part-0001")
        assert first.status_code == at_once.status_code == 200, first.text + at_once.text
        assert "Idempotent-Replayed" not in at_once.headers  # not stored yet: inspected and written again, skipped
        answer = first.json()
        assert at_once.json()["id"] == answer["id"] and at_once.json()["score"] == answer["score"]
        assert client.get(f"/v1/inspections/{answer['id']}").status_code == 200  # waits for the write

        later = post(client, part, "part-0001")
        assert later.status_code == 200 and later.headers["Idempotent-Replayed"] == "true"
        assert [later.json()[k] for k in ("id", "verdict", "score")] == [answer[k] for k in ("id", "verdict", "score")]
        second = post(client, other, "part-0002")
        plain = [post(client, part, None).json()["id"] for _ in range(2)]  # no key: two parts, two records
        reused = post(client, other, "part-0001")
        assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"
        assert answer["id"] in reused.json()["error"]["message"]
        assert sorted(listed(client, "L-key")) == sorted([answer["id"], second.json()["id"], *plain])
        metrics = client.get("/metrics").text
        assert metric(metrics, "lineinspect_idempotent_retries_total") == 1
        assert metric(metrics, "lineinspect_records_written_total") == 4  # the early retry was skipped, not stored
        assert metric(metrics, "lineinspect_verdicts_total", line="L-key", verdict=answer["verdict"]) >= 2
    server.stop()


def test_a_batch_sent_again_with_its_key_keeps_one_record_per_image(app_factory, database_url):
    server = app_factory({**TRUSTED, "database_url": database_url}).start()
    files = [("images", (f"{k}.jpg", jpeg_bytes(96, 96, seed=10 + k), "image/jpeg")) for k in range(3)]
    with server.client() as client:

        def batch() -> list[str]:
            answer = client.post(
                "/v1/inspect/batch", files=files, data={"line": "L-lot"}, headers={"Idempotency-Key": "lot-7"}
            )
            assert answer.status_code == 200, answer.text
            return [result["id"] for result in answer.json()["results"]]

        ids = batch()
        assert len(set(ids)) == 3 and batch() == ids
        single = post(client, files[0][1][1], "lot-7", line="L-lot")  # the same key alone is another request
        assert single.json()["id"] not in ids
        assert sorted(listed(client, "L-lot")) == sorted([*ids, single.json()["id"]])
    server.stop()


def test_an_invalid_key_is_refused_before_anything_is_inspected(app_factory, database_url):
    server = app_factory({**TRUSTED, "database_url": database_url}).start()
    with server.client() as client:
        for key in ("", "k" * 256):
            answer = post(client, jpeg_bytes(96, 96, seed=3), key, line="L-bad-key")
            assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_idempotency_key"
        assert listed(client, "L-bad-key") == []
        assert "Idempotency-Key" in str(client.get("/openapi.json").json()["paths"]["/v1/inspect"])
    server.stop()


def test_a_key_belongs_to_its_client():
    """Two cameras (API keys) that happen to send the same key are two parts."""
    assert record_id("camera-1", "7") == record_id("camera-1", "7") != record_id("camera-2", "7")
    assert record_id(None, "7") != record_id(None, "8") and len(record_id(None, "7")) == 32
