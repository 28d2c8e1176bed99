"""Decode and preprocess in worker processes, in input order, with a bounded number of chunks in flight.

Each chunk is one inference batch. Workers run the one preprocessing (`vision.predict.load_input`,
with its reduced-resolution JPEG decode) and write the model inputs straight into a slot of shared
memory, so nothing of the images is pickled or piped and the main process only infers, on a view of
the slot. Workers are spawned, not forked: a fork of a process that already runs ONNX Runtime and
OpenCV thread pools can deadlock.
"""

from __future__ import annotations

import ctypes
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

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
_slots: np.ndarray | None = None  # in a worker: the shared slots, [slot, chunk, 3, H, W] float32


def _init_worker(parent: int, shared: object, shape: tuple[int, ...]) -> None:
    global _slots
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    cv2.setNumThreads(1)  # one process per core already
    _keep_freed_memory()
    _slots = np.frombuffer(shared, np.float32).reshape(shape)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _keep_freed_memory() -> None:
    """Decoding a full-HD JPEG allocates and frees a few MB per image; glibc hands such blocks back to the kernel
    each time (munmap, heap trim) and gets them again zeroed for the next image: about 800 page faults and 3 ms of
    system time per image, a quarter of the decode. Keep freed memory in the process instead (glibc only)."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, 64 << 20)  # blocks below 64 MB come from the heap, not from mmap
        mallopt(_M_TRIM_THRESHOLD, 256 << 20)  # and free heap is kept up to 256 MB


def _exit_with(parent: int) -> None:
    """A killed main process cannot stop its workers, and they would wait for work forever: they leave."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def load_chunk(paths: Sequence[str], spec: PreprocessSpec) -> Loaded:
    """Model inputs [k, 3, H, W] of the readable images, and per path the reason it is unreadable (or None)."""
    batch = np.empty((len(paths), 3, spec.height, spec.width), np.float32)
    errors = _load_into(batch, paths, spec)
    return batch[: errors.count(None)], errors


def _load_into_slot(slot: int, paths: Sequence[str], spec: PreprocessSpec) -> list[str | None]:
    assert _slots is not None, "a pool worker starts with the shared slots"
    return _load_into(_slots[slot], paths, spec)


def _load_into(batch: np.ndarray, paths: Sequence[str], spec: PreprocessSpec) -> list[str | None]:
    """Fill `batch` from its start with the readable images' inputs; per path the reason it is unreadable."""
    errors: list[str | None] = []
    for path in paths:
        x, error = _load(path, spec)
        if x is not None:
            batch[errors.count(None)] = x
        errors.append(error)
    return errors


def _load(path: str, spec: PreprocessSpec) -> tuple[np.ndarray | None, str | None]:
    try:
        return load_input(Path(path), spec)
    except Exception as exc:  # a decoder fault on one odd file must not end a run of thousands: it is a row
        return None, f"cannot decode: {exc.__class__.__name__}: {exc}"


def iter_loaded(
    paths: Sequence[Path], spec: PreprocessSpec, chunk_size: int, workers: int, ahead: int | None = None
) -> Iterator[Loaded]:
    """Loaded chunks of `chunk_size` paths, in order; at most `ahead` chunks are decoded ahead of the consumer.

    A chunk's inputs are a view of shared memory, valid until the consumer asks for the next chunk."""
    ahead = ahead or 2 * workers
    starts = iter(range(0, len(paths), chunk_size))
    context = get_context("spawn")
    shape = (ahead + 1, chunk_size, 3, spec.height, spec.width)  # one slot more: the chunk being consumed
    shared = context.RawArray("f", int(np.prod(shape)))
    slots = np.frombuffer(shared, np.float32).reshape(shape)
    initargs = (os.getpid(), shared, shape)
    with ProcessPoolExecutor(workers, context, initializer=_init_worker, initargs=initargs) as pool:
        pending: deque[tuple[int, Future[list[str | None]]]] = deque()
        submitted = 0

        def submit() -> None:
            nonlocal submitted
            if (start := next(starts, None)) is not None:
                slot = submitted % len(slots)
                chunk = [str(p) for p in paths[start : start + chunk_size]]
                pending.append((slot, pool.submit(_load_into_slot, slot, chunk, spec)))
                submitted += 1

        try:
            for _ in range(ahead):
                submit()
            while pending:
                slot, future = pending.popleft()
                errors = future.result()
                submit()  # into the slot the consumer finished with when it asked for this chunk
                yield slots[slot][: errors.count(None)], errors
        except BrokenProcessPool:
            raise LineInspectError("a decode worker died (out of memory, or killed); --resume continues") from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
