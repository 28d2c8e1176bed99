"""Decode and preprocess in worker processes, in input order, with a bounded number of chunks in flight.

Each chunk is one inference batch. Workers run the one preprocessing (`vision.predict.load_input`,
with its reduced-resolution JPEG decode) and send back the stacked model inputs, so the main process
only infers. Workers are spawned, not forked: a fork of a process that already runs ONNX Runtime and
OpenCV thread pools can deadlock.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np

from annotation.errors import LineInspectError
from vision.predict import load_input
from vision.preprocess import PreprocessSpec

Loaded = tuple[np.ndarray, list[str | None]]  # inputs of the readable images, and per path why it is not


def _init_worker(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    cv2.setNumThreads(1)  # one process per core already
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    """A killed main process cannot stop its workers, and they would wait for work forever: they leave."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def load_chunk(paths: Sequence[str], spec: PreprocessSpec) -> Loaded:
    """Model inputs [k, 3, H, W] of the readable images, and per path the reason it is unreadable (or None)."""
    loaded = [_load(p, spec) for p in paths]
    inputs = [x for x, _ in loaded if x is not None]
    batch = np.stack(inputs) if inputs else np.empty((0, 3, spec.height, spec.width), np.float32)
    return batch, [error for _, error in loaded]


def _load(path: str, spec: PreprocessSpec) -> tuple[np.ndarray | None, str | None]:
    try:
        return load_input(Path(path), spec)
    except Exception as exc:  # a decoder fault on one odd file must not end a run of thousands: it is a row
        return None, f"cannot decode: {exc.__class__.__name__}: {exc}"


def iter_loaded(
    paths: Sequence[Path], spec: PreprocessSpec, chunk_size: int, workers: int, ahead: int | None = None
) -> Iterator[Loaded]:
    """Loaded chunks of `chunk_size` paths, in order; at most `ahead` chunks are decoded ahead of the consumer."""
    ahead = ahead or 2 * workers
    starts = iter(range(0, len(paths), chunk_size))
    context = get_context("spawn")
    with ProcessPoolExecutor(workers, context, initializer=_init_worker, initargs=(os.getpid(),)) as pool:
        pending: deque[Future[Loaded]] = deque()

        def submit() -> None:
            if (start := next(starts, None)) is not None:
                pending.append(pool.submit(load_chunk, [str(p) for p in paths[start : start + chunk_size]], spec))

        try:
            for _ in range(ahead):
                submit()
            while pending:
                loaded = pending.popleft().result()
                submit()
                yield loaded
        except BrokenProcessPool:
            raise LineInspectError("a decode worker died (out of memory, or killed); --resume continues") from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
