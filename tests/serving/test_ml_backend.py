"""The service as Label Studio's ML backend, driven by a real Label Studio, and send-review back to it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import httpx
import pytest

from annotation.labelstudio.client import Connection, LabelStudioError
from annotation.labelstudio.label_config import classification_config
from annotation.labelstudio.projects import create_project, list_tasks, upload
from serving.benchmarks.local_server import free_port
from tests.serving.conftest import cli, metric, wait_for


@pytest.fixture(scope="module")
def conn(label_studio) -> Connection:
    return Connection(label_studio["url"], label_studio["token"])


def _ls_args(label_studio) -> list[str]:
    return ["--url", label_studio["url"], "--token", label_studio["token"]]


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"labelstudio:{key}".encode()).decode()}


@pytest.fixture(scope="module")
def project_with_images(conn, casting_images) -> int:
    project = create_project(conn, "live predictions")
    files = {f"{i:016x}": path for i, path in enumerate(casting_images["defect"][:3] + casting_images["normal"][:3])}
    upload(conn, project.id, files, log=lambda _: None)
    return project.id


def test_label_studio_gets_predictions_from_the_service(conn, label_studio, service, project_with_images):
    server, key = service["server"], service["key"]
    cli("labelstudio", "connect", "--project", project_with_images, "--service-url", server.url,
        "--service-key", key, *_ls_args(label_studio))  # fmt: skip
    (backend,) = conn.sdk.ml.list(project=project_with_images)
    assert backend.state == "CO", backend.error_message  # connected: /health and /setup answered
    conn.sdk.actions.create(id="retrieve_tasks_predictions", project=project_with_images, selected_items={"all": True})
    version = _live_version(service)
    tasks = list_tasks(conn, project_with_images)
    assert len(tasks) == 6
    for task in tasks:
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == version
        (result,) = prediction["result"]
        assert (result["from_name"], result["to_name"]) == ("verdict", "image")
        assert result["value"]["choices"][0] in ("normal", "defect")
    text = service["client"].get("/metrics").text
    assert metric(text, "lineinspect_labelstudio_calls_total", endpoint="setup", outcome="ok") >= 1
    assert metric(text, "lineinspect_labelstudio_calls_total", endpoint="predict", outcome="ok") >= 1


def _live_version(service) -> str:
    active = service["client"].get("/v1/models").json()["active"]
    return f"{active['name']}-{active['version']}-live"


def _predict_calls(service) -> float:
    text = service["client"].get("/metrics").text
    return metric(text, "lineinspect_labelstudio_calls_total", endpoint="predict", outcome="ok")


@pytest.fixture
def batch_then_connected(conn, label_studio, service, models, casting_images, tmp_path) -> dict:
    """A project whose two tasks hold a prediction from `lineinspect labelstudio predict`, then `connect` run
    (twice: the second replaces the first)."""
    project = create_project(conn, "batch, then live").id
    files = {f"{i:016x}": path for i, path in enumerate([casting_images["defect"][10], casting_images["normal"][10]])}
    upload(conn, project, files, log=lambda _: None)
    cli("labelstudio", "predict", "--project", project, "--model", models["model"], "--cache", tmp_path,
        *_ls_args(label_studio))  # fmt: skip
    for _ in range(2):
        cli("labelstudio", "connect", "--project", project, "--service-url", service["server"].url,
            "--service-key", service["key"], *_ls_args(label_studio))  # fmt: skip
    (backend,) = conn.sdk.ml.list(project=project)
    tasks = list_tasks(conn, project)
    batch = {p["model_version"] for t in tasks for p in t["predictions"]}
    assert len(tasks) == 2 and all(len(t["predictions"]) == 1 for t in tasks) and len(batch) == 1
    assert batch != {_live_version(service)}
    return {"project": project, "backend": backend, "tasks": tasks}


def test_the_labelling_stream_asks_the_service_for_a_task_predicted_in_batch(conn, service, batch_then_connected):
    """Label All Tasks: Label Studio asks its live model for the task it opens (opening a task from the Data
    Manager does not, for a task that holds a prediction)."""
    headers, before = conn.sdk._client_wrapper.get_headers(), _predict_calls(service)
    for task in batch_then_connected["tasks"]:
        assert httpx.get(f"{conn.url}/api/tasks/{task['id']}", headers=headers, timeout=60).status_code == 200
    assert _predict_calls(service) == before
    url = f"{conn.url}/api/projects/{batch_then_connected['project']}/next"
    task = httpx.get(url, headers=headers, timeout=60).json()
    assert _predict_calls(service) == before + 1
    assert [p["model_version"] for p in task["predictions"]] == [_live_version(service)]
    (stored,) = [t for t in list_tasks(conn, batch_then_connected["project"]) if t["id"] == task["id"]]
    assert _live_version(service) in {p["model_version"] for p in stored["predictions"]}


def test_retrieve_predictions_asks_the_service_for_tasks_predicted_in_batch(conn, service, batch_then_connected):
    """Data Manager > Actions > Retrieve Predictions."""
    project, before = batch_then_connected["project"], _predict_calls(service)
    conn.sdk.actions.create(id="retrieve_tasks_predictions", project=project, selected_items={"all": True})
    assert _predict_calls(service) == before + 1  # both tasks in one request
    for task in list_tasks(conn, project):
        live = [p for p in task["predictions"] if p["model_version"] == _live_version(service)]
        assert len(task["predictions"]) == 2 and len(live) == 1
        assert live[0]["result"][0]["value"]["choices"][0] in ("normal", "defect")


def test_predict_after_connect_takes_label_all_tasks_back_from_the_service(
    conn, label_studio, service, models, batch_then_connected, tmp_path
):
    """A project has one model version: `predict --order-by-uncertainty` after `connect` makes the batch predictions
    the ones Label All Tasks shows and orders by, and the service is no longer asked (the last one set wins)."""
    project = batch_then_connected["project"]
    result = cli("labelstudio", "predict", "--project", project, "--model", models["model"], "--cache", tmp_path,
                 "--order-by-uncertainty", *_ls_args(label_studio))  # fmt: skip
    assert "nearest the threshold first; the service is no longer asked live" in " ".join(result.stderr.split())
    (batch,) = {p["model_version"] for t in batch_then_connected["tasks"] for p in t["predictions"]}
    assert conn.sdk.projects.get(project).model_version == batch
    before = _predict_calls(service)
    task = httpx.get(f"{conn.url}/api/projects/{project}/next", headers=conn.sdk._client_wrapper.get_headers(),
                     timeout=60).json()  # fmt: skip
    assert _predict_calls(service) == before
    (shown,) = task["predictions"]
    assert shown["model_version"] == batch
    assert shown["score"] == min(t["predictions"][0]["score"] for t in batch_then_connected["tasks"])


def test_interactive_annotating_asks_the_service(conn, service, batch_then_connected):
    """`POST /api/ml/ID/interactive-annotating`: one task's prediction, answered and not stored."""
    backend, task = batch_then_connected["backend"], batch_then_connected["tasks"][0]
    assert backend.is_interactive
    before = _predict_calls(service)
    answer = httpx.post(f"{conn.url}/api/ml/{backend.id}/interactive-annotating", json={"task": task["id"]},
                        headers=conn.sdk._client_wrapper.get_headers(), timeout=60).json()  # fmt: skip
    assert _predict_calls(service) == before + 1
    assert answer["data"]["model_version"] == _live_version(service)
    assert answer["data"]["result"][0]["value"]["choices"][0] in ("normal", "defect")


@pytest.mark.parametrize(
    ("where", "key", "said"),
    [
        ("dead", "good", "cannot reach the ML backend at http://127.0.0.1:{port}/labelstudio (connection refused"),
        ("elsewhere", "good", "cannot reach the ML backend at {service}/elsewhere/labelstudio (it answered HTTP 404"),
        (
            "unnamed",
            "good",
            "Label Studio cannot resolve the host name no-such-line-pc.invalid on its machine: give --service-url "
            "with an address Label Studio's machine knows",
        ),
        ("service", "wrong", "the service refused the key: give an API key of the service as --service-key"),
    ],
)
def test_connect_says_in_one_line_why_label_studio_cannot_use_the_service(
    conn, label_studio, service, where, key, said
):
    port, url = free_port(), service["server"].url
    service_url = {"dead": f"http://127.0.0.1:{port}", "elsewhere": f"{url}/elsewhere", "service": url,
                   "unnamed": "http://no-such-line-pc.invalid:8000"}[where]  # fmt: skip
    project = create_project(conn, f"connect to {where}").id
    result = cli("labelstudio", "connect", "--project", project, "--service-url", service_url,
                 "--service-key", service["key"] if key == "good" else "not-a-key", *_ls_args(label_studio),
                 check=False)  # fmt: skip
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot connect the ML backend: ") and said.format(port=port, service=url) in line
    assert "<a" not in line and "Ssrf" not in line and "Traceback" not in line
    assert conn.sdk.ml.list(project=project) == []


def test_a_config_the_model_cannot_answer_is_refused_at_connect(conn, label_studio, service):
    project = create_project(conn, "OK/NG", labels=("OK", "NG"))
    result = cli("labelstudio", "connect", "--project", project.id, "--service-url", service["server"].url,
                 "--service-key", service["key"], *_ls_args(label_studio), check=False)  # fmt: skip
    assert result.returncode == 2 and "no choice 'normal'" in result.stderr and "--label" in result.stderr
    backend = service["server"].url + "/labelstudio"
    refused = rf"^cannot connect: the ML backend at {backend} refused the project \(422 Client Error[^\n]*log says why$"
    with pytest.raises(LabelStudioError, match=refused):  # Label Studio itself calls /setup and is refused
        conn.call(conn.sdk.ml.create, "connect", project=project.id, url=backend, auth_method="BASIC_AUTH",
                  basic_auth_user="labelstudio", basic_auth_pass=service["key"])  # fmt: skip
    text = service["client"].get("/metrics").text
    assert metric(text, "lineinspect_labelstudio_calls_total", endpoint="setup", outcome="label_config_mismatch") >= 1


def test_protocol_calls_as_label_studio_makes_them(service, label_studio, conn, project_with_images):
    url = service["server"].url + "/labelstudio"
    assert httpx.get(url + "/health").status_code == 401  # the key is needed, as Basic Auth password
    health = httpx.get(url + "/health", headers=_basic(service["key"])).json()
    assert health["status"] == "UP"
    tasks = list_tasks(conn, project_with_images)[:2]
    missing = {"id": 999, "data": {"image": "/data/upload/nope.png"}}
    body = {
        "tasks": [{"id": t["id"], "data": t["data"]} for t in tasks] + [missing],
        "label_config": classification_config(),
        "project": f"{project_with_images}.1700000000",
        "params": {},
    }
    answer = httpx.post(url + "/predict", json=body, headers=_basic(service["key"]), timeout=60).json()
    assert [bool(r["result"]) for r in answer["results"]] == [True, True, False]  # one answer per task, in order
    mismatch = {**body, "label_config": classification_config(("OK", "NG"))}
    refused = httpx.post(url + "/predict", json=mismatch, headers=_basic(service["key"]), timeout=60)
    assert refused.status_code == 422 and "no choice 'normal'" in refused.json()["error"]["message"]
    event = {"action": "ANNOTATION_CREATED", "project": {"id": project_with_images}}
    assert (
        httpx.post(url + "/webhook", json=event, headers=_basic(service["key"])).json()["action"]
        == "ANNOTATION_CREATED"
    )


def test_send_review_sends_kept_images_once_with_predictions(conn, label_studio, service, casting_images):
    since = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
    posted = []
    for path in casting_images["defect"][5:8]:
        answer = service["client"].post("/v1/inspect", files={"image": (path.name, path.read_bytes(), "image/jpeg")},
                                        data={"line": "line-7", "camera": "cam-2"})  # fmt: skip
        posted.append(answer.json())
    wait_for(lambda: all(service["client"].get(f"/v1/inspections/{a['id']}").status_code == 200 for a in posted),
             what="records written")  # fmt: skip
    project = create_project(conn, "review")
    args = ["labelstudio", "send-review", "--project", project.id, "--since", since,
            "--config", service["server"].config, *_ls_args(label_studio)]  # fmt: skip
    first = " ".join(cli(*args).stderr.split())
    assert "3 with a kept image: 3 sent" in first, first
    tasks = {t["data"]["inspection_id"]: t for t in list_tasks(conn, project.id)}
    assert set(tasks) == {a["id"] for a in posted}
    for answer in posted:
        task = tasks[answer["id"]]
        assert (task["data"]["line"], task["data"]["camera"]) == ("line-7", "cam-2")
        (prediction,) = task["predictions"]
        assert prediction["result"][0]["value"]["choices"] == [answer["verdict"]]
        assert prediction["model_version"] == f"{answer['model']['name']}-{answer['model']['version']}"
    version = prediction["model_version"]
    assert f"Label All Tasks shows {version}'s predictions" in first, first
    assert "another model" not in first
    assert conn.sdk.projects.get(project.id).model_version == version
    shown = httpx.get(f"{conn.url}/api/projects/{project.id}/next", headers=conn.sdk._client_wrapper.get_headers(),
                      timeout=60).json()  # what an annotator's Label All Tasks gets  # fmt: skip
    assert [p["model_version"] for p in shown["predictions"]] == [version]
    again = " ".join(cli(*args).stderr.split())
    assert "0 sent, 3 already in project" in again, again
    assert len(list_tasks(conn, project.id)) == 3


def test_a_foreign_image_url_is_not_fetched_and_its_signature_never_logged(models, caplog):
    """A task pointing outside Label Studio (a presigned cloud URL) gets no prediction; the log names the file
    without the URL's query, which carries the signature."""
    import asyncio

    from serving.engine import Engine, load_model
    from serving.labelstudio_backend import LabelStudioBackend
    from serving.metrics import Metrics
    from serving.settings import EngineSettings, LabelStudioSettings

    settings = EngineSettings()
    engine = Engine(load_model(models["model"], settings, 10**7), settings, 10**7, Metrics())
    backend = LabelStudioBackend(LabelStudioSettings(url="http://127.0.0.1:9"), engine)
    task = {"id": 7, "data": {"image": "https://bucket.example/part.jpg?X-Amz-Signature=s3cr3t"}}
    with caplog.at_level("WARNING", logger="lineinspect"):
        [answer] = asyncio.run(backend.predict([task], classification_config(), "1.1"))
    assert answer["result"] == []
    assert "https://bucket.example/part.jpg is not served by Label Studio" in caplog.text
    assert "s3cr3t" not in caplog.text
