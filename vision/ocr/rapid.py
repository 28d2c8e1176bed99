"""RapidOCR (PP-OCR's detector, angle classifier and recogniser, run by ONNX Runtime) reading a label.

PP-OCR finds and straightens text lines itself (a line on its side is turned, one upside down is
flipped by the classifier), so it is given the photo as it is, not Tesseract's prepared page. The
models inside the `rapidocr-onnxruntime` wheel read Chinese and Latin: Hangul comes back as other
characters, so a Korean template's keys are not found. Its recogniser alone is also Tesseract's second opinion on
a label's values (`recognise`).
"""

from __future__ import annotations

import threading
import time
import unicodedata
from functools import lru_cache

import numpy as np

from annotation.errors import LineInspectError
from vision.ocr.config import LabelTemplate
from vision.ocr.image import decode_bgr
from vision.ocr.results import Box, LabelResult, Word
from vision.ocr.templates import by_place, extract_fields, field_confidences
from vision.preprocess import ImageDecodeError

MAX_SIDE = 1800
_LOCK = threading.Lock()  # one session, one call at a time: ONNX Runtime's threads are shared by the call


@lru_cache(maxsize=1)
def _engine():
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        raise LineInspectError(
            "engine 'rapidocr' needs rapidocr-onnxruntime: `make setup` installs it, or "
            "pip install --no-deps rapidocr-onnxruntime pyclipper shapely six (constraints.txt pins them)"
        ) from None
    return RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)  # one thread, as Tesseract gets


@lru_cache(maxsize=1)
def available() -> bool:
    """Whether rapidocr-onnxruntime is installed (`make setup` installs it); asked once, not on every label."""
    try:
        _engine()
    except LineInspectError:
        return False
    return True


def recognise(crops: list[np.ndarray]) -> list[str]:
    """Each crop of one line of print (grey or colour) read by PP-OCR's recogniser alone, no detection; full-width
    forms as their ASCII ("：" as ":"), as the Chinese model reads punctuation beside CJK-like glyphs."""
    out = []
    with _LOCK:
        for crop in crops:
            found, _ = _engine()(crop if crop.ndim == 3 else np.dstack([crop] * 3), use_det=False, use_cls=False)
            out.append(unicodedata.normalize("NFKC", found[0][0]) if found else "")
    return out


def read_label_rapidocr(data: bytes, template: LabelTemplate) -> LabelResult:
    """Image bytes to a LabelResult: one Word per text line PP-OCR finds, the lines top to bottom."""
    start = time.perf_counter()
    try:
        photo = decode_bgr(data, max_side=MAX_SIDE)
    except ImageDecodeError as exc:
        return _result("", [], template, start, f"unreadable image: {exc}")
    with _LOCK:
        found, _ = _engine()(photo)
    lines = sorted(found or [], key=lambda hit: _top_left(hit[0]))
    words = [
        Word(unicodedata.normalize("NFKC", text), round(float(conf), 4), _box(corners), i)  # "：" as ":"
        for i, (corners, text, conf) in enumerate(lines)
    ]
    return _result("\n".join(w.text for w in words), words, template, start, None if words else "no text found")


def _top_left(corners: list) -> tuple[float, float]:
    points = np.asarray(corners, np.float32)
    return float(points[:, 1].min()), float(points[:, 0].min())


def _box(corners: list) -> Box:
    points = np.asarray(corners, np.float32)
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    return Box(int(x0), int(y0), int(np.ceil(x1 - x0)), int(np.ceil(y1 - y0)))


def _result(text: str, words: list[Word], template: LabelTemplate, start: float, reason: str | None) -> LabelResult:
    fields = by_place(template, text, words, field_confidences(extract_fields(template, text), words))
    seconds = time.perf_counter() - start
    return LabelResult(
        text, words, fields, template.name, "rapidocr", None, seconds, reason, "whole", template.min_confidence
    )
