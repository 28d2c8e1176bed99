"""The inference engine: the served model (checked, warmed up, swapped atomically), parallel decode and
dynamic micro-batching.

Decoding runs in a thread pool (OpenCV releases the GIL) through the one preprocessing of
`vision.preprocess`; decoded images wait in a queue and are inferred together, one inference at a
time, so a batch forms while the previous one runs. Nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter

import numpy as np

from annotation.errors import LineInspectError
from serving.metrics import Metrics
from serving.settings import EngineSettings
from vision.onnx_model import OnnxClassifier
from vision.preprocess import (
    ImageDecodeError,
    PixelLimitError,
    PreprocessSpec,
    content_box,
    decode,
    probe,
    resize,
    to_input,
)
from vision.quality import ImageQuality, measure_quality

ACCEPTED_FORMATS = ("JPEG", "PNG", "BMP", "TIFF")


class Refused(LineInspectError):
    """An image or model file the service refuses; `reason` is the error code clients and metrics see."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.record_id: str | None = None  # set once the refusal is recorded


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to serve: its spec carries the service's pixel limit, its hash identifies the file."""

    classifier: OnnxClassifier
    spec: PreprocessSpec
    path: Path
    sha256: str
    loaded_at: datetime

    @property
    def name(self) -> str:
        return self.classifier.meta.name

    @property
    def version(self) -> str:
        return self.classifier.meta.version

    @property
    def threshold(self) -> float:
        return self.classifier.meta.threshold


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def load_model(path: Path, settings: EngineSettings, max_pixels: int) -> LoadedModel:
    """Load a model file and prove it answers, at the batch sizes it will see, before it serves anyone."""
    threads, _ = settings.threads()
    classifier = OnnxClassifier(path, providers=settings.providers, threads=threads)
    spec = dataclasses.replace(classifier.spec, max_pixels=max_pixels)
    classes = classifier.meta.classes
    for n in sorted({1, settings.max_batch_size}):
        try:
            probs = classifier.predict(np.zeros((n, 3, spec.height, spec.width), np.float32))
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise LineInspectError(f"{path}: inference on a batch of {n} failed: {exc}") from None
        if probs.shape != (n, len(classes)) or not np.isfinite(probs).all() or not np.allclose(probs.sum(1), 1, 1e-3):
            raise LineInspectError(
                f"{path}: output {probs.shape} is not probabilities over the {len(classes)} classes {classes}"
            )
    return LoadedModel(classifier, spec, Path(path).resolve(), file_sha256(path), datetime.now(UTC))


def resolve_model_path(requested: str, allowed: list[Path]) -> Path:
    """The .onnx file `requested` names inside an allowed folder (relative names are looked up in each, in order).

    The path is resolved first, so neither `..` nor a symbolic link leads outside the allow-list.
    """
    path = Path(requested)
    for candidate in [path] if path.is_absolute() else [folder / path for folder in allowed]:
        real = candidate.resolve()
        if not any(real.is_relative_to(folder) for folder in allowed):
            raise Refused("model_path_forbidden", f"{requested} is outside the model folders (model_dirs)")
        if real.suffix != ".onnx":
            raise Refused("model_path_forbidden", f"{requested} is not an .onnx file")
        if real.is_file():
            return real
    raise Refused("model_not_found", f"{requested} not found in the model folders {[str(f) for f in allowed]}")


@dataclass
class Prepared:
    """An image turned into model input, or the reason it could not be."""

    sha256: str
    x: np.ndarray | None = None
    quality: ImageQuality | None = None
    error: Refused | None = None
    decode_s: float = 0.0
    preprocess_s: float = 0.0


def prepare(data: bytes, spec: PreprocessSpec) -> Prepared:
    """Hash, check and preprocess one image; runs in the decode pool."""
    prepared = Prepared(hashlib.sha256(data).hexdigest())
    started = perf_counter()
    try:
        image = _decode_checked(data, spec)
    except Refused as exc:
        prepared.error = exc
        return prepared
    decoded = perf_counter()
    sized = resize(image, spec)
    prepared.x = to_input(sized, spec)  # decode + these two = vision.preprocess.preprocess
    prepared.quality = measure_quality(sized, content_box(image.shape[0], image.shape[1], spec))
    prepared.decode_s, prepared.preprocess_s = decoded - started, perf_counter() - decoded
    return prepared


def _decode_checked(data: bytes, spec: PreprocessSpec) -> np.ndarray:
    check_image(data, spec.max_pixels)
    try:
        return decode(data, spec)
    except ImageDecodeError as exc:
        raise Refused("corrupt_image", f"{exc}; the image may be truncated") from None


def check_image(data: bytes, max_pixels: int) -> None:
    """Refuse, from the header alone, what no reader should decode: empty, not an image, a format not
    accepted, too many pixels."""
    if not data:
        raise Refused("empty_image", "the image is empty (0 bytes)")
    try:
        fmt, width, height = probe(data)
    except PixelLimitError as exc:
        raise Refused("too_many_pixels", str(exc)) from None
    except ImageDecodeError:
        raise Refused("not_an_image", f"not an image this service reads (send {', '.join(ACCEPTED_FORMATS)})") from None
    if fmt not in ACCEPTED_FORMATS:
        raise Refused("unsupported_format", f"{fmt} images are not accepted: send {', '.join(ACCEPTED_FORMATS)}")
    if width * height > max_pixels:
        raise Refused(
            "too_many_pixels",
            f"image is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}",
        )


@dataclass
class Outcome:
    """What the engine made of one image: probabilities from `model`, or the reason there are none."""

    model: LoadedModel
    sha256: str
    probabilities: np.ndarray | None
    error: Refused | None
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage
    quality: ImageQuality | None = None

    @property
    def score(self) -> float:
        return float(self.probabilities[self.model.classifier.meta.defect_index])

    @property
    def verdict(self) -> str:
        return "defect" if self.score >= self.model.threshold else "normal"

    @property
    def label(self) -> str:
        return self.model.classifier.meta.classes[int(self.probabilities.argmax())]


@dataclass
class _Job:
    model: LoadedModel
    x: np.ndarray
    queued: float
    future: asyncio.Future


class MicroBatcher:
    """Images waiting together are inferred as one batch, one inference at a time.

    A batch is sent when it is full, when nothing more is being decoded, or when its oldest
    image has waited `max_wait_s`; so a busy line fills batches while the previous one runs. A
    lone image (nothing queued, nothing else being decoded, no inference running) is inferred
    at once by the thread that decoded it, sparing it the trips through the event loop and the
    inference thread.
    """

    def __init__(self, max_batch_size: int, max_wait_s: float, metrics: Metrics) -> None:
        self.max_batch_size, self.max_wait_s, self.metrics = max_batch_size, max_wait_s, metrics
        self.preparing = 0  # images being decoded: worth waiting for
        self._jobs: deque[_Job] = deque()
        self._arrived = asyncio.Event()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="lineinspect-infer")
        self._inferring = threading.Lock()  # one inference at a time, batched or alone
        self._task: asyncio.Task | None = None

    @property
    def depth(self) -> int:
        return len(self._jobs)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="lineinspect-batcher")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._pool.shutdown(wait=True)

    def infer_alone(self, model: LoadedModel, x: np.ndarray) -> tuple[np.ndarray, float] | None:
        """In a decode thread: probabilities and inference seconds for a lone image, or None when others
        are queued or being decoded or an inference is running (the image then goes to `infer`).

        The loop's counters are read without its lock: a race only sends a lone image the usual way,
        or has an image that was just queued wait for this inference as it would for any other."""
        if self.preparing > 1 or self._jobs or not self._inferring.acquire(blocking=False):
            return None
        try:
            started = perf_counter()
            probs = model.classifier.predict(x[None])[0]
        finally:
            self._inferring.release()
        self.metrics.batch_size.observe(1)
        return probs, perf_counter() - started

    async def infer(self, model: LoadedModel, x: np.ndarray) -> tuple[np.ndarray, float, float]:
        """Probabilities for one preprocessed image, with its queue and inference seconds."""
        future = asyncio.get_running_loop().create_future()
        self._jobs.append(_Job(model, x, perf_counter(), future))
        self._arrived.set()
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._jobs:
                self._arrived.clear()
                await self._arrived.wait()
            await self._fill(self._jobs[0].queued + self.max_wait_s)
            jobs = [self._jobs.popleft() for _ in range(min(len(self._jobs), self.max_batch_size))]
            for model in dict.fromkeys(j.model for j in jobs):  # a reload mid-batch: each model infers its own
                group = [j for j in jobs if j.model is model]
                started = perf_counter()
                try:
                    batch = np.stack([j.x for j in group])
                    probs = await loop.run_in_executor(self._pool, self._predict, model, batch)
                except Exception as exc:  # a fault for these requests (5xx), never for the batcher
                    for j in group:
                        if not j.future.done():
                            j.future.set_exception(exc)
                    continue
                infer_s = perf_counter() - started
                self.metrics.batch_size.observe(len(group))
                for j, p in zip(group, probs, strict=True):
                    if not j.future.done():  # its request may have been cancelled (client gone)
                        j.future.set_result((p, started - j.queued, infer_s))

    def _predict(self, model: LoadedModel, batch: np.ndarray) -> np.ndarray:
        with self._inferring:
            return model.classifier.predict(batch)

    async def _fill(self, deadline: float) -> None:
        while len(self._jobs) < self.max_batch_size and self.preparing > 0:
            remaining = deadline - perf_counter()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()
            except TimeoutError:
                return


class Engine:
    """The served model and the pools that feed it."""

    def __init__(self, model: LoadedModel, settings: EngineSettings, max_pixels: int, metrics: Metrics) -> None:
        """`model` is loaded before the event loop starts, so that a bad file stops the CLI with a clear error."""
        self.settings, self.max_pixels, self.metrics = settings, max_pixels, metrics
        _, decode_threads = settings.threads()
        self._install(model)
        self._decode_pool = ThreadPoolExecutor(decode_threads, thread_name_prefix="lineinspect-decode")
        self.batcher = MicroBatcher(settings.max_batch_size, settings.max_wait_ms / 1000, metrics)
        self._swap = asyncio.Lock()
        metrics.queue_depth.set_function(lambda: self.batcher.depth)
        metrics.preparing.set_function(lambda: self.batcher.preparing)

    def start(self) -> None:
        self.batcher.start()

    async def stop(self) -> None:
        await self.batcher.stop()
        self._decode_pool.shutdown(wait=True)

    async def load(self, path: Path) -> LoadedModel:
        """Load, check and warm up off the event loop, then swap: requests already running keep the old model."""
        async with self._swap:
            model = await asyncio.to_thread(load_model, path, self.settings, self.max_pixels)
            self._install(model)
        return model

    def _prepare(self, data: bytes, model: LoadedModel) -> tuple[Prepared, tuple[np.ndarray, float] | None]:
        """In the decode pool: the prepared image, and its probabilities when it could be inferred alone."""
        prepared = prepare(data, model.spec)
        return prepared, None if prepared.x is None else self.batcher.infer_alone(model, prepared.x)

    def _install(self, model: LoadedModel) -> None:
        self.model = model  # one assignment: the swap is atomic
        self.metrics.set_model(model.name, model.version, model.sha256)

    async def inspect(self, data: bytes) -> Outcome:
        """Probabilities for one image's bytes, or the reason the image was refused."""
        model = self.model
        loop = asyncio.get_running_loop()
        started = perf_counter()
        self.batcher.preparing += 1
        try:
            prepared, alone = await loop.run_in_executor(self._decode_pool, self._prepare, data, model)
        finally:
            self.batcher.preparing -= 1
        timings = {"decode": prepared.decode_s * 1e3, "preprocess": prepared.preprocess_s * 1e3}
        if prepared.x is None:
            return Outcome(model, prepared.sha256, None, prepared.error, timings)
        if alone is not None:
            (probs, infer_s), queue_s = alone, 0.0
        else:
            probs, queue_s, infer_s = await self.batcher.infer(model, prepared.x)
        timings.update(queue=queue_s * 1e3, infer=infer_s * 1e3, total=(perf_counter() - started) * 1e3)
        self.metrics.observe_stages(timings)
        return Outcome(model, prepared.sha256, probs, None, timings, prepared.quality)
