"""Every kind of bad input gets a 4xx with a JSON reason, is counted in /metrics, and the service keeps serving."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.conftest import jpeg_bytes, png_header_claiming
from tests.serving.conftest import metric


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), "gray").save(out, "GIF")
    return out.getvalue()


def _big_png() -> bytes:
    """1200x1000 = 1.2 M pixels (the test service allows 1 M), a small file."""
    return cv2.imencode(".png", np.zeros((1000, 1200, 3), np.uint8))[1].tobytes()


JPEG = jpeg_bytes(128, 128)
RAW = {"content-type": "image/jpeg"}


def raw(data: bytes, content_type: str = "image/jpeg") -> dict:
    return {"content": data, "headers": {"content-type": content_type}}


def form(data: bytes, field: str = "image", **fields) -> dict:
    return {"files": {field: ("part.img", data, "application/octet-stream")}, "data": fields}


CASES = {
    "empty body": (raw(b""), 400, "empty_image"),
    "empty file field": (form(b""), 400, "empty_image"),
    "not an image": (raw(b"hello, this is text"), 422, "not_an_image"),
    "truncated jpeg": (raw(JPEG[: len(JPEG) // 2]), 422, "corrupt_image"),
    "truncated png": (form(cv2.imencode(".png", np.full((64, 64, 3), 7, np.uint8))[1].tobytes()[:-40]), 422,
                      "corrupt_image"),
    "unsupported content type": (raw(JPEG, "text/plain"), 415, "unsupported_media_type"),
    "no content type": ({"content": JPEG}, 415, "unsupported_media_type"),
    "unsupported image format": (form(_gif()), 415, "unsupported_format"),
    "too many pixels": (raw(_big_png(), "image/png"), 413, "too_many_pixels"),
    "decompression bomb header": (raw(png_header_claiming(100_000, 100_000), "image/png"), 413, "too_many_pixels"),
    "oversized body": (raw(b"\xff\xd8" + bytes(2 * 1024 * 1024)), 413, "body_too_large"),
    "wrong field name": (form(JPEG, field="file"), 400, "missing_image"),
    "two images to the single route": ({"files": [("image", ("a", JPEG)), ("image", ("b", JPEG))]}, 400,
                                       "too_many_images"),
    "malformed multipart": ({"content": b"--xyz\r\nnonsense", "headers": {"content-type": "multipart/form-data"}},
                            400, "bad_multipart"),
    "tag too long": (form(JPEG, line="L" * 200), 422, "invalid_field"),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_refused_with_a_reason(app_service, case):
    request, status, code = CASES[case]
    client = app_service["client"]
    before = client.get("/metrics").text
    answer = client.post("/v1/inspect", **request)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and error["message"]
    after = client.get("/metrics").text
    counted = metric(after, "lineinspect_rejected_total", reason=code) - metric(
        before, "lineinspect_rejected_total", reason=code
    )
    assert counted == 1
    assert client.get("/healthz").status_code == 200
    good = client.post("/v1/inspect", content=JPEG, headers=RAW)
    assert good.status_code == 200, "the service still serves after a bad request"


def test_refused_images_leave_a_record_with_the_reason(app_service):
    client = app_service["client"]
    answer = client.post("/v1/inspect", **form(b"not an image", part_id="bad-part"))
    error = answer.json()["error"]
    record = client.get(f"/v1/inspections/{error['id']}").json()
    assert (record["error_code"], record["part_id"], record["verdict"]) == ("not_an_image", "bad-part", None)
    assert record["image_bytes"] == len(b"not an image")
    listed = client.get("/v1/inspections", params={"verdict": "error", "part_id": "bad-part"}).json()["items"]
    assert [r["id"] for r in listed] == [error["id"]]


def test_oversized_body_is_refused_while_streaming_without_content_length(app_service):
    def chunks():
        for _ in range(40):
            yield bytes(64 * 1024)  # 2.5 MB in all, chunked: no Content-Length to check up front

    answer = app_service["client"].post("/v1/inspect", content=chunks(), headers=RAW)
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "body_too_large"


def test_the_camera_route_answers_other_methods_with_405_and_what_it_takes(app_service):
    answer = app_service["client"].get("/v1/inspect")
    assert answer.status_code == 405 and answer.headers["allow"] == "POST"
    assert answer.json()["error"]["code"] == "method_not_allowed"
