"""`lineinspect inspect`: every input scored, one row each in input order, resumable, with progress and a summary."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING

from rich.console import Console

from annotation.errors import LineInspectError
from serving.batch.heatmaps import HeatmapWriter
from serving.batch.output import RowLog, fingerprint, output_format
from serving.batch.pipeline import iter_loaded
from serving.batch.rows import chunk_rows
from serving.settings import cpu_count
from vision.onnx_model import OnnxClassifier
from vision.progress import progress_bar

if TYPE_CHECKING:
    from serving.batch.ray_engine import RayEngine


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


def local_chunks(
    classifier: OnnxClassifier,
    todo: list[tuple[Path, str]],
    batch_size: int,
    workers: int | None,
    heatmaps: HeatmapWriter | None,
    first_row: int,
) -> Iterator[list[dict]]:
    """The rows of each chunk of `batch_size` inputs, in input order: decoded by worker processes, scored here."""
    loaded = iter_loaded([p for p, _ in todo], classifier.spec, batch_size, workers or cpu_count())
    for k, (batch, errors) in enumerate(loaded):
        chunk = todo[k * batch_size : (k + 1) * batch_size]
        yield chunk_rows(classifier, chunk, batch, errors, heatmaps, first_row + k * batch_size)


def inspect_paths(
    classifier: OnnxClassifier,
    inputs: list[tuple[Path, str]],
    out: Path,
    fmt: str | None = None,
    batch_size: int = 32,
    workers: int | None = None,
    resume: bool = False,
    console: Console | None = None,
    heatmaps: HeatmapWriter | None = None,
    ray: RayEngine | None = None,
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
        if heatmaps is not None:
            heatmaps.backfill(log.rows_path, batch_size)
    started = perf_counter()
    try:
        with progress_bar(console, unit="img") as progress:
            task = progress.add_task("inspecting", total=len(inputs), completed=done.rows)
            todo = inputs[done.rows :]
            if ray is None:
                chunks = local_chunks(classifier, todo, batch_size, workers, heatmaps, done.rows)
            else:
                chunks = ray.chunks(classifier, todo, batch_size)
            for rows in chunks:
                log.append(rows, sum(r["verdict"] == "defect" for r in rows), sum(r["error"] is not None for r in rows))
                progress.advance(task, len(rows))
            if heatmaps is not None:
                heatmaps.close()  # the last chunk's overlays are still being written
    except KeyboardInterrupt:
        log.close()
        raise LineInspectError(
            f"interrupted after {log.done.rows} of {len(inputs)} images; run the same command with --resume"
        ) from None
    seconds = perf_counter() - started
    log.finish(fmt)
    d = log.done
    return InspectSummary(len(inputs), d.defects, d.errors, out, len(inputs) - done.rows, seconds)
