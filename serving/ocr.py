"""OCR in the service: templates and gauges by name, read off the event loop in a bounded pool, counted.

Templates and gauge configs are loaded once, at start, so that a broken file stops `serve` with an
error naming its key, and a name from a request is only ever a key in a dictionary, never a path.
Tesseract is CPU-bound: at most `ocr.max_concurrency` images are read at once, the rest wait
(the wait is the "queue" stage in /metrics).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from time import perf_counter
from typing import TypeVar

from annotation.errors import LineInspectError
from serving.engine import check_image
from serving.metrics import Metrics
from serving.refusals import Refused
from serving.settings import OcrSettings, cpu_count
from vision.ocr import (
    DialCalibration,
    DialResult,
    DisplayProfile,
    DisplayResult,
    LabelResult,
    LabelTemplate,
    load_gauge,
    load_template,
    read_dial,
    read_display,
    read_label,
)
from vision.ocr.config import CONFIG_ROOT

log = logging.getLogger("lineinspect.ocr")
UNREADABLE = "unreadable image: "  # how every reader's reason starts when the bytes do not decode
REASON_CODES = (  # a reason's words -> the metric label it is counted under
    ("no text found", "no_text"),
    ("no seven-segment digits", "no_digits"),
    ("no needle found", "no_needle"),
    ("outside the calibrated scale", "off_scale"),
)
Gauge = DisplayProfile | DialCalibration
Result = TypeVar("Result", LabelResult, DisplayResult, DialResult)


def _load_all(folder: Path, load: Callable) -> dict:
    """Every YAML file in `folder` by its file name, which is also the name it answers and is recorded under."""
    paths = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    return {path.stem: load(path).model_copy(update={"name": path.stem}) for path in paths}


def result_code(result: LabelResult | DisplayResult | DialResult) -> str:
    """`read` (status ok), `fields_missing` (a label read without all its required fields), `uncertain` (a best
    guess), or the code of the reason nothing was read."""
    if result.status == "ok":
        return "read"
    if result.status == "uncertain":
        return "fields_missing" if isinstance(result, LabelResult) and result.problems else "uncertain"
    return next((code for words, code in REASON_CODES if words in result.reason), "other")


class OcrService:
    """The templates and gauges this service knows, and the pool that reads with them."""

    def __init__(self, settings: OcrSettings, max_pixels: int, metrics: Metrics) -> None:
        folder = settings.config_dir or CONFIG_ROOT
        if not folder.is_dir():
            raise LineInspectError(f"ocr.config_dir: {folder} is not a folder (it holds labels/ and gauges/)")
        self.templates: dict[str, LabelTemplate] = _load_all(folder / "labels", load_template)
        self.gauges: dict[str, Gauge] = _load_all(folder / "gauges", load_gauge)
        self.engine, self.max_pixels, self.metrics = settings.engine, max_pixels, metrics
        self._pool = ThreadPoolExecutor(settings.max_concurrency or cpu_count(), thread_name_prefix="lineinspect-ocr")
        log.info("OCR: label templates %s, gauges %s from %s", sorted(self.templates), sorted(self.gauges), folder)

    def template(self, name: str) -> LabelTemplate:
        if name not in self.templates:
            raise Refused("unknown_template", _unknown("label template", name, self.templates))
        return self.templates[name]

    def gauge(self, name: str | None) -> Gauge:
        if name is None:
            raise Refused("missing_gauge", f"say which gauge: gauge=NAME; known: {', '.join(sorted(self.gauges))}")
        if name not in self.gauges:
            raise Refused("unknown_gauge", _unknown("gauge", name, self.gauges))
        return self.gauges[name]

    async def read_label(self, data: bytes, template: LabelTemplate) -> LabelResult:
        return await self._read("label", data, read_label, template, self.engine)

    async def read_gauge(self, data: bytes, gauge: Gauge) -> DisplayResult | DialResult:
        if isinstance(gauge, DialCalibration):
            return await self._read("analog", data, read_dial, gauge)
        return await self._read("digital", data, read_display, gauge)

    async def _read(self, kind: str, data: bytes, reader: Callable[..., Result], *args) -> Result:
        """Run a reader in the pool. A corrupt image is refused (as /v1/inspect refuses it), a broken
        OCR installation is `ocr_unavailable`; a fine image with nothing readable is a result with a reason."""
        check_image(data, self.max_pixels)
        submitted = perf_counter()

        def timed() -> tuple[float, float, Result]:
            started = perf_counter()
            result = reader(data, *args)
            return started, perf_counter(), result

        try:
            started, finished, result = await asyncio.get_running_loop().run_in_executor(self._pool, timed)
        except LineInspectError as exc:  # no tesseract, no traineddata for the template's languages, no model
            self.metrics.ocr_results.labels(kind, "unavailable").inc()
            raise Refused("ocr_unavailable", f"OCR is unavailable: {exc}") from None
        self.metrics.ocr_seconds.labels(kind, "queue").observe(started - submitted)
        self.metrics.ocr_seconds.labels(kind, "read").observe(finished - started)
        if result.reason and result.reason.startswith(UNREADABLE):
            raise Refused("corrupt_image", f"{result.reason.removeprefix(UNREADABLE)}; the image may be truncated")
        self.metrics.ocr_results.labels(kind, result_code(result)).inc()
        return result

    def stop(self) -> None:
        self._pool.shutdown(wait=True)


def _unknown(what: str, name: str, known: dict) -> str:
    return f"no {what} named {name!r}; known: {', '.join(sorted(known)) or 'none'}"
