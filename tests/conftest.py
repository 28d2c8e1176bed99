"""Shared fixtures: real data from ../shared/data, real images written to tmp folders."""

from __future__ import annotations

import ctypes
import importlib.util
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _load_openmp_unlimited() -> None:
    """torch and Tesseract share one libgomp (same soname), which reads OMP_THREAD_LIMIT once, when it loads. CLI
    commands run in-process here set that limit for Tesseract (`limit_openmp`); a libgomp first loaded under it
    makes every later torch step in the same test process spin for minutes. So torch's copy is loaded now, before
    any test, with the environment the run started with (as each `lineinspect` process has its own)."""
    torch = importlib.util.find_spec("torch")
    if torch is not None and torch.submodule_search_locations:
        library = Path(torch.submodule_search_locations[0]) / "lib" / "libgomp.so.1"
        if library.is_file():
            ctypes.CDLL(str(library))


_load_openmp_unlimited()
# The slow tier (`-m slow`): tests that use a Label Studio, service subprocesses, PostgreSQL or a model trained
# for the test (these fixtures), and the modules that train models or run benchmarks, soaks and resumed runs.
# The service in this process (`app_service`, `app_factory` in tests/serving/conftest.py) is fast.
# `make test-fast` runs the rest (`-m "not slow"`); `make test` runs both.
SLOW_FIXTURES = frozenset({"label_studio", "server_factory", "service", "postgres", "tiny_run"})
SLOW_MODULES = frozenset(
    {
        "tests/test_demo.py",
        "tests/test_end_to_end.py",
        "tests/vision/test_train.py",
        "tests/vision/test_pretrained.py",
        "tests/vision/test_anomaly.py",
        "tests/vision/test_bench_accuracy.py",
        "tests/serving/test_bench.py",
        "tests/serving/batch/test_bench.py",
        "tests/serving/batch/test_heatmaps.py",
        "tests/serving/batch/test_report.py",
        "tests/serving/batch/test_resume.py",
        "tests/serving/batch/test_ray.py",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = item.path.relative_to(config.rootpath).as_posix()
        if module in SLOW_MODULES or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _openmp_limit_stays_in_its_test():
    """CLI commands run in-process (CliRunner) set OMP_THREAD_LIMIT for Tesseract; inherited by a later
    `lineinspect train` subprocess it makes torch spin for minutes. Put the environment back after each test."""
    before = os.environ.get("OMP_THREAD_LIMIT")
    yield
    if before is None:
        os.environ.pop("OMP_THREAD_LIMIT", None)
    else:
        os.environ["OMP_THREAD_LIMIT"] = before


@pytest.fixture(scope="session")
def shared_data() -> Path:
    assert SHARED_DATA.is_dir(), f"real test data expected at {SHARED_DATA} (../shared beside the repository)"
    return SHARED_DATA


def jpeg_bytes(width: int, height: int, seed: int = 0, quality: int = 90) -> bytes:
    """A real JPEG with some structure (not a flat colour)."""
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), (0, 0), 3)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size over a few bytes of data: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
