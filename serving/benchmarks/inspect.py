"""`lineinspect bench inspect`: the local engine against the in-process ceiling, in the same run, on the same files.

The ceiling reads, decodes and preprocesses the next batch in a thread pool while this one is
inferred, all in one process with nothing written (as `bench serve` measures the service's
ceiling). It is measured before and after the engine, and the engine compared with their mean, so
that a machine whose speed drifts during the run favours neither. The engine is the whole
`inspect`: worker processes, ordered rows, journal and output, including its workers' start-up
(about a second, so measure thousands of images). Peak resident memory is reported for the main
process and the largest worker.
"""

from __future__ import annotations

import os
import resource
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from time import perf_counter

import cv2
import numpy as np
from rich.console import Console

from annotation.errors import LineInspectError
from serving.batch.run import inspect_paths
from serving.benchmarks.serve import cpu_note, resident_mb
from vision.onnx_model import OnnxClassifier
from vision.predict import load_input

DISTINCT = 16  # generated images cycle through this many different pictures


def parse_size(size: str) -> tuple[int, int]:
    """'512' (square) or '1920x1080' to (width, height)."""
    try:
        width, _, height = size.partition("x")
        dims = int(width), int(height or width)
    except ValueError:
        raise LineInspectError(f"--size {size!r}: give one side (512) or WIDTHxHEIGHT (1920x1080)") from None
    if min(dims) < 16:
        raise LineInspectError(f"--size {size!r}: each side must be at least 16 pixels")
    return dims


def generate_images(folder: Path, count: int, size: tuple[int, int]) -> list[Path]:
    """`count` JPEGs with structure (blurred noise) in `folder`: a few distinct pictures, the rest hard links
    to them, so 50,000 full-HD images take the disk space of a few (decoding costs the same)."""
    rng = np.random.default_rng(0)
    width, height = size
    paths = [folder / f"{i:06d}.jpg" for i in range(count)]
    for path in paths[:DISTINCT]:
        noise = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        jpeg = cv2.imencode(".jpg", cv2.GaussianBlur(noise, (0, 0), 3), [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
        path.write_bytes(jpeg.tobytes())
    for i, path in enumerate(paths[DISTINCT:], start=DISTINCT):
        os.link(paths[i % DISTINCT], path)
    return paths


def ceiling(classifier: OnnxClassifier, paths: list[Path], batch_size: int, threads: int) -> float:
    """Images per second of read + decode + preprocess overlapped with batched inference, in one process."""
    batches = [paths[i : i + batch_size] for i in range(0, len(paths), batch_size)]

    def load(path: Path) -> np.ndarray | None:
        return load_input(path, classifier.spec)[0]

    with ThreadPoolExecutor(threads) as pool:
        started = perf_counter()
        nxt = [pool.submit(load, p) for p in batches[0]]
        for k in range(len(batches)):
            inputs = [x for x in (f.result() for f in nxt) if x is not None]
            nxt = [pool.submit(load, p) for p in batches[k + 1]] if k + 1 < len(batches) else []
            if inputs:
                classifier.predict(np.stack(inputs))
        return len(paths) / (perf_counter() - started)


def bench_inspect(classifier: OnnxClassifier, paths: list[Path], batch_size: int, workers: int, console: Console):
    """Measure and print the ceiling, the engine, their ratio and peak memory."""
    spec = classifier.spec
    console.print(f"{len(paths)} images, {classifier.meta.name} {classifier.meta.version} at "
                  f"{spec.height}x{spec.width}, {cpu_note()}", highlight=False)  # fmt: skip
    warm = [x for x, _ in (load_input(p, spec) for p in paths[:batch_size]) if x is not None]
    if not warm:
        raise LineInspectError("the first images are unreadable: nothing to measure")
    classifier.predict(np.stack(warm))
    before = ceiling(classifier, paths, batch_size, workers)
    console.print(f"in-process ceiling: {before:.1f} img/s (decode+preprocess in {workers} threads, "
                  f"batches of {batch_size})", highlight=False)  # fmt: skip
    rss_before = resident_mb(os.getpid())
    with tempfile.TemporaryDirectory(prefix="lineinspect-bench-") as tmp, WorkerPeak() as workers_peak:
        summary = inspect_paths(classifier, [(p, "") for p in paths], Path(tmp) / "rows.jsonl",
                                batch_size=batch_size, workers=workers, console=Console(stderr=True))  # fmt: skip
    console.print(f"local engine: {summary.throughput:.1f} img/s ({workers} worker processes, batches of "
                  f"{batch_size}, rows written and journalled)", highlight=False)  # fmt: skip
    after = ceiling(classifier, paths, batch_size, workers)
    best = (before + after) / 2
    console.print(f"in-process ceiling after the engine: {after:.1f} img/s", highlight=False)
    console.print(f"engine / ceiling: {summary.throughput / best:.2f} (against the mean of the two ceilings)",
                  highlight=False)  # fmt: skip
    main_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(f"resident memory: main {rss_before:.0f} MB before the engine, {resident_mb(os.getpid()):.0f} MB "
                  f"after, peak {main_peak:.0f} MB; largest worker peak {workers_peak.mb:.0f} MB",
                  highlight=False)  # fmt: skip


class WorkerPeak(threading.Thread):
    """The largest peak resident memory (VmHWM) among this process's children, sampled while they run.

    getrusage's figure for children would count the parent's memory a spawned child held before exec."""

    def __init__(self, every_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.every_s, self.mb, self.done = every_s, 0.0, threading.Event()

    def __enter__(self) -> WorkerPeak:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join()

    def run(self) -> None:
        while not self.done.wait(self.every_s):
            for pid in _children(os.getpid()):
                self.mb = max(self.mb, _peak_mb(pid))


def _children(pid: int) -> list[int]:
    return [int(c) for f in Path(f"/proc/{pid}/task").glob("*/children") for c in f.read_text().split()]


def _peak_mb(pid: int) -> float:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:  # it has just exited
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in lines if line.startswith("VmHWM:")), 0.0)
