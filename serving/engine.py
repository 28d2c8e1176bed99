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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter

import numpy as np

from annotation.errors import LineInspectError
from serving.metrics import Metrics
from serving.refusals import Refused
from serving.settings import EngineSettings
from vision.inference import Scored, infer
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


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to serve: its spec carries the service's pixel limit, its hash identifies the file.

    `solo` infers one image at a time: a one-thread session on CPU, which is as fast for one image as
    the batch session's threads and takes half the CPU (and no worker thread to wake); on a GPU, the
    batch session itself."""

    classifier: OnnxClassifier
    solo: OnnxClassifier
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
    on_cpu = classifier.session.get_providers()[0] == "CPUExecutionProvider"
    solo = OnnxClassifier(path, providers=settings.providers, threads=1) if on_cpu and threads > 1 else classifier
    spec = dataclasses.replace(classifier.spec, max_pixels=max_pixels)
    classes = classifier.meta.classes
    for session, n in {(solo, 1), (classifier, settings.max_batch_size)}:
        try:
            probs = session.predict(np.zeros((n, 3, spec.height, spec.width), np.float32))
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise LineInspectError(f"{path}: inference on a batch of {n} failed: {exc}") from None
        if probs.shape != (n, len(classes)) or not np.isfinite(probs).all() or not np.allclose(probs.sum(1), 1, 1e-3):
            raise LineInspectError(
                f"{path}: output {probs.shape} is not probabilities over the {len(classes)} classes {classes}"
            )
    return LoadedModel(classifier, solo, spec, Path(path).resolve(), file_sha256(path), datetime.now(UTC))


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
    """What the engine made of one image: `model`'s result (`vision.inference`), or the reason there is none."""

    model: LoadedModel
    sha256: str
    result: Scored | None
    error: Refused | None
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage
    quality: ImageQuality | None = None

    @property
    def probabilities(self) -> np.ndarray | None:
        return None if self.result is None else self.result.probabilities

    @property
    def score(self) -> float:
        return self.result.score

    @property
    def verdict(self) -> str:
        return self.result.verdict

    @property
    def label(self) -> str:
        return self.result.label


@dataclass
class _Job:
    model: LoadedModel
    prepared: Prepared
    started: float  # when the request reached the engine
    queued: float  # when it was ready for inference
    deliver: Callable[[Outcome | Exception], None]


class MicroBatcher:
    """Images waiting together are inferred as one batch, one inference at a time, by the inference thread.

    Decode threads hand their images straight to this thread, which sends a batch when it is full,
    when nothing more is being decoded, or when its oldest image has waited `max_wait_s`; so a busy
    line fills batches while the previous one runs, and the event loop only hears of an image when
    its answer is ready. A lone image (nothing queued, nothing else being decoded, no inference
    running) is inferred at once by the thread that decoded it.
    """

    def __init__(self, max_batch_size: int, max_wait_s: float, metrics: Metrics) -> None:
        self.max_batch_size, self.max_wait_s, self.metrics = max_batch_size, max_wait_s, metrics
        self._changed = threading.Condition()  # guards everything below
        self.preparing = 0  # images being decoded: worth waiting for
        self._jobs: deque[_Job] = deque()
        self._busy = False  # an inference is running, batched or alone
        self._stopping = False
        self._batch_array = np.empty(0, np.float32)  # reused by every inference (they never overlap)
        self._thread = threading.Thread(target=self._run, name="lineinspect-infer", daemon=True)

    @property
    def depth(self) -> int:
        return len(self._jobs)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Infer what is queued, then end the thread."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if self._thread.is_alive():
            self._thread.join()

    def preparing_started(self) -> None:
        with self._changed:
            self.preparing += 1

    def prepared(self, job: _Job | None) -> None:
        """In a decode thread: infer `job`'s image now if it is alone, else queue it for the next batch
        (None: the image failed, its request has its error already)."""
        with self._changed:
            self.preparing -= 1
            alone = job is not None and job.prepared.x is not None and not (self.preparing or self._jobs or self._busy)
            if alone:
                self._busy = True
            elif job is not None and job.prepared.x is not None:
                self._jobs.append(job)
            self._changed.notify_all()
        if job is None:
            return
        if job.prepared.x is None:
            job.deliver(_outcome(job, None, 0.0, 0.0))
        elif alone:
            self._infer_then_release([job], alone=True)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._jobs and not self._stopping:
                    self._changed.wait()
                if not self._jobs:
                    return
                deadline = self._jobs[0].queued + self.max_wait_s
                while len(self._jobs) < self.max_batch_size and self.preparing and not self._stopping:
                    if not self._changed.wait(deadline - perf_counter()):
                        break
                while self._busy:  # a lone image is being inferred
                    self._changed.wait()
                jobs = [self._jobs.popleft() for _ in range(min(len(self._jobs), self.max_batch_size))]
                self._busy = True
            self._infer_then_release(jobs)

    def _infer_then_release(self, jobs: list[_Job], alone: bool = False) -> None:
        """Infer the jobs (each model its own batch, after a reload), let the next inference start, then deliver
        the outcomes (so that a camera's next image never finds this inference still running). A lone image
        never waited in the queue: its queue time is 0."""
        try:
            models = dict.fromkeys(j.model for j in jobs)
            results = [r for model in models for r in self._infer(jobs, model, alone)]
        finally:
            with self._changed:
                self._busy = False
                self._changed.notify_all()
        for job, result in results:
            job.deliver(result)

    def _infer(self, jobs: list[_Job], model: LoadedModel, alone: bool) -> list[tuple[_Job, Outcome | Exception]]:
        """Each job with its outcome, or with the exception that failed the batch (a 5xx for those requests,
        never the end of the inference thread)."""
        jobs = [j for j in jobs if j.model is model]
        started = perf_counter()
        try:
            xs = [j.prepared.x for j in jobs]
            session = model.solo if len(xs) == 1 else model.classifier
            results = infer(session, np.stack(xs, out=self._input(len(xs), xs[0].shape)))
            infer_s = perf_counter() - started
            outcomes = [
                _outcome(j, r, 0.0 if alone else started - j.queued, infer_s)
                for j, r in zip(jobs, results, strict=True)
            ]
        except Exception as exc:
            return [(j, exc) for j in jobs]
        self.metrics.batch_size.observe(len(jobs))
        for outcome in outcomes:
            self.metrics.observe_stages(outcome.timings)
        return list(zip(jobs, outcomes, strict=True))

    def _input(self, n: int, shape: tuple[int, ...]) -> np.ndarray:
        """The first n images of the reused batch array, made anew when a reloaded model's input size differs."""
        if self._batch_array.shape[1:] != shape:
            self._batch_array = np.empty((self.max_batch_size, *shape), np.float32)
        return self._batch_array[:n]


def _outcome(job: _Job, result: Scored | None, queue_s: float, infer_s: float) -> Outcome:
    prepared = job.prepared
    timings = {"decode": prepared.decode_s * 1e3, "preprocess": prepared.preprocess_s * 1e3}
    if result is None:
        return Outcome(job.model, prepared.sha256, None, prepared.error, timings)
    timings.update(queue=queue_s * 1e3, infer=infer_s * 1e3, total=(perf_counter() - job.started) * 1e3)
    return Outcome(job.model, prepared.sha256, result, None, timings, prepared.quality)


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
        """After the last request: no more decoding, then the inference thread ends."""
        await asyncio.to_thread(self._decode_pool.shutdown, wait=True)
        await asyncio.to_thread(self.batcher.stop)

    async def load(self, path: Path) -> LoadedModel:
        """Load, check and warm up off the event loop, then swap: requests already running keep the old model."""
        async with self._swap:
            model = await asyncio.to_thread(load_model, path, self.settings, self.max_pixels)
            self._install(model)
        return model

    def _install(self, model: LoadedModel) -> None:
        self.model = model  # one assignment: the swap is atomic
        self.metrics.set_model(model.name, model.version, model.sha256)

    async def inspect(self, data: bytes) -> Outcome:
        """Probabilities for one image's bytes, or the reason the image was refused."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def deliver(result: Outcome | Exception) -> None:  # from a decode or the inference thread
            if not loop.is_closed():  # closed: the service has stopped and nobody waits for this answer
                loop.call_soon_threadsafe(_settle, future, result)

        self.batcher.preparing_started()
        self._decode_pool.submit(self._prepare, data, self.model, perf_counter(), deliver)
        return await future

    def _prepare(self, data: bytes, model: LoadedModel, started: float, deliver: Callable) -> None:
        """In the decode pool: the image prepared, then handed to the batcher."""
        try:
            job = _Job(model, prepare(data, model.spec), started, perf_counter(), deliver)
        except Exception as exc:  # a fault, not a bad image: this request fails (5xx), the engine goes on
            job = None
            deliver(exc)
        self.batcher.prepared(job)


def _settle(future: asyncio.Future, result: Outcome | Exception) -> None:
    if future.done():  # its request was cancelled (the client went away)
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)
