"""`lineinspect inspect`: every input scored, one row each in input order, resumable, with progress and a summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import numpy as np
from rich.console import Console

from annotation.errors import LineInspectError
from serving.batch.output import RowLog, fingerprint, output_format
from serving.batch.pipeline import iter_loaded
from serving.settings import cpu_count
from vision.onnx_model import OnnxClassifier
from vision.progress import progress_bar


@dataclass
class InspectSummary:
    images: int
    defects: int
    errors: int
    out: Path
    inspected: int  # by this run (a resumed run did the rest before)
    seconds: float

    @property
    def throughput(self) -> float:
        return self.inspected / self.seconds if self.seconds else 0.0


def chunk_rows(
    classifier: OnnxClassifier, inputs: list[tuple[Path, str]], batch: np.ndarray, errors: list[str | None]
) -> list[dict]:
    """The rows of one chunk: scores of its readable images, the reason for the others."""
    meta = classifier.meta
    probabilities = iter(classifier.predict(batch) if len(batch) else ())
    rows = []
    for (path, true_label), error in zip(inputs, errors, strict=True):
        row = {"path": str(path), "score": None, "verdict": None, "label": None, "threshold": meta.threshold,
               "model_version": meta.version, "true_label": true_label or None, "error": error}  # fmt: skip
        if error is None:
            p = next(probabilities)
            score = float(p[meta.defect_index])
            row.update(score=score, verdict="defect" if score >= meta.threshold else "normal",
                       label=meta.classes[int(p.argmax())])  # fmt: skip
        rows.append(row)
    return rows


def inspect_paths(
    classifier: OnnxClassifier,
    inputs: list[tuple[Path, str]],
    out: Path,
    fmt: str | None = None,
    batch_size: int = 32,
    workers: int | None = None,
    resume: bool = False,
    console: Console | None = None,
) -> InspectSummary:
    """Score every input into `out` (see `serving.batch.output` for how a run survives interruption)."""
    console = console or Console(stderr=True)
    out = Path(out)
    fmt = output_format(out, fmt)
    log = RowLog(out, fingerprint(classifier.path, inputs))
    if resume and not log.interrupted():
        console.print(f"nothing to resume for {out}: starting from the first image")
        resume = False
    elif not resume and log.interrupted():
        console.print(f"starting over: discarding the interrupted run in {log.journal_path} (--resume continues it)")
    done = log.open(resume)
    if resume:
        console.print(f"resuming after {done.rows} of {len(inputs)} images", highlight=False)
    started = perf_counter()
    try:
        with progress_bar(console, unit="img") as progress:
            task = progress.add_task("inspecting", total=len(inputs), completed=done.rows)
            todo = inputs[done.rows :]
            loaded = iter_loaded([p for p, _ in todo], classifier.spec, batch_size, workers or cpu_count())
            for k, (batch, errors) in enumerate(loaded):
                rows = chunk_rows(classifier, todo[k * batch_size : (k + 1) * batch_size], batch, errors)
                log.append(rows, sum(r["verdict"] == "defect" for r in rows), sum(r["error"] is not None for r in rows))
                progress.advance(task, len(rows))
    except KeyboardInterrupt:
        log.close()
        raise LineInspectError(
            f"interrupted after {log.done.rows} of {len(inputs)} images; run the same command with --resume"
        ) from None
    seconds = perf_counter() - started
    log.finish(fmt)
    d = log.done
    return InspectSummary(len(inputs), d.defects, d.errors, out, len(inputs) - done.rows, seconds)
