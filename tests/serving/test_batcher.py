"""The micro-batcher on its own, in-process: when it infers at once, when it batches, what it waits for, and
what a failure or a stop does. The model is a real exported ONNX model in ONNX Runtime; each session is
wrapped in a `Gate` that records the batches it is given and can hold an inference open, so the tests
decide what is queued while an inference runs instead of hoping a race lands one way."""

from __future__ import annotations

import dataclasses
import threading
from time import perf_counter, sleep

import numpy as np
import pytest

from serving.engine import LoadedModel, MicroBatcher, Outcome, _Job, load_model, prepare
from serving.metrics import Metrics
from serving.settings import EngineSettings

WAIT = 10  # seconds a test waits for something that should take milliseconds


class Gate:
    """A real ONNX session that records each batch's size and thread and, while closed, holds inferences."""

    def __init__(self, session) -> None:
        self.session, self.meta = session, session.meta  # `vision.inference.infer` reads the model's classes
        self.batches: list[tuple[int, str]] = []
        self.open = threading.Event()
        self.open.set()
        self.entered = threading.Semaphore(0)
        self.fail = False

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.batches.append((len(x), threading.current_thread().name))
        self.entered.release()
        assert self.open.wait(WAIT), "the test never opened the gate"
        if self.fail:
            raise RuntimeError("inference failed")
        return self.session.predict(x)


class Answers:
    """What the batcher delivers, by job number."""

    def __init__(self) -> None:
        self.got: dict[int, Outcome | Exception] = {}
        self._changed = threading.Condition()

    def deliver(self, n: int):
        def put(result: Outcome | Exception) -> None:
            with self._changed:
                self.got[n] = result
                self._changed.notify_all()

        return put

    def wait(self, count: int) -> dict[int, Outcome | Exception]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.got) >= count, WAIT), f"{len(self.got)} of {count} answers"
        return self.got


@pytest.fixture(scope="module")
def served(models, casting_images) -> tuple[LoadedModel, list, np.ndarray]:
    """The model, eight prepared images and what the model answers for each alone."""
    model = load_model(models["model"], EngineSettings(intra_op_threads=2), 10**7)
    paths = casting_images["defect"][:4] + casting_images["normal"][:4]
    prepared = [prepare(p.read_bytes(), model.spec) for p in paths]
    alone = np.concatenate([model.solo.predict(p.x[None]) for p in prepared])
    return model, prepared, alone


@pytest.fixture()
def gated(served) -> LoadedModel:
    model = served[0]
    return dataclasses.replace(model, classifier=Gate(model.classifier), solo=Gate(model.solo))


def _batcher(max_batch: int = 4, max_wait_s: float = WAIT) -> MicroBatcher:
    batcher = MicroBatcher(max_batch, max_wait_s, Metrics())
    batcher.start()
    return batcher


def _submit(batcher: MicroBatcher, model: LoadedModel, prepared, n: int, answers: Answers) -> None:
    """What a request does: image `n` starts being decoded, then its decode thread hands it over prepared."""
    batcher.preparing_started()
    batcher.prepared(_Job(model, prepared, perf_counter(), perf_counter(), answers.deliver(n)))


def _hold_a_lone_inference(batcher: MicroBatcher, gated: LoadedModel, prepared, answers: Answers) -> threading.Thread:
    """Image 0 sent alone and held in its inference (until `gated.solo.open` is set): what follows queues."""
    gated.solo.open.clear()
    alone = threading.Thread(target=_submit, args=(batcher, gated, prepared[0], 0, answers))
    alone.start()
    assert gated.solo.entered.acquire(timeout=WAIT)
    return alone


def test_a_lone_image_is_inferred_at_once_by_the_thread_that_decoded_it(served, gated):
    model, prepared, alone = served
    batcher, answers = _batcher(), Answers()
    _submit(batcher, gated, prepared[0], 0, answers)
    outcome = answers.wait(1)[0]
    assert gated.solo.batches == [(1, threading.current_thread().name)] and gated.classifier.batches == []
    assert outcome.timings["queue"] == 0.0
    np.testing.assert_allclose(outcome.probabilities, alone[0], atol=1e-6)
    batcher.stop()


def test_images_that_arrive_during_an_inference_are_inferred_together(served, gated):
    model, prepared, alone = served
    batcher, answers = _batcher(max_batch=4), Answers()
    runs_alone = _hold_a_lone_inference(batcher, gated, prepared, answers)
    for n in range(1, 7):
        _submit(batcher, gated, prepared[n], n, answers)
    assert batcher.depth == 6 and gated.classifier.batches == []  # they wait for the running inference
    gated.solo.open.set()
    got = answers.wait(7)
    runs_alone.join()
    assert [size for size, _ in gated.classifier.batches] == [4, 2]  # max_batch_size, then the rest
    assert {thread for _, thread in gated.classifier.batches} == {"lineinspect-infer"}
    for n in range(7):
        np.testing.assert_allclose(got[n].probabilities, alone[n], atol=1e-5)
    assert all(got[n].timings["queue"] > 0 for n in range(1, 7))
    batcher.stop()


def test_a_batch_waits_for_images_still_being_decoded_but_not_past_max_wait(served, gated):
    _, prepared, _ = served
    batcher, answers = _batcher(max_batch=8, max_wait_s=0.3), Answers()
    _hold_a_lone_inference(batcher, gated, prepared, answers)
    _submit(batcher, gated, prepared[1], 1, answers)
    batcher.preparing_started()  # image 2 is "being decoded" and never arrives
    started = perf_counter()
    gated.solo.open.set()
    answers.wait(2)
    waited = perf_counter() - started
    assert gated.classifier.batches == [] and gated.solo.batches[1][0] == 1  # image 1 went alone...
    assert 0.2 < waited < 2.0  # ...after waiting about max_wait_s (0.3 s) for image 2, not for ever
    batcher.stop()


def test_an_image_that_failed_to_decode_is_not_waited_for(served, gated):
    _, prepared, _ = served
    batcher, answers = _batcher(max_batch=8, max_wait_s=WAIT), Answers()
    _hold_a_lone_inference(batcher, gated, prepared, answers)
    _submit(batcher, gated, prepared[1], 1, answers)
    batcher.preparing_started()
    batcher.prepared(None)  # its decode failed: its request has its error already
    started = perf_counter()
    gated.solo.open.set()
    answers.wait(2)
    assert perf_counter() - started < WAIT / 2 and batcher.preparing == 0
    batcher.stop()


def test_a_failed_inference_fails_its_requests_and_the_next_batch_is_served(served, gated):
    _, prepared, alone = served
    batcher, answers = _batcher(), Answers()
    gated.solo.fail = True
    _submit(batcher, gated, prepared[0], 0, answers)
    assert isinstance(answers.wait(1)[0], RuntimeError)
    gated.solo.fail = False
    _submit(batcher, gated, prepared[1], 1, answers)
    np.testing.assert_allclose(answers.wait(2)[1].probabilities, alone[1], atol=1e-6)
    batcher.stop()


def test_jobs_of_a_reloaded_model_are_inferred_by_their_own_model(served, gated):
    model, prepared, alone = served
    other = dataclasses.replace(model, classifier=Gate(model.classifier), solo=Gate(model.solo))
    batcher, answers = _batcher(max_batch=8), Answers()
    _hold_a_lone_inference(batcher, gated, prepared, answers)
    for n, owner in enumerate((gated, other, gated, other), start=1):
        _submit(batcher, owner, prepared[n], n, answers)
    gated.solo.open.set()
    got = answers.wait(5)
    assert [size for size, _ in gated.classifier.batches] == [2]
    assert [size for size, _ in other.classifier.batches] == [2]
    assert [got[n].model for n in range(1, 5)] == [gated, other, gated, other]
    for n in range(5):
        np.testing.assert_allclose(got[n].probabilities, alone[n], atol=1e-5)
    batcher.stop()


def test_stop_infers_what_is_queued_first(served, gated):
    _, prepared, _ = served
    batcher, answers = _batcher(max_batch=8), Answers()
    _hold_a_lone_inference(batcher, gated, prepared, answers)
    for n in (1, 2, 3):
        _submit(batcher, gated, prepared[n], n, answers)
    stopping = threading.Thread(target=batcher.stop)
    stopping.start()
    sleep(0.05)
    gated.solo.open.set()
    stopping.join(WAIT)
    assert not stopping.is_alive()
    got = answers.wait(4)
    assert all(isinstance(got[n], Outcome) for n in range(4))
    assert [size for size, _ in gated.classifier.batches] == [3]
