"""A chunk of `lineinspect inspect`'s inputs turned into output rows: the local engine (`serving.batch.run`) and
the Ray engine's actors (`serving.batch.ray_engine`) both score their chunks here, so both write the same rows."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vision.inference import infer

if TYPE_CHECKING:
    from serving.batch.heatmaps import HeatmapWriter
    from vision.onnx_model import OnnxClassifier


def chunk_rows(
    classifier: OnnxClassifier,
    inputs: list[tuple[Path, str]],
    batch: np.ndarray,
    errors: list[str | None],
    heatmaps: HeatmapWriter | None = None,
    first_row: int = 0,
) -> list[dict]:
    """The rows of one chunk: scores of its readable images (`batch`, in order), the reason for the others; with
    `heatmaps`, the chunk's maps (rows numbered from `first_row`) go to it to be drawn."""
    meta = classifier.meta
    scored = infer(classifier, batch, heatmaps=heatmaps is not None)
    results = iter(scored)
    rows = []
    for (path, true_label), error in zip(inputs, errors, strict=True):
        row = {"path": str(path), "score": None, "verdict": None, "label": None, "threshold": meta.threshold,
               "model_version": meta.version, "true_label": true_label or None, "error": error}  # fmt: skip
        if error is None:
            result = next(results)
            row.update(score=result.score, verdict=result.verdict, label=result.label)
        rows.append(row)
    if heatmaps is not None and scored:
        heatmaps.write(first_row, rows, [result.heatmap for result in scored])
    return rows
