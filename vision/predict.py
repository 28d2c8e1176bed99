"""Score image files with an ONNX model: parallel decode, batched inference, errors as results."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from annotation.errors import LineInspectError
from vision.inference import Scored, infer
from vision.preprocess import PreprocessSpec, preprocess

if TYPE_CHECKING:  # batch decode workers import this module and need no ONNX Runtime
    from vision.onnx_model import OnnxClassifier


@dataclass(frozen=True)
class Prediction:
    path: Path | None  # None for an image given as an array (`serving.api.Inspector.inspect_array`)
    result: Scored | None  # None when the image could not be read
    error: str | None = None


def load_input(path: Path, spec: PreprocessSpec) -> tuple[np.ndarray | None, str | None]:
    """The model input for a file, or the reason it could not be made."""
    try:
        return preprocess(Path(path).read_bytes(), spec), None
    except LineInspectError as exc:
        return None, str(exc)
    except OSError as exc:
        return None, f"cannot read file: {exc.strerror or exc}"


def iter_predictions(
    classifier: OnnxClassifier, paths: Iterable[Path], batch_size: int = 32, threads: int | None = None
) -> Iterator[Prediction]:
    """Predictions in input order; decoding runs in threads (OpenCV releases the GIL)."""
    it = iter(paths)
    with ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1) as pool:
        while chunk := list(islice(it, batch_size)):
            loaded = list(pool.map(lambda p: load_input(p, classifier.spec), chunk))
            inputs = [x for x, _ in loaded if x is not None]
            results = iter(infer(classifier, np.stack(inputs)) if inputs else ())
            for path, (x, error) in zip(chunk, loaded, strict=True):
                yield Prediction(Path(path), None if x is None else next(results), error)


def iter_defect_scores(classifier: OnnxClassifier, paths: Iterable[Path]) -> Iterator[tuple[float | None, str | None]]:
    """(defect score, None), or (None, why the image could not be scored), per path in order."""
    for prediction in iter_predictions(classifier, paths):
        if prediction.result is None:
            yield None, prediction.error
        else:
            yield prediction.result.score, None
