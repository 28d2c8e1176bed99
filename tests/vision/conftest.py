"""Fixtures shared by the vision tests."""

from __future__ import annotations

import pytest

from annotation.exports import ImportOptions, load_exports
from vision.recipe import load_recipe
from vision.sample_data import SampleDataset, generate
from vision.training.train import train

# resnet18 from scratch at 48 px for one epoch: a real run in seconds, for tests of what surrounds a model
TINY = {
    "model.architecture": "resnet18",
    "model.pretrained": "none",
    "input.height": 48,
    "input.width": 48,
    "train.workers": 0,
    "train.epochs": 1,
}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> tuple[SampleDataset, object]:
    """A TINY run on 80 sample images (its folder is read only by the tests): (the data, the run folder)."""
    data = generate(tmp_path_factory.mktemp("sample"), n_normal=40, n_defect=40, size=(96, 96), seed=2)
    manifest = load_exports([data.export], ImportOptions(images_root=data.root))
    out = tmp_path_factory.mktemp("tiny-run") / "run"
    train(manifest, load_recipe(None, TINY), out)
    return data, out
