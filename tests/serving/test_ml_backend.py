"""The service as Label Studio's ML backend, driven by a real Label Studio, and send-review back to it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import httpx
import pytest

from annotation.labelstudio.client import Connection
from annotation.labelstudio.label_config import classification_config
from annotation.labelstudio.projects import create_project, list_tasks, upload
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
    models = service["client"].get("/v1/models").json()
    version = f"{models['active']['name']}-{models['active']['version']}"
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


def test_a_config_the_model_cannot_answer_is_refused_at_connect(conn, label_studio, service):
    project = create_project(conn, "OK/NG", labels=("OK", "NG"))
    result = cli("labelstudio", "connect", "--project", project.id, "--service-url", service["server"].url,
                 "--service-key", service["key"], *_ls_args(label_studio), check=False)  # fmt: skip
    assert result.returncode == 2 and "no choice 'normal'" in result.stderr and "--label" in result.stderr
    with pytest.raises(Exception, match="422"):  # Label Studio itself calls /setup and is refused
        conn.sdk.ml.create(project=project.id, url=service["server"].url + "/labelstudio", auth_method="BASIC_AUTH",
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
