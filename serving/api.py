"""The Python API, for notebooks and scripts: what `lineinspect inspect` and `lineinspect ocr` do, as calls.

    from serving.api import Inspector, read_gauge, read_label
    inspector = Inspector("model.onnx")
    results = inspector.inspect(["images/line3"])      # folders, files, globs, file lists, exports
    one = inspector.inspect_array(cv2.imread("part.jpg"))  # an image already in memory (BGR, as OpenCV reads)
    label = read_label("label.png")                       # LabelResult, as `lineinspect ocr label` gives it
    reading = read_gauge("display.png", "fuel-pump-lcd")  # DisplayResult or DialResult

An `Inspection` carries the fields of a row of `lineinspect inspect`'s output; the OCR results are the
typed results the CLI and the service answer with. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from annotation.errors import LineInspectError
from annotation.exports import ImportOptions
from serving.batch.inputs import collect_inputs
from vision.inference import infer
from vision.ocr import DialResult, DisplayResult, LabelResult, load_gauge, load_template
from vision.ocr import read_gauge as _read_gauge
from vision.ocr import read_label as _read_label
from vision.onnx_model import OnnxClassifier
from vision.predict import Prediction, iter_predictions
from vision.preprocess import preprocess


@dataclass(frozen=True)
class Inspection:
    """One image's result, as a row of `lineinspect inspect` (score, verdict and label None when it is unreadable)."""

    path: Path | None  # None for an image given as an array
    score: float | None  # probability of the defect class
    verdict: str | None  # "defect" when score >= threshold, else "normal"
    label: str | None  # the most probable class
    threshold: float
    model_version: str
    true_label: str  # from a Label Studio export given as input, else ""
    error: str | None  # why the image could not be inspected


class Inspector:
    """An exported model (`lineinspect export`), loaded once, inspecting files or arrays."""

    def __init__(self, model: str | Path, threads: int | None = None) -> None:
        self.classifier = OnnxClassifier(Path(model), threads=threads)
        self.meta = self.classifier.meta

    def inspect(self, inputs: Iterable[str | Path], options: ImportOptions | None = None) -> list[Inspection]:
        """Every image named by `inputs` (as `lineinspect inspect` takes them), in their order; `options` say how
        to read Label Studio exports among them (images root, label names)."""
        found = collect_inputs([str(i) for i in inputs], options or ImportOptions())
        predictions = iter_predictions(self.classifier, [path for path, _ in found])
        return [self._result(p, true) for p, (_, true) in zip(predictions, found, strict=True)]

    def inspect_array(self, image: np.ndarray) -> Inspection:
        """An HxWx3 BGR (or HxW gray) uint8 image, preprocessed as a PNG file of those pixels would be."""
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise LineInspectError("inspect_array takes an HxWx3 BGR or HxW gray uint8 array, as cv2.imread gives")
        ok, png = cv2.imencode(".png", image)  # lossless: the model sees exactly these pixels
        if not ok:
            raise LineInspectError(f"OpenCV could not encode an array of shape {image.shape}")
        x = preprocess(png.tobytes(), self.classifier.spec)
        return self._result(Prediction(None, infer(self.classifier, x[None])[0]), "")

    def _result(self, prediction: Prediction, true_label: str) -> Inspection:
        meta, result = self.meta, prediction.result
        return Inspection(
            path=prediction.path,
            score=None if result is None else result.score,
            verdict=None if result is None else result.verdict,
            label=None if result is None else result.label,
            threshold=meta.threshold,
            model_version=meta.version,
            true_label=true_label,
            error=prediction.error,
        )


def read_label(image: str | Path | bytes, template: str | Path = "default", engine: str = "pytesseract") -> LabelResult:
    """The fields of a product label (an image file or its bytes) by a label template's name or file."""
    return _read_label(_bytes(image), load_template(template), engine=engine)


def read_gauge(image: str | Path | bytes, gauge: str | Path) -> DisplayResult | DialResult:
    """A digital display or an analog dial (an image file or its bytes) by a gauge config's name or file."""
    return _read_gauge(_bytes(image), load_gauge(gauge))


def _bytes(image: str | Path | bytes) -> bytes:
    if isinstance(image, bytes):
        return image
    try:
        return Path(image).read_bytes()
    except OSError as exc:
        raise LineInspectError(f"cannot read {image}: {exc.strerror or exc}") from None
