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
from vision.preprocess import PreprocessSpec, preprocess

if TYPE_CHECKING:  # batch decode workers import this module and need no ONNX Runtime
    from vision.onnx_model import OnnxClassifier


@dataclass(frozen=True)
class Prediction:
    path: Path
    probabilities: np.ndarray | None  # None when the image could not be read
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
            ok = [i for i, (x, _) in enumerate(loaded) if x is not None]
            probs = classifier.predict(np.stack([loaded[i][0] for i in ok])) if ok else np.empty((0, 0))
            by_index = dict(zip(ok, probs, strict=True))
            for i, path in enumerate(chunk):
                yield Prediction(Path(path), by_index.get(i), loaded[i][1])


def iter_defect_scores(classifier: OnnxClassifier, paths: Iterable[Path]) -> Iterator[tuple[float | None, str | None]]:
    """(defect score, None), or (None, why the image could not be scored), per path in order."""
    for prediction in iter_predictions(classifier, paths):
        if prediction.probabilities is None:
            yield None, prediction.error
        else:
            yield float(prediction.probabilities[classifier.meta.defect_index]), None
