"""Reloading models: a good file is swapped in without dropping requests; a bad or outside file is refused."""

from __future__ import annotations

import asyncio
import hashlib

import httpx
import pytest

from tests.conftest import jpeg_bytes
from vision.metadata import read_metadata

RAW = {"content-type": "image/jpeg"}


@pytest.fixture(scope="module")
def served(app_factory, models):
    """A service (in this process) on a trusted network (auth disabled) that may load models from the model folder."""
    server = app_factory({"model_dirs": [str(models["folder"])], "auth": {"mode": "disabled"}}).start()
    with server.client() as client:
        yield {"server": server, "client": client}
    server.stop()


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def active(client: httpx.Client) -> dict:
    return client.get("/v1/models").json()["active"]


def test_auth_disabled_needs_no_key(served):
    assert served["client"].get("/v1/models").status_code == 200


def test_models_lists_the_active_model_and_what_can_be_loaded(served, models):
    answer = served["client"].get("/v1/models").json()
    assert answer["active"]["sha256"] == sha256(models["model"])
    assert answer["active"]["version"] == read_metadata(models["model"]).version
    assert {str(models[name]) for name in ("model", "v2", "broken")} <= set(answer["available"])
    assert sha256(models["model"]) in {m["sha256"] for m in answer["loaded"]}


def test_reload_swaps_in_a_good_model_and_inspections_use_it(served, models):
    client = served["client"]
    answer = client.post("/v1/models/reload", json={"path": "model-v2.onnx"})
    assert answer.status_code == 200, answer.text
    v2 = read_metadata(models["v2"]).version
    assert answer.json()["version"] == v2 and answer.json()["sha256"] == sha256(models["v2"])
    result = client.post("/v1/inspect", content=jpeg_bytes(96, 96), headers=RAW).json()
    assert result["model"]["version"] == v2
    assert client.get(f"/v1/inspections/{result['id']}").json()["model_sha256"] == sha256(models["v2"])
    loaded = client.get("/v1/models").json()["loaded"]
    assert loaded[0]["sha256"] == sha256(models["v2"])  # newest first, recorded with its hash


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [("broken.onnx", 422, "invalid_model"), ("../outside.onnx", 403, "model_path_forbidden"),
     ("missing.onnx", 404, "model_not_found"), ("/etc/passwd", 403, "model_path_forbidden")],
)  # fmt: skip
def test_reload_refuses_and_the_old_model_keeps_serving(served, name, status, code):
    client = served["client"]
    before = active(client)
    answer = client.post("/v1/models/reload", json={"path": name})
    assert answer.status_code == status and answer.json()["error"]["code"] == code, answer.text
    assert active(client)["sha256"] == before["sha256"]
    result = client.post("/v1/inspect", content=jpeg_bytes(96, 96), headers=RAW)
    assert result.status_code == 200 and result.json()["model"]["version"] == before["version"]


def test_reload_refuses_an_absolute_path_outside_the_model_folders(served, models):
    answer = served["client"].post("/v1/models/reload", json={"path": str(models["outside"])})
    assert answer.status_code == 403


def test_requests_in_flight_during_a_reload_all_succeed_on_one_model_or_the_other(served, models):
    server = served["server"]
    versions = {read_metadata(models[name]).version for name in ("model", "v2")}
    image = jpeg_bytes(128, 128, seed=3)

    async def run() -> tuple[list[httpx.Response], httpx.Response]:
        async with server.async_client() as client:
            inspections = [client.post("/v1/inspect", content=image, headers=RAW) for _ in range(24)]
            swap = client.post("/v1/models/reload", json={"path": "model.onnx"})
            *answers, reloaded = await asyncio.gather(*inspections, swap)
        return answers, reloaded

    answers, reloaded = asyncio.run(run())
    assert reloaded.status_code == 200
    assert all(a.status_code == 200 for a in answers)
    assert {a.json()["model"]["version"] for a in answers} <= versions
    for a in answers[::6]:
        record = served["client"].get(f"/v1/inspections/{a.json()['id']}").json()
        assert record["model_version"] == a.json()["model"]["version"]
