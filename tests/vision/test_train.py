"""Training behaviour on the built-in sample data: seeded, resumable after a kill, early-stopped."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from annotation.errors import LineInspectError
from annotation.exports import ImportOptions, load_exports
from serving.demo import DEMO_RECIPE
from vision.recipe import load_recipe
from vision.sample_data import generate
from vision.training.train import train

LINEINSPECT = str(Path(sys.executable).parent / "lineinspect")
TINY = {
    "model.architecture": "resnet18",
    "model.pretrained": "none",
    "input.height": 48,
    "input.width": 48,
    "train.batch_size": 16,
    "train.workers": 0,
}


# compact_cnn from scratch on the demo's augmentations: a six-epoch run that learns the sample data's small defects
COMPACT = {
    "model.architecture": "compact_cnn",
    "model.pretrained": "none",
    "train.epochs": 6,
    "train.lr": 0.002,
    "train.workers": 0,
    "train.early_stopping.patience": 6,
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    data = generate(tmp_path_factory.mktemp("sample"), n_normal=40, n_defect=40, size=(96, 96), seed=0)
    return data, load_exports([data.export], ImportOptions(images_root=data.root))


def _weights(run: Path, name: str = "last.pt") -> dict:
    return torch.load(run / name, weights_only=False)["model"]


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_gives_identical_weights(sample, tmp_path):
    _, manifest = sample
    recipe = load_recipe(None, {**TINY, "train.epochs": 1})
    train(manifest, recipe, tmp_path / "a")
    train(manifest, recipe, tmp_path / "b")
    assert _same(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    other = load_recipe(None, {**TINY, "train.epochs": 1, "train.seed": 1})
    train(manifest, other, tmp_path / "c")
    assert not _same(_weights(tmp_path / "a"), _weights(tmp_path / "c"))


def test_a_run_killed_mid_training_resumes_to_the_same_weights(sample, tmp_path):
    data, manifest = sample
    overrides = {**TINY, "train.epochs": 3, "train.early_stopping.patience": 10}
    train(manifest, load_recipe(None, overrides), tmp_path / "straight")

    run = tmp_path / "killed"
    args = [LINEINSPECT, "train", data.export, "--images-root", data.root, "--out", run]
    args += [a for k, v in overrides.items() for a in ("--set", f"{k}={v}")]
    proc = subprocess.Popen(list(map(str, args)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (run / "history.json").exists() or len(json.loads((run / "history.json").read_text() or "[]")) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, "training ended before it could be killed"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert torch.load(run / "last.pt", weights_only=False)["state"]["epoch"] == 2

    subprocess.run(list(map(str, args + ["--resume"])), check=True, capture_output=True)
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert _same(_weights(run), _weights(tmp_path / "straight"))


def test_a_finished_run_folder_is_not_overwritten_without_resume(sample, tmp_path):
    _, manifest = sample
    recipe = load_recipe(None, {**TINY, "train.epochs": 1})
    train(manifest, recipe, tmp_path / "run")
    with pytest.raises(LineInspectError, match="--resume"):
        train(manifest, recipe, tmp_path / "run")


def test_resume_refuses_different_data(sample, tmp_path):
    _, manifest = sample
    recipe = load_recipe(None, {**TINY, "train.epochs": 1})
    train(manifest, recipe, tmp_path / "run")
    fewer = dataclasses.replace(manifest, items=manifest.items[:-1])
    with pytest.raises(LineInspectError, match="fingerprint"):
        train(fewer, recipe, tmp_path / "run", resume=True)


def test_early_stopping_stops_when_validation_stops_improving(sample, tmp_path):
    _, manifest = sample
    recipe = load_recipe(None, {**TINY, "train.epochs": 30, "train.lr": 1e-9, "train.early_stopping.patience": 2})
    result = train(manifest, recipe, tmp_path / "run")
    assert result.epochs_run < 30
    assert result.epochs_run - result.best_epoch == 2


def test_a_class_missing_from_training_is_a_clear_error(sample, tmp_path):
    _, manifest = sample
    normal_only = dataclasses.replace(manifest, items=[i for i in manifest.items if i.label == "normal"])
    with pytest.raises(LineInspectError, match="no defect images"):
        train(normal_only, load_recipe(None, TINY), tmp_path / "run")


def test_sampler_imbalance_mode_trains(sample, tmp_path):
    _, manifest = sample
    recipe = load_recipe(None, {**TINY, "train.epochs": 1, "train.imbalance": "sampler"})
    assert train(manifest, recipe, tmp_path / "run").epochs_run == 1


def test_compact_cnn_learns_small_defects_from_scratch_and_exports_with_parity(tmp_path):
    """The project's own small network: from scratch, a few epochs, well above chance on unseen images."""
    from vision.metadata import read_metadata
    from vision.training.export import export_run

    data = generate(tmp_path / "data", n_normal=300, n_defect=300, size=(128, 128), seed=5, textures=["brushed"])
    manifest = load_exports([data.export], ImportOptions(images_root=data.root))
    recipe = load_recipe(DEMO_RECIPE, {**COMPACT, "input.height": 128, "input.width": 128})
    result = train(manifest, recipe, tmp_path / "run")
    assert result.best_metric >= 0.85  # validation ROC-AUC; chance is 0.5
    exported = export_run(tmp_path / "run", tmp_path / "model.onnx")
    meta = read_metadata(exported.path)
    assert meta.architecture == "compact_cnn" and meta.parity["max_abs_diff"] <= 1e-4
    assert meta.metrics["roc_auc"] >= 0.8


def test_train_warns_when_its_splits_are_too_small_and_says_what_would_do(tmp_path):
    """A 10-image export splits 6/2/2: training runs, and says the validation and holdout splits are too small."""
    data = generate(tmp_path / "ten", n_normal=5, n_defect=5, size=(64, 64), seed=0)
    args = [LINEINSPECT, "train", data.export, "--images-root", data.root, "--out", tmp_path / "run"]
    args += [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
    result = subprocess.run(list(map(str, args)), capture_output=True, text=True, env={**os.environ, "COLUMNS": "400"})
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stderr.split())
    assert "6 train / 2 val / 2 holdout images" in said
    for label in ("normal", "defect"):
        assert f"warning: the validation split holds 1 {label} image: too few to tell epochs apart" in said
    assert "the holdout split holds 1 defect: too few to calibrate" in said and "(it needs 59)" in said
    assert "about 394 labelled defects in all at data.holdout_fraction 0.15 would do" in said
