"""The seven-segment line reader: a small convolutional CTC model run by ONNX Runtime.

One strip in (the display glass, straightened), one character string out, with a
confidence per character. The model reads the whole line at once, so it needs no digit
segmentation: the parts that break classical segment decoders on real photos (glare
cutting a segment, a decimal point touching a digit, faint unlit segments) are learned
from rendered strips. Nothing here imports torch; `vision.training.sevenseg` makes the file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from annotation.errors import LineInspectError

METADATA_KEY = "lineinspect-ocr"
CHARSET = "0123456789-.:"  # class 0 is the CTC blank, class i+1 is CHARSET[i]
INPUT_HEIGHT = 40
DOWNSAMPLE = 4  # input columns per output frame
WORK_HEIGHT = 96  # strips are normalised at this height before shrinking to INPUT_HEIGHT
MAX_WIDTH = 640
DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "sevenseg.onnx"
SECOND_OPINION = DEFAULT_MODEL.with_name("sevenseg-rendered.onnx")  # trained on rendered displays alone


def strip_input(strip: np.ndarray, dark_segments: bool) -> np.ndarray:
    """A display strip (BGR or gray) to the model's input: 1 x INPUT_HEIGHT x W float32, W a
    multiple of DOWNSAMPLE.

    Segments become bright strokes on black whatever the display's colours: a black-hat
    (dark LCD segments) or top-hat (bright LED segments) wider than a stroke keeps strokes
    and drops the glass's shading and most of the glare; the 99.5th percentile sets the gain.
    """
    gray = strip if strip.ndim == 2 else cv2.cvtColor(strip, cv2.COLOR_BGR2GRAY)
    h, w = gray.shape
    width = max(8, min(round(w * WORK_HEIGHT / h), MAX_WIDTH * WORK_HEIGHT // INPUT_HEIGHT))
    gray = cv2.resize(gray, (width, WORK_HEIGHT), interpolation=cv2.INTER_AREA if h > WORK_HEIGHT else cv2.INTER_LINEAR)
    ink = segment_ink(gray, dark_segments).astype(np.float32)
    ink = np.clip(ink / max(float(np.percentile(ink, 99.5)), 12.0), 0, 1)
    out_w = max(DOWNSAMPLE * 2, round(width * INPUT_HEIGHT / WORK_HEIGHT))
    x = cv2.resize(ink, (out_w, INPUT_HEIGHT), interpolation=cv2.INTER_AREA)
    return np.pad(x, ((0, 0), (0, -out_w % DOWNSAMPLE)))[None]  # the model takes whole frames


def segment_ink(gray: np.ndarray, dark_segments: bool) -> np.ndarray:
    """A strip's strokes, bright on black: a black-hat (dark segments) or top-hat (bright ones) a third of the strip
    high, which keeps strokes and drops the glass's shading."""
    size = gray.shape[0] // 3 | 1
    op = cv2.MORPH_BLACKHAT if dark_segments else cv2.MORPH_TOPHAT
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return cv2.morphologyEx(gray, op, kernel, borderType=cv2.BORDER_REPLICATE)


@dataclass(frozen=True)
class CharReading:
    char: str
    confidence: float
    x0: float  # extent in the input strip's columns
    x1: float


def ctc_decode(probabilities: np.ndarray, width: int) -> list[CharReading]:
    """Greedy CTC: best class per frame, repeats merged, blanks dropped.

    A character's confidence is the highest probability it reaches in its run of frames.
    `width` is the strip's width in its own pixels, for the characters' extents.
    """
    best = probabilities.argmax(axis=1)
    frames = len(best)
    out: list[CharReading] = []
    i = 0
    while i < frames:
        j = i
        while j + 1 < frames and best[j + 1] == best[i]:
            j += 1
        if best[i] != 0:
            conf = float(probabilities[i : j + 1, best[i]].max())
            out.append(CharReading(CHARSET[best[i] - 1], conf, i * width / frames, (j + 1) * width / frames))
        i = j + 1
    return out


class SevenSegModel:
    """The ONNX line reader with its metadata; load once, call per strip."""

    def __init__(self, path: Path = DEFAULT_MODEL, threads: int | None = None) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise LineInspectError(
                f"seven-segment model not found: {path}; train one with `lineinspect ocr train-digits --out {path}`"
            )
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise LineInspectError(f"{path} is not a loadable ONNX model: {exc}") from None
        raw = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if raw is None:
            raise LineInspectError(
                f"{path} has no {METADATA_KEY} metadata: train it with `lineinspect ocr train-digits`"
            )
        self.meta = json.loads(raw)
        if self.meta.get("charset") != CHARSET or self.meta.get("input_height") != INPUT_HEIGHT:
            raise LineInspectError(f"{path} was trained for another input ({self.meta.get('charset')!r}); retrain it")
        self.input_name = self.session.get_inputs()[0].name

    def read(self, batch: list[np.ndarray]) -> list[list[CharReading]]:
        """Strips from `strip_input` (any widths) to their characters, one run per width."""
        results: list[list[CharReading]] = []
        for x in batch:
            logits = self.session.run(None, {self.input_name: x[None].astype(np.float32)})[0][0]  # frames x classes
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            results.append(ctc_decode(e / e.sum(axis=1, keepdims=True), x.shape[-1]))
        return results


@lru_cache(maxsize=4)
def load_model(path: Path = DEFAULT_MODEL) -> SevenSegModel:
    return SevenSegModel(path)


def second_opinion(path: Path) -> SevenSegModel | None:
    """The model whose digits a reading by `path`'s must match to be ok: the rendered-only model checks the shipped
    reader; a display's own model (fine-tuned on that display and measured there) reads alone."""
    return load_model(SECOND_OPINION) if Path(path).resolve() == DEFAULT_MODEL else None
