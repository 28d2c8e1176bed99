"""Inference, written once: a preprocessed batch through a model's session to one result per image.

Every path that scores images calls `infer`: `vision.predict` (evaluation, export's holdout check, the
Python API, Label Studio pre-annotation), the service's micro-batcher (`serving.engine`) and both engines
of `lineinspect inspect` (`serving.batch.rows`). What differs between them (decoding, micro-batching and
threads, chunks and worker processes, Ray actors) stays with them. Importing this module loads no ONNX
Runtime: batch decode workers import `vision.predict` and need none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from annotation.verdicts import verdict

if TYPE_CHECKING:
    from vision.onnx_model import OnnxClassifier


@dataclass(frozen=True, slots=True)
class Scored:
    """One image's result from the model."""

    probabilities: np.ndarray  # over the model's classes, in `meta.classes` order
    score: float  # probability of the defect class
    verdict: str  # `annotation.verdicts` at the model's threshold
    label: str  # the most probable class
    heatmap: np.ndarray | None = None  # [h, w] defect evidence, when asked for


def infer(classifier: OnnxClassifier, batch: np.ndarray, heatmaps: bool = False) -> list[Scored]:
    """The results of a preprocessed batch [N, 3, H, W], in order, from one session run; with `heatmaps`, each
    carries its heatmap (a model exported without a heatmap output is a LineInspectError that says to re-export)."""
    if not len(batch):
        return []
    if heatmaps:
        probabilities, maps = classifier.predict_with_heatmaps(batch)
    else:
        probabilities, maps = classifier.predict(batch), [None] * len(batch)
    meta = classifier.meta
    defect, threshold, classes = meta.defect_index, meta.threshold, meta.classes
    results = []
    for p, heatmap in zip(probabilities, maps, strict=True):
        score = float(p[defect])
        results.append(Scored(p, score, verdict(score, threshold), classes[int(p.argmax())], heatmap))
    return results
