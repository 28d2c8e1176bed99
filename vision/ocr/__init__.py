"""OCR on the line: product labels, digital displays and analog dials.

Plain functions from image bytes to typed results, for the CLI, the service and batch jobs
alike. A bad picture never raises: the result's `reason` says what was missing. Nothing
here imports torch (the seven-segment reader runs its model with ONNX Runtime).
"""

from __future__ import annotations

from vision.ocr.config import DialCalibration, DisplayProfile, LabelTemplate, load_gauge, load_template
from vision.ocr.dials import read_dial
from vision.ocr.labels import read_label
from vision.ocr.results import Box, DialResult, Digit, DisplayResult, FieldValue, LabelResult, Word
from vision.ocr.sevenseg import read_display


def read_gauge(data: bytes, gauge: DisplayProfile | DialCalibration) -> DisplayResult | DialResult:
    """A digital display or an analog dial, as its config says."""
    if isinstance(gauge, DialCalibration):
        return read_dial(data, gauge)
    return read_display(data, gauge)


__all__ = [
    "Box",
    "DialCalibration",
    "DialResult",
    "Digit",
    "DisplayProfile",
    "DisplayResult",
    "FieldValue",
    "LabelResult",
    "LabelTemplate",
    "Word",
    "load_gauge",
    "load_template",
    "read_dial",
    "read_display",
    "read_gauge",
    "read_label",
]
