"""Offline inspection of folders, globs or exports: one CSV row per image, errors as rows."""

from __future__ import annotations

import csv
import glob
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from annotation.errors import LineInspectError
from annotation.exports import ImportOptions, load_exports
from annotation.manifest import IMAGE_SUFFIXES
from vision.onnx_model import OnnxClassifier
from vision.predict import iter_predictions
from vision.progress import progress_bar

EXPORT_SUFFIXES = {".json", ".csv"}
COLUMNS = ["path", "score", "verdict", "label", "threshold", "model_version", "true_label", "error"]


@dataclass
class InspectSummary:
    images: int
    defects: int
    errors: int
    out: Path


def collect_inputs(inputs: Iterable[str], options: ImportOptions) -> list[tuple[Path, str]]:
    """(path, true label or "") for every image named by folders, globs, files or exports, in a stable order."""
    found: list[tuple[Path, str]] = []
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            found += [(p, "") for p in sorted(path.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        elif path.is_file() and path.suffix.lower() in EXPORT_SUFFIXES:
            manifest = load_exports([path], options)
            found += [(i.path, i.label) for i in manifest.items]
        elif path.is_file():
            found.append((path, ""))
        elif matches := sorted(glob.glob(spec, recursive=True)):
            found += [(Path(m), "") for m in matches if Path(m).suffix.lower() in IMAGE_SUFFIXES]
        else:
            raise LineInspectError(f"input not found: {spec} (give folders, files, globs or Label Studio exports)")
    return found


def inspect_paths(
    classifier: OnnxClassifier,
    inputs: list[tuple[Path, str]],
    out: Path,
    batch_size: int = 32,
    console: Console | None = None,
) -> InspectSummary:
    """Score every input and write the CSV (to a temporary name first, so it is never half-written)."""
    console = console or Console(stderr=True)
    meta = classifier.meta
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    defects = errors = 0
    with open(tmp, "w", newline="", encoding="utf-8") as f, progress_bar(console, unit="img") as progress:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        task = progress.add_task("inspecting", total=len(inputs))
        predictions = iter_predictions(classifier, [p for p, _ in inputs], batch_size=batch_size)
        for (path, true_label), pred in zip(inputs, predictions, strict=True):
            row = {
                "path": str(path),
                "threshold": meta.threshold,
                "model_version": meta.version,
                "true_label": true_label,
            }
            if pred.probabilities is None:
                errors += 1
                row["error"] = pred.error
            else:
                score = float(pred.probabilities[meta.defect_index])
                verdict = "defect" if score >= meta.threshold else "normal"
                defects += verdict == "defect"
                row.update(score=repr(score), verdict=verdict, label=meta.classes[int(pred.probabilities.argmax())])
            writer.writerow(row)
            progress.advance(task)
    tmp.replace(out)
    return InspectSummary(len(inputs), defects, errors, out)
