"""Real image files and real exports for the annotation tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from annotation.export_writer import ExportFormat, write_export


def _write_image(path: Path, seed: int) -> Path:
    """A small real PNG/JPEG (by suffix) whose pixels differ for every seed."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(path.suffix or ".png", pixels)
    assert ok
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encoded.tobytes())
    return path


@pytest.fixture
def write_image() -> Callable[[Path, int], Path]:
    return _write_image


@pytest.fixture
def images(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    root.mkdir()
    return root


@pytest.fixture
def export(tmp_path: Path) -> Callable[..., Path]:
    """Write tasks as an export of the given format; the suffix need not match the format."""

    def write(tasks: list[dict], fmt: ExportFormat = "json", name: str | None = None) -> Path:
        suffix = {"json": ".json", "json-min": ".json", "csv": ".csv"}[fmt]
        return write_export(tasks, tmp_path / "exports" / (name or f"export-{fmt}{suffix}"), fmt)

    return write
