"""Hostile and odd uploads: each gets a correct result or a precise 4xx, slow clients block no one,
and memory comes back to its level after the whole corpus has been thrown at the service."""

from __future__ import annotations

import io
import socket
import struct
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.conftest import png_header_claiming
from tests.serving.conftest import metric
from vision.preprocess import PreprocessSpec, load_image


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _photo(width: int = 96, height: int = 64) -> Image.Image:
    """Not symmetric: a gradient with a bright block in the top-left corner."""
    pixels = np.tile(np.linspace(0, 160, width, dtype=np.uint8), (height, 1))
    rgb = np.stack([pixels, pixels[:, ::-1], np.full_like(pixels, 60)], axis=2)
    rgb[: height // 3, : width // 4] = 255
    return Image.fromarray(rgb)


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    return _encode(_photo(), "JPEG", quality=95, exif=exif.tobytes())


def _tiff_claiming(width: int, height: int) -> bytes:
    """A little-endian TIFF whose header claims width x height over no pixel data."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, 2**32 - 1)]  # fmt: skip
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0\0\0\0"
    return b"II*\x00" + struct.pack("<I", 8) + ifd


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "green", "blue")]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


def _png16() -> bytes:
    return cv2.imencode(".png", (np.random.default_rng(0).random((64, 64, 3)) * 65535).astype(np.uint16))[1].tobytes()


ACCEPTED = {
    "1x1 jpeg": (_encode(Image.new("RGB", (1, 1), "white"), "JPEG"), "image/jpeg"),
    "1x1 png": (_encode(Image.new("L", (1, 1), 0), "PNG"), "image/png"),
    "16-bit png": (_png16(), "image/png"),
    "cmyk jpeg": (_encode(_photo().convert("CMYK"), "JPEG"), "image/jpeg"),
    "palette png": (_encode(_photo().convert("P"), "PNG"), "image/png"),
    "rgba png": (_encode(_photo().convert("RGBA"), "PNG"), "image/png"),
    "grey bmp": (_encode(_photo().convert("L"), "BMP"), "image/bmp"),
    "tiff": (_encode(_photo(), "TIFF"), "image/tiff"),
    "exif-rotated jpeg": (_exif_rotated(), "image/jpeg"),
}
REFUSED = {
    "html": ((b"<!doctype html><html><body>not a part</body></html>", "image/jpeg"), 422, "not_an_image"),
    "zero bytes": ((b"", "image/png"), 400, "empty_image"),
    "tiff decompression bomb": ((_tiff_claiming(100_000, 100_000), "image/tiff"), 413, "too_many_pixels"),
    "30000x30000 png header": ((png_header_claiming(30000, 30000), "image/png"), 413, "too_many_pixels"),
    "animated gif": ((_animated_gif(), "image/gif"), 415, "unsupported_media_type"),
    "jpeg sent as png": ((_encode(_photo(), "JPEG"), "image/png"), 200, None),  # the bytes decide, not the label
}  # fmt: skip


def _post(client, data: bytes, content_type: str):
    return client.post("/v1/inspect", content=data, headers={"content-type": content_type})


@pytest.mark.parametrize("name", ACCEPTED)
def test_odd_but_valid_images_are_judged(app_service, name):
    data, content_type = ACCEPTED[name]
    answer = _post(app_service["client"], data, content_type)
    assert answer.status_code == 200, answer.text
    assert answer.json()["verdict"] in ("normal", "defect")


@pytest.mark.parametrize("name", REFUSED)
def test_hostile_uploads_get_a_precise_answer(app_service, name):
    (data, content_type), status, code = REFUSED[name]
    answer = _post(app_service["client"], data, content_type)
    assert answer.status_code == status, answer.text
    if code:
        assert answer.json()["error"]["code"] == code


def test_multipart_with_no_file_part(app_service):
    body = b'--b0undary\r\nContent-Disposition: form-data; name="line"\r\n\r\nL1\r\n--b0undary--\r\n'
    answer = app_service["client"].post(
        "/v1/inspect", content=body, headers={"content-type": "multipart/form-data; boundary=b0undary"}
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "missing_image"


def test_exif_orientation_is_applied():
    spec = PreprocessSpec(height=96, width=64)
    rotated = load_image(_exif_rotated(), spec).astype(float)
    upright = np.asarray(_photo().transpose(Image.Transpose.ROTATE_270).resize((64, 96))).astype(float)
    unrotated = load_image(_encode(_photo().resize((64, 96)), "PNG"), spec).astype(float)
    assert np.abs(rotated - upright).mean() < 4  # JPEG noise only
    assert np.abs(unrotated - upright).mean() > 20  # so the check can tell


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_slow_clients_block_no_one_and_memory_returns_to_its_level(service):  # sockets, its RSS: uvicorn
    server, client = service["server"], service["client"]
    corpus = [v for v in ACCEPTED.values()] + [v[0] for v in REFUSED.values()]

    def throw_corpus() -> None:
        for data, content_type in corpus:
            assert _post(client, data, content_type).status_code < 500

    throw_corpus()  # warm-up: allocator pools and caches reach their working size
    baseline = _rss_mb(server.process.pid)
    slow = []
    for _ in range(16):  # slow clients: headers, a few body bytes, then nothing
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b"POST /v1/inspect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 500000\r\n"
                  b"Authorization: Bearer " + service["key"].encode() + b"\r\n\r\n\xff\xd8\xff")  # fmt: skip
        slow.append(s)
    try:
        started = time.perf_counter()
        data, content_type = ACCEPTED["tiff"]
        assert _post(client, data, content_type).status_code == 200
        assert time.perf_counter() - started < 5.0
        for _ in range(5):
            throw_corpus()
    finally:
        for s in slow:
            s.close()
    grown = _rss_mb(server.process.pid) - baseline
    assert grown < 40, f"resident memory grew {grown:.0f} MB over 5 passes of the corpus"
    text = client.get("/metrics").text
    assert metric(text, "lineinspect_rejected_total", reason="too_many_pixels") >= 10
    assert client.get("/readyz").status_code == 200
