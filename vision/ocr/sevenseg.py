"""Read a seven-segment display: find it, straighten it, read the line, make it a number.

Stock Tesseract has no model of segment shapes and reads at most one rendered readout in
five right; the line reader here (`sevenseg_model`) is trained on the project's own
rendered displays. Polarity (dark LCD segments or bright LED ones) comes from the gauge
profile, or both are tried and the more confident reading wins.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vision.ocr.config import DisplayProfile
from vision.ocr.displays import find_displays, straighten
from vision.ocr.image import decode_bgr
from vision.ocr.results import Box, Digit, DisplayResult
from vision.ocr.sevenseg_model import DEFAULT_MODEL, INPUT_HEIGHT, CharReading, load_model, strip_input
from vision.preprocess import ImageDecodeError

MIN_CONFIDENCE = 0.5  # below this a character is more likely glare than a digit
MIN_MEAN_CONFIDENCE = 0.7  # a reading less sure than this is refused
WHOLE_FRAME_CONFIDENCE = 0.8  # no display found: read the frame only if its digits are this sure
MAX_SIDE = 1600  # displays are large in the frame; bigger photos are decoded reduced


@dataclass(frozen=True)
class _Reading:
    chars: list[CharReading]
    homography: np.ndarray
    strip_height: int
    corners: np.ndarray | None

    @property
    def score(self) -> float:
        digits = [c.confidence for c in self.chars if c.char.isdigit()]
        return float(np.mean(digits)) * min(len(digits), 3) if digits else 0.0


def read_display(data: bytes, profile: DisplayProfile | None = None, model: Path = DEFAULT_MODEL) -> DisplayResult:
    """Image bytes to a DisplayResult; an unreadable image or no display gives a reason, not an error."""
    start = time.perf_counter()
    profile = profile or DisplayProfile()
    try:
        image = decode_bgr(data, max_side=MAX_SIDE)
    except ImageDecodeError as exc:
        return _empty(f"unreadable image: {exc}", start, profile)
    reader = load_model(model)
    polarities = {"dark": [True], "bright": [False], "auto": [True, False]}[profile.polarity]
    windows = [(c.corners, *straighten(image, c.corners)) for c in find_displays(image)]
    if not windows:  # the camera may be looking at the glass alone
        windows = [(None, image, np.eye(3))]
    best: _Reading | None = None
    for corners, strip, homography in windows:
        for chars in reader.read([strip_input(strip, dark) for dark in polarities]):
            reading = _Reading(chars, homography, strip.shape[0], corners)
            if best is None or reading.score > best.score:
                best = reading
        if best is not None and best.score >= 3 * 0.9:
            break  # a confident read of the best window: the others are distractions
    return _result(best, profile, start)


def _result(best: _Reading | None, profile: DisplayProfile, start: float) -> DisplayResult:
    if best is None or best.score == 0:
        return _empty("no seven-segment digits found", start, profile)
    sureness = best.score / min(sum(c.char.isdigit() for c in best.chars), 3)  # mean digit confidence
    if best.corners is None and sureness < WHOLE_FRAME_CONFIDENCE:
        return _empty("no display found (and nothing in the frame reads clearly as digits)", start, profile)
    if sureness < MIN_MEAN_CONFIDENCE:
        return _empty(f"digits unclear (mean confidence {sureness:.2f})", start, profile)
    chars = _one_point([c for c in best.chars if c.confidence >= MIN_CONFIDENCE and (profile.signed or c.char != "-")])
    text = _tidy("".join(c.char for c in chars), profile)
    digits = [Digit(c.char, round(c.confidence, 4), _box(c, best)) for c in chars]
    confidence = round(min((d.confidence for d in digits), default=0.0), 4)
    corners = None if best.corners is None else [tuple(map(float, p)) for p in best.corners]
    seconds = time.perf_counter() - start
    try:
        value = float(text)
    except ValueError:
        return DisplayResult(
            text, None, digits, confidence, seconds, corners, profile.unit, f"display shows {text!r}, not a number"
        )
    return DisplayResult(text, value, digits, confidence, seconds, corners, profile.unit)


def _one_point(chars: list[CharReading]) -> list[CharReading]:
    """A readout lights one decimal point; LCDs show the unlit ones faintly. Keep the surest."""
    points = [c for c in chars if c.char == "."]
    if len(points) <= 1:
        return chars
    keep = max(points, key=lambda c: c.confidence)
    return [c for c in chars if c.char != "." or c is keep]


def _tidy(text: str, profile: DisplayProfile) -> str:
    """Apply what the profile knows: where the decimal point sits when it is not lit or seen."""
    text = text.strip(".")
    if profile.decimals and "." not in text and len(text.lstrip("-")) > profile.decimals:
        text = text[: -profile.decimals] + "." + text[-profile.decimals :]
    return text


def _box(char: CharReading, reading: _Reading) -> Box:
    """A character's extent in the model's input, through the strip's homography, as an image box."""
    h = reading.strip_height
    scale = h / INPUT_HEIGHT
    pts = np.float32([[char.x0 * scale, 0], [char.x1 * scale, 0], [char.x1 * scale, h], [char.x0 * scale, h]])
    mapped = cv2.perspectiveTransform(pts[None], reading.homography)[0]
    (x, y), (x2, y2) = mapped.min(0), mapped.max(0)
    return Box(int(x), int(y), int(np.ceil(x2 - x)), int(np.ceil(y2 - y)))


def _empty(reason: str, start: float, profile: DisplayProfile) -> DisplayResult:
    return DisplayResult("", None, [], 0.0, time.perf_counter() - start, None, profile.unit, reason)
