"""Line monitoring in the running service: baselines, the SPC and drift endpoints, alarms raised in the
background and acknowledged, Prometheus gauges. Records are generated streams with known shifts written
into the service's database (SQLite, then PostgreSQL), or real images posted to /v1/inspect."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest

from tests.serving.conftest import metric, wait_for
from tests.serving.monitor.streams import hours_ago, records, write

SIZE = 400  # records per subgroup
BASELINE, JUMP_AT = 20, 24  # subgroups: the baseline, then in control until the jump
# The seed is fixed: rules also fire on in-control data at their nominal rates (about 1.5% per subgroup for the five
# together, tested in test_spc.py), so another seed may show one before the jump.


@pytest.fixture(scope="module")
def monitored(app_factory, backend):
    """A service (in this process) evaluating every 0.3 s, keys on; line L-jump's defect rate jumps from 5% to 15%
    at subgroup 24."""
    monitor = {"interval_seconds": 0.3, "min_drift_records": 20}
    server = app_factory({"database_url": backend.database(), "monitor": monitor})
    key = server.keys("create", "engineer").stdout.strip()
    server.start()
    start = hours_ago(4)
    rates = [0.05] * JUMP_AT + [0.15] * 4
    made = records("L-jump", start, rates, SIZE, seed=1)
    write(server.database_url, made)
    with server.client(key) as client:
        yield {"server": server, "client": client, "key": key, "start": start, "records": made}
    server.stop()


def baseline_body(start, subgroups=BASELINE, size=SIZE) -> dict:
    until = start + timedelta(seconds=subgroups * size)
    return {"since": start.isoformat(), "until": until.isoformat(), "subgroup": {"size": size}, "note": "week 47"}


def test_a_line_without_a_baseline_says_how_to_set_one(monitored):
    answer = monitored["client"].get("/v1/lines/L-jump/spc")
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "no_baseline"
    assert "PUT /v1/lines/L-jump/baseline" in answer.json()["error"]["message"]


def test_a_baseline_too_short_for_limits_is_refused(monitored):
    answer = monitored["client"].put("/v1/lines/L-jump/baseline", json=baseline_body(monitored["start"], subgroups=1))
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "baseline_too_short"
    assert "at least 2" in answer.json()["error"]["message"]
    reversed_period = {
        **baseline_body(monitored["start"]),
        "since": (monitored["start"] + timedelta(days=1)).isoformat(),
    }
    assert monitored["client"].put("/v1/lines/L-jump/baseline", json=reversed_period).status_code == 422
    both = {**baseline_body(monitored["start"]), "subgroup": {"size": 100, "minutes": 10}}
    answer = monitored["client"].put("/v1/lines/L-jump/baseline", json=both)
    assert answer.status_code == 422 and "exactly one of size" in answer.json()["error"]["message"]


def test_a_defect_rate_jump_fires_at_its_subgroup_and_is_alarmed_without_anyone_asking(monitored):
    client, start = monitored["client"], monitored["start"]
    answer = client.put("/v1/lines/L-jump/baseline", json=baseline_body(start))
    assert answer.status_code == 200, answer.text
    spc = answer.json()
    assert spc["estimate"]["subgroups"] == BASELINE and spc["estimate"]["records"] == BASELINE * SIZE
    assert 0.04 < spc["estimate"]["p"] < 0.06
    assert len(spc["p"]["points"]) == JUMP_AT + 4
    jump_start = monitored["records"][JUMP_AT * SIZE].created_at
    first = spc["p"]["signals"][0]
    assert (first["rule"], first["start"]) == ("beyond_3sigma", jump_start.isoformat().replace("+00:00", "Z"))
    assert all(not p["rules"] for p in spc["p"]["points"][:JUMP_AT]), "no signal on in-control subgroups"
    assert spc["out_of_control"]["p"] is True
    # the background evaluation stored the alarm and publishes it; nobody had to look at a chart. The jump fires
    # four rules on two charts: one event, one alarm that lists them
    (alarm,) = wait_for(lambda: client.get("/v1/alarms", params={"line": "L-jump", "open": True}).json()["alarms"])
    assert alarm["subgroup_start"].startswith(jump_start.strftime("%Y-%m-%dT%H:%M:%S"))
    rules = {(r["chart"], r["rule"]): r for r in alarm["rules"]}
    assert {("p", "beyond_3sigma"), ("p", "2_of_3_beyond_2sigma"), ("p", "4_of_5_beyond_1sigma"),
            ("ewma", "ewma_beyond_limits")} <= set(rules)  # fmt: skip
    first = rules["p", "beyond_3sigma"]
    assert first["subgroup_start"] == alarm["subgroup_start"] and "defect rate" in first["detail"]
    assert first["rule_text"] == "a point beyond the 3-sigma limits"
    text = client.get("/metrics").text
    assert metric(text, "lineinspect_alarms_open", line="L-jump") == 1
    assert metric(text, "lineinspect_alarm_rules_open", line="L-jump", chart="p", rule="beyond_3sigma") == 1
    assert metric(text, "lineinspect_out_of_control", line="L-jump", chart="p") == 1


def test_an_alarm_is_acknowledged_once_with_a_note_and_stays_on_record(monitored):
    client = monitored["client"]
    client.put("/v1/lines/L-jump/baseline", json=baseline_body(monitored["start"]))
    alarm = wait_for(lambda: client.get("/v1/alarms", params={"line": "L-jump", "open": True}).json()["alarms"])[0]
    answer = client.post(f"/v1/alarms/{alarm['id']}/ack", json={"note": "die 3 replaced"})
    assert answer.status_code == 200
    assert answer.json()["acknowledged_by"] == "engineer" and answer.json()["note"] == "die 3 replaced"
    assert answer.json()["rules"] == alarm["rules"]  # every rule of the event, acknowledged at once
    assert not client.get("/v1/alarms", params={"line": "L-jump", "open": True}).json()["alarms"]
    assert metric(client.get("/metrics").text, "lineinspect_alarms_open", line="L-jump") == 0
    again = client.post(f"/v1/alarms/{alarm['id']}/ack", json={"note": "again"})
    assert again.status_code == 409 and "already acknowledged" in again.json()["error"]["message"]
    assert client.post("/v1/alarms/999999/ack", json={"note": "x"}).status_code == 404
    assert client.post(f"/v1/alarms/{alarm['id']}/ack", json={"note": ""}).status_code == 422
    everything = client.get("/v1/alarms", params={"line": "L-jump"}).json()["alarms"]
    assert alarm["id"] in [a["id"] for a in everything]
    still_open = [a["id"] for a in client.get("/v1/alarms", params={"line": "L-jump", "open": True}).json()["alarms"]]
    assert alarm["id"] not in still_open
    # the background evaluation goes on and does not raise the same episode again
    acked_at = time.time()
    wait_for(
        lambda: metric(client.get("/metrics").text, "lineinspect_monitor_evaluated_timestamp_seconds") > acked_at,
        what="another background evaluation",
    )
    assert client.get("/v1/alarms", params={"line": "L-jump"}).json()["alarms"] == everything


def test_monitoring_needs_a_key(monitored):
    with monitored["server"].client() as anonymous:
        assert anonymous.get("/v1/lines/L-jump/spc").status_code == 401
        assert anonymous.post("/v1/alarms/1/ack", json={"note": "x"}).status_code == 401
        page = anonymous.get("/dashboard")
        assert page.status_code == 401 and page.headers["www-authenticate"].startswith("Basic")
        assert anonymous.get("/dashboard", auth=("anyone", monitored["key"])).status_code == 200


def test_lines_lists_baselines_and_open_alarms(monitored):
    client = monitored["client"]
    client.put("/v1/lines/L-jump/baseline", json=baseline_body(monitored["start"]))
    write(monitored["server"].database_url, records("L-quiet", hours_ago(2), [0.05], 10, seed=9))
    lines = {line["line"]: line for line in client.get("/v1/lines").json()}
    assert lines["L-jump"]["baseline"]["subgroup"] == {"size": SIZE, "minutes": None}
    assert lines["L-quiet"]["baseline"] is None and lines["L-quiet"]["problem"] == "no baseline set"
    panel = client.get("/dashboard/panel")  # the dashboard's own queries, on either database
    assert panel.status_code == 200 and "L-jump" in panel.text and "no baseline set" in panel.text


def _shot(image: np.ndarray, how: str) -> bytes:
    if how == "dark":
        image = (image * 0.35).astype(np.uint8)
    elif how == "blurred":
        image = cv2.GaussianBlur(image, (0, 0), 4)
    return cv2.imencode(".jpg", image)[1].tobytes()


def test_a_camera_going_dark_and_one_going_out_of_focus_are_flagged_from_real_images(monitored, casting_images):
    """Two cameras post real casting photos; after the baseline one sees them darkened, the other blurred."""
    client = monitored["client"]
    photos = [cv2.imread(str(p)) for p in casting_images["normal"][:40]]
    since = hours_ago(0.01)

    def post(camera: str, how: str, count: int) -> None:
        for i in range(count):
            image = _shot(photos[i % len(photos)], how)
            answer = client.post("/v1/inspect", content=image, headers={"content-type": "image/jpeg"},
                                 params={"line": "L-cams", "camera": camera})  # fmt: skip
            assert answer.status_code == 200, answer.text

    for camera in ("cam-dark", "cam-blur"):
        post(camera, "as is", 40)
    until = datetime.now(UTC)
    post("cam-dark", "dark", 20)
    post("cam-blur", "blurred", 20)
    body = {"since": since.isoformat(), "until": until.isoformat(), "subgroup": {"size": 20}}
    assert client.put("/v1/lines/L-cams/baseline", json=body).status_code == 200
    drift = client.get("/v1/lines/L-cams/drift").json()
    cameras = {c["camera"]: c for c in drift["cameras"]}
    assert cameras["cam-dark"]["baseline_records"] == 40
    # each camera is flagged for its own fault only (the scores may shift as well: the model sees the change)
    assert {"dark"} <= set(cameras["cam-dark"]["findings"]) <= {"dark", "score_shift"}
    assert {"blurred"} <= set(cameras["cam-blur"]["findings"]) <= {"blurred", "score_shift"}
    newest = cameras["cam-dark"]["subgroups"][-1]["metrics"]["brightness"]
    assert newest["ratio"] < 0.5 and newest["psi"] > 1
    rules = [r for a in client.get("/v1/alarms", params={"line": "L-cams"}).json()["alarms"] for r in a["rules"]]
    assert {(r["camera"], r["rule"]) for r in rules if r["chart"] == "drift" and r["rule"] != "score_shift"} == {
        ("cam-dark", "dark"),
        ("cam-blur", "blurred"),
    }


def test_subgroups_by_time_window_fire_at_the_window_of_the_jump(monitored):
    """The same stream in 20-minute windows: the baseline is the first 8 windows; the jump starts window 8."""
    client, start = monitored["client"], monitored["start"]
    body = {
        "since": start.isoformat(),
        "until": (start + timedelta(minutes=160)).isoformat(),
        "subgroup": {"minutes": 20},
    }
    spc = client.put("/v1/lines/L-jump/baseline", json=body).json()
    assert spc["baseline"]["subgroup"] == {"size": None, "minutes": 20.0}
    assert spc["estimate"]["subgroups"] == 8 and spc["estimate"]["records"] == 8 * 1200
    points = spc["p"]["points"]
    assert [p["n"] for p in points] == [1200] * 9 + [400]  # the last window has ended, part-filled
    first = spc["p"]["signals"][0]
    assert first["rule"] == "beyond_3sigma"
    assert first["start"] == (start + timedelta(minutes=160)).isoformat().replace("+00:00", "Z")


def test_a_step_in_the_defect_rate_is_alarmed_when_its_subgroup_completes_not_at_the_next_timer(
    app_factory, casting_images
):
    """Evaluation every hour by the timer; parts posted through /v1/inspect in subgroups of 20. Four subgroups with
    one defect each are the baseline; then a subgroup with ten. The alarm is there seconds after its 20th part."""
    server = app_factory({"monitor": {"interval_seconds": 3600}})
    key = server.keys("create", "engineer").stdout.strip()
    server.start()
    with server.client(key) as client:

        def post(path, line: str) -> str:
            answer = client.post("/v1/inspect", content=path.read_bytes(), headers={"content-type": "image/jpeg"},
                                 params={"line": line})  # fmt: skip
            assert answer.status_code == 200, answer.text
            return answer.json()["verdict"]

        # one photo the model passes and one it rejects (probed on another line)
        good = next(p for p in casting_images["normal"][:20] if post(p, "L-probe") == "normal")
        bad = next(p for p in casting_images["defect"][:20] if post(p, "L-probe") == "defect")
        since = datetime.now(UTC) - timedelta(seconds=1)
        for _ in range(4):
            for i in range(20):
                assert post(bad if i == 0 else good, "L-step") == ("defect" if i == 0 else "normal")
        body = {"since": since.isoformat(), "until": datetime.now(UTC).isoformat(), "subgroup": {"size": 20}}
        answer = client.put("/v1/lines/L-step/baseline", json=body)
        assert answer.status_code == 200 and answer.json()["estimate"]["subgroups"] == 4, answer.text
        step_start = datetime.now(UTC)
        for i in range(20):
            post(bad if i % 2 == 0 else good, "L-step")
            if i < 19:
                assert not client.get("/v1/alarms", params={"line": "L-step"}).json()["alarms"]
        posted = time.monotonic()
        alarms = wait_for(lambda: client.get("/v1/alarms", params={"line": "L-step"}).json()["alarms"], timeout=20,
                          what="the alarm of the completed subgroup")  # fmt: skip
        assert time.monotonic() - posted < 20  # the timer would have taken an hour
        rules = [r for a in alarms for r in a["rules"]]
        assert any(r["chart"] == "p" and r["rule"] == "beyond_3sigma" for r in rules)
        assert all(datetime.fromisoformat(r["subgroup_start"]) >= step_start for r in rules)
