"""Inspecting real casting images over HTTP: verdicts, records, batches, parity with offline inspect."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import shutil
from pathlib import Path

from annotation.export_writer import labelled_task, write_export
from tests.serving.conftest import cli, metric
from vision.metadata import read_metadata


def test_multipart_image_gets_a_verdict_and_a_record(app_service, casting_images, models):
    client, path = app_service["client"], casting_images["defect"][0]
    data = path.read_bytes()
    tags = {"line": "L1", "station": "S2", "camera": "C3", "part_id": "P-0001"}
    answer = client.post("/v1/inspect", files={"image": (path.name, data, "image/jpeg")}, data=tags)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    meta = read_metadata(models["model"])
    assert result["model"] == {"name": meta.name, "version": meta.version}
    assert result["threshold"] == meta.threshold
    assert set(result["probabilities"]) == set(meta.classes)
    assert result["score"] == result["probabilities"][meta.defect_class]
    assert result["verdict"] == ("defect" if result["score"] >= meta.threshold else "normal")
    assert result["label"] == max(result["probabilities"], key=result["probabilities"].get)
    assert set(result["timings_ms"]) >= {"decode", "preprocess", "infer", "total"}
    assert result["timings_ms"]["total"] >= result["timings_ms"]["infer"] > 0

    record = client.get(f"/v1/inspections/{result['id']}").json()
    assert {k: record[k] for k in tags} == tags
    assert record["image_sha256"] == hashlib.sha256(data).hexdigest() and record["image_bytes"] == len(data)
    assert (record["score"], record["verdict"], record["label"]) == (
        result["score"],
        result["verdict"],
        result["label"],
    )
    assert (record["model_name"], record["model_version"], record["threshold"]) == (
        meta.name,
        meta.version,
        meta.threshold,
    )
    assert record["model_sha256"] == hashlib.sha256(models["model"].read_bytes()).hexdigest()
    assert record["client"] == "camera-1" and record["error_code"] is None
    kept = Path(record["image_path"])  # kept for re-annotation (band 1.0 keeps all)
    assert kept.read_bytes() == data and kept.name == f"{result['id']}.jpg"
    assert kept.is_relative_to(app_service["server"].root / "data" / "images")


def test_raw_body_with_query_tags(app_service, casting_images):
    client, data = app_service["client"], casting_images["normal"][0].read_bytes()
    answer = client.post("/v1/inspect", content=data, headers={"content-type": "image/jpeg"},
                         params={"line": "L-raw", "part_id": "R1"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    record = client.get(f"/v1/inspections/{answer.json()['id']}").json()
    assert (record["line"], record["part_id"], record["station"]) == ("L-raw", "R1", None)


def test_batch_answers_each_image_and_an_error_entry_for_a_bad_one(app_service, casting_images):
    client = app_service["client"]
    good = [p.read_bytes() for p in casting_images["defect"][:2] + casting_images["normal"][:1]]
    files = [("images", (f"{i}.jpeg", d, "image/jpeg")) for i, d in enumerate(good)]
    files.insert(1, ("images", ("bad.jpeg", b"not an image", "image/jpeg")))
    answer = client.post("/v1/inspect/batch", files=files, data={"line": "L-batch", "part_id": ["a", "b", "c", "d"]})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert len(results) == 4
    assert results[1]["error"]["code"] == "not_an_image"
    singles = [client.post("/v1/inspect", content=d, headers={"content-type": "image/jpeg"}).json() for d in good]
    assert [r["score"] for r in (results[0], results[2], results[3])] == [s["score"] for s in singles]
    page = client.get("/v1/inspections", params={"line": "L-batch"}).json()["items"]
    assert sorted(r["part_id"] for r in page) == ["a", "b", "c", "d"]
    assert [r["error_code"] for r in page if r["part_id"] == "b"] == ["not_an_image"]


def test_batch_refuses_more_images_than_the_limit(app_service, casting_images):
    data = casting_images["normal"][0].read_bytes()
    answer = app_service["client"].post("/v1/inspect/batch", files=[("images", ("x.jpeg", data, "image/jpeg"))] * 9)
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "too_many_images"


def test_scores_equal_offline_inspect(app_service, casting_images, models, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    paths = casting_images["defect"][:4] + casting_images["normal"][:4]
    for path in paths:
        shutil.copy(path, folder / path.name)
    cli("inspect", models["model"], folder, "--out", tmp_path / "offline.csv")
    offline = {Path(r["path"]).name: float(r["score"]) for r in csv.DictReader((tmp_path / "offline.csv").open())}
    for path in paths:
        answer = app_service["client"].post(
            "/v1/inspect", files={"image": (path.name, path.read_bytes(), "image/jpeg")}
        )
        assert abs(answer.json()["score"] - offline[path.name]) <= 1e-6, path.name


def test_concurrent_requests_are_inferred_in_batches(app_service, casting_images):
    server, key = app_service["server"], app_service["key"]
    before = app_service["client"].get("/metrics").text
    images = [p.read_bytes() for p in casting_images["defect"][:32]]

    async def load() -> list[int]:
        async with server.async_client(headers={"X-API-Key": key}) as client:
            answers = await asyncio.gather(
                *(client.post("/v1/inspect", content=d, headers={"content-type": "image/jpeg"}) for d in images)
            )
        return [a.status_code for a in answers]

    assert asyncio.run(load()) == [200] * 32
    after = app_service["client"].get("/metrics").text
    batches = metric(after, "lineinspect_batch_size_count") - metric(before, "lineinspect_batch_size_count")
    singles = metric(after, "lineinspect_batch_size_bucket", le="1.0") - metric(
        before, "lineinspect_batch_size_bucket", le="1.0"
    )
    inferred = metric(after, "lineinspect_batch_size_sum") - metric(before, "lineinspect_batch_size_sum")
    assert inferred == 32
    assert batches - singles >= 1, "no batch of more than one image formed"
    assert batches < 32


def test_a_lone_image_is_inferred_where_it_was_decoded_with_no_queueing(app_service, casting_images):
    """One camera posting one part at a time: nothing to batch with, so no trip through the batcher."""
    client = app_service["client"]
    before = client.get("/metrics").text
    for path in casting_images["normal"][20:25]:
        answer = client.post("/v1/inspect", content=path.read_bytes(), headers={"content-type": "image/jpeg"})
        assert answer.status_code == 200 and answer.json()["timings_ms"]["queue"] == 0.0, answer.text
    after = client.get("/metrics").text
    singles = metric(after, "lineinspect_batch_size_bucket", le="1.0") - metric(
        before, "lineinspect_batch_size_bucket", le="1.0"
    )
    assert singles == 5


def test_inspections_are_filtered_and_paginated(app_service, casting_images):
    client = app_service["client"]
    ids = []
    for path in casting_images["normal"][10:15]:
        answer = client.post("/v1/inspect", files={"image": ("x.jpeg", path.read_bytes(), "image/jpeg")},
                             data={"line": "L-page", "camera": "cam-9"})  # fmt: skip
        ids.append(answer.json()["id"])
    first = client.get("/v1/inspections", params={"line": "L-page", "limit": 3}).json()
    second = client.get("/v1/inspections", params={"line": "L-page", "limit": 3, "offset": first["next_offset"]}).json()
    assert first["next_offset"] == 3 and second["next_offset"] is None
    assert sorted(r["id"] for r in first["items"] + second["items"]) == sorted(ids)
    assert all(r["camera"] == "cam-9" for r in first["items"] + second["items"])
    newest = first["items"][0]["created_at"]
    assert client.get("/v1/inspections", params={"line": "L-page", "until": newest}).json()["items"][0]["id"] != ids[-1]
    verdicts = {r["verdict"] for r in first["items"] + second["items"]}
    for verdict in verdicts:
        page = client.get("/v1/inspections", params={"line": "L-page", "verdict": verdict}).json()["items"]
        assert page and {r["verdict"] for r in page} == {verdict}
    assert client.get("/v1/inspections/not-a-record-id").json()["error"]["code"] == "not_found"


def test_metrics_count_verdicts_per_line_and_show_the_model(app_service, casting_images, models):
    client = app_service["client"]
    client.post("/v1/inspect", files={"image": ("x.jpeg", casting_images["defect"][5].read_bytes(), "image/jpeg")},
                data={"line": "L-metrics"})  # fmt: skip
    text = client.get("/metrics").text
    counted = sum(metric(text, "lineinspect_verdicts_total", line="L-metrics", verdict=v) for v in ("normal", "defect"))
    assert counted == 1
    meta = read_metadata(models["model"])
    assert metric(text, "lineinspect_model_info", name=meta.name, version=meta.version) == 1
    assert metric(text, "lineinspect_http_requests_total", route="/v1/inspect", method="POST", status="200") >= 1
    assert metric(text, "lineinspect_stage_seconds_count", stage="decode") >= 1


def test_openapi_documents_the_versioned_api_with_examples(app_service):
    schema = app_service["client"].get("/openapi.json").json()
    assert {"/v1/inspect", "/v1/inspect/batch", "/v1/inspections", "/v1/inspections/{inspection_id}", "/v1/models",
            "/v1/models/reload", "/healthz", "/readyz", "/metrics"} <= set(schema["paths"])  # fmt: skip
    body = schema["paths"]["/v1/inspect"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "image/jpeg", "image/png", "image/bmp", "image/tiff"} <= set(body)
    assert schema["components"]["schemas"]["InspectionResult"]["examples"]


def test_cors_is_off_by_default(app_service):
    answer = app_service["client"].get("/healthz", headers={"Origin": "http://elsewhere.example"})
    assert "access-control-allow-origin" not in answer.headers


def test_inspection_filters_out_of_range_are_refused_not_failed(app_service):
    client = app_service["client"]
    huge = client.get("/v1/inspections", params={"offset": 2**70})
    assert huge.status_code == 422
    early = client.get("/v1/inspections", params={"since": "0001-01-01T00:00:00+05:00"})
    assert early.status_code == 422 and "out of range" in early.json()["error"]["message"]


def test_an_anomaly_model_is_served_and_inspected_offline_like_a_classifier(server_factory, shared_data, tmp_path):
    """`method: anomaly` on real casting photos: the service answers with its score and keeps the record, and
    offline inspection writes rows, heatmaps and the report, through the same paths as a classifier."""
    root = shared_data / "casting-impeller" / "casting_data"
    tasks = []
    for folder, n in (("ok_front", 60), ("def_front", 20)):
        for path in sorted((root / "train" / folder).glob("*.jpeg"))[:n]:
            tasks.append(labelled_task(len(tasks) + 1, f"/data/local-files/?d={path.relative_to(root)}", folder))
    export = write_export(tasks, tmp_path / "export.json")
    cli("train", export, "--images-root", root, "--out", tmp_path / "run", "--set", "method=anomaly",
        "--set", "input.height=128", "--set", "input.width=128", "--set", "anomaly.memory_bank=512",
        "--set", "train.workers=0", "--normal-label", "ok_front", "--defect-label", "def_front")  # fmt: skip
    model = tmp_path / "model.onnx"
    cli("export", tmp_path / "run", "--out", model, "--force")  # 3 holdout defects: quality is not the point
    meta = read_metadata(model)
    assert meta.method == "anomaly" and (meta.input.height, meta.input.width) == (192, 192)  # 128 x 1.6, to 32s

    server = server_factory(model=model)
    key = server.keys("create", "camera-a").stdout.strip()
    server.start()
    photo = sorted((root / "test" / "def_front").glob("*.jpeg"))[0]
    with server.client(key) as client:
        answer = client.post("/v1/inspect", content=photo.read_bytes(), headers={"content-type": "image/jpeg"})
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["model"]["version"] == meta.version and 0 <= result["score"] <= 1
        assert result["verdict"] == ("defect" if result["score"] >= meta.threshold else "normal")
        assert client.get(f"/v1/inspections/{result['id']}").json()["score"] == result["score"]
    server.stop()

    folder = tmp_path / "line"
    folder.mkdir()
    for path in sorted((root / "test" / "def_front").glob("*.jpeg"))[:3]:
        shutil.copy(path, folder / path.name)
    out, report = tmp_path / "rows.csv", tmp_path / "report.html"
    cli("inspect", model, folder, "--out", out, "--heatmaps", tmp_path / "heat", "--heatmaps-for", "all",
        "--report", report)  # fmt: skip
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 3 and all(r["verdict"] in ("normal", "defect") and not r["error"] for r in rows)
    assert len(list((tmp_path / "heat").glob("*.png"))) == 3 and report.stat().st_size > 10_000
