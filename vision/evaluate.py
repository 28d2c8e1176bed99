"""Evaluate an ONNX model on a labelled manifest: metrics JSON, plots, per-image predictions."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console

from annotation.errors import LineInspectError
from annotation.manifest import Manifest
from vision.calibrate import operating_point
from vision.metrics import evaluate_scores, write_plots
from vision.onnx_model import OnnxClassifier
from vision.predict import iter_predictions


@dataclass
class EvaluationResult:
    metrics: dict
    out_dir: Path
    files: dict[str, Path]


def evaluate_model(
    model_path: Path, manifest: Manifest, out_dir: Path, console: Console | None = None
) -> EvaluationResult:
    """Score every manifest item with the model at its own threshold and write the evidence to `out_dir`."""
    console = console or Console(stderr=True)
    if not manifest.items:
        raise LineInspectError("nothing to evaluate: the export has no usable labelled images")
    classifier = OnnxClassifier(model_path)
    meta = classifier.meta
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    rows, scores, truth = [], [], []
    for item, pred in zip(manifest.items, iter_predictions(classifier, [i.path for i in manifest.items]), strict=True):
        row = {"path": str(item.path), "label": item.label, "score": "", "verdict": "", "error": pred.error or ""}
        if pred.result is not None:
            row.update(score=f"{pred.result.score:.6f}", verdict=pred.result.verdict)
            scores.append(pred.result.score)
            truth.append(item.label == meta.defect_class)
        rows.append(row)
    if not scores:
        raise LineInspectError("no image of the export could be read; see predictions.csv for the reasons")
    s, t = np.asarray(scores), np.asarray(truth, dtype=bool)
    metrics = {
        "model": {"name": meta.name, "version": meta.version, "path": str(model_path)},
        "data": {"sources": manifest.sources, "unreadable": sum(1 for r in rows if r["error"])},
        **evaluate_scores(t, s, meta.threshold),
        "operating_point": operating_point(s, t, meta.threshold).to_dict(),
    }
    files = {"metrics": out_dir / "metrics.json", "predictions": out_dir / "predictions.csv"}
    files["metrics"].write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    with open(files["predictions"], "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    files.update(write_plots(t, s, meta.threshold, out_dir, title=f"{meta.name} {meta.version}"))
    return EvaluationResult(metrics, out_dir, files)
