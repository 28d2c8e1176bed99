"""Pretrained backbones that work offline, the two-phase fine-tuning on real images, and the learned-nothing guard."""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from annotation.errors import LineInspectError
from annotation.export_writer import labelled_task, write_export
from annotation.exports import ImportOptions, load_exports
from vision.metadata import read_metadata
from vision.recipe import load_recipe
from vision.sample_data import generate
from vision.training.export import export_run
from vision.training.models import PatchClassifier, build_model, wheel_weights_path
from vision.training.train import train

LINEINSPECT = str(Path(sys.executable).parent / "lineinspect")
CASTING = {"normal_labels": ("ok_front",), "defect_labels": ("def_front",)}
SHORT = {"input.height": 128, "input.width": 128, "train.workers": 0, "train.epochs": 1}


def test_auto_loads_imagenet_weights_from_the_installed_wheel_without_network():
    path = wheel_weights_path("efficientnet_lite0")
    assert path is not None and path.is_file() and "site-packages" in str(path)
    model = build_model("efficientnet_lite0", 2, "auto", input_size=(96, 160))
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("_conv_stem.weight", "_blocks.15._project_conv.weight", "_conv_head.weight", "_bn1.running_var"):
        assert torch.equal(model.state_dict()[key], state[key]), key
    assert model.state_dict()["_fc.weight"].shape == (2, 1280)  # a fresh head for normal/defect
    with torch.no_grad():
        assert model.eval()(torch.zeros(3, 3, 96, 160)).shape == (3, 2)
    patches = build_model("efficientnet_lite0", 2, "auto", input_size=(96, 160), head="patches")
    assert isinstance(patches, PatchClassifier) and len(patches.blocks) == 11  # up to the last stride-16 block
    assert torch.equal(patches.state_dict()["blocks.10._project_conv.weight"], state["_blocks.10._project_conv.weight"])
    with torch.no_grad():
        assert patches.eval()(torch.zeros(3, 3, 96, 160)).shape == (3, 2)


def test_auto_without_weights_is_an_error_not_a_silent_scratch_run():
    with pytest.raises(LineInspectError, match="found no ImageNet weights for resnet18.*none trains from scratch"):
        build_model("resnet18", 2, "auto")


@pytest.fixture(scope="module")
def casting(shared_data, tmp_path_factory):
    """120 real casting photos (train folder), 60 per class."""
    root = shared_data / "casting-impeller" / "casting_data"
    tasks = []
    for folder in ("def_front", "ok_front"):
        for path in sorted((root / "train" / folder).glob("*.jpeg"))[:60]:
            tasks.append(labelled_task(len(tasks) + 1, f"/data/local-files/?d={path.relative_to(root)}", folder))
    export = write_export(tasks, tmp_path_factory.mktemp("casting") / "export.json")
    return load_exports([export], ImportOptions(images_root=root, **CASTING))


def test_frozen_head_then_fine_tuning_beat_chance_on_real_photos(casting, tmp_path):
    result = train(casting, load_recipe(None, SHORT), tmp_path / "run")
    frozen, tuned = result.history
    assert frozen["epoch"] == 0 and frozen["phase"] == "frozen head" and frozen["roc_auc_ci"][0] > 0.5
    # model.head auto: both heads fitted on the frozen features, the better on validation kept and fine-tuned
    assert set(frozen["heads"]) == {"patches", "pooled"} and frozen["heads"][frozen["head"]] == frozen["roc_auc"]
    assert frozen["roc_auc"] == max(frozen["heads"].values())
    assert frozen["head"] == tuned["head"]
    assert tuned["epoch"] == 1 and tuned["roc_auc"] > 0.5 and result.best_metric >= 0.85
    recipe = json.loads(json.dumps(load_recipe(tmp_path / "run" / "recipe.yaml").model_dump()))
    assert recipe["train"]["finetune"] == {"frozen_head": True, "unfreeze_blocks": 2}
    meta = read_metadata(export_run(tmp_path / "run", tmp_path / "model.onnx").path)
    assert meta.architecture == "efficientnet_lite0" and meta.parity["max_abs_diff"] <= 1e-4
    assert meta.metrics["roc_auc_ci"][0] > 0.5  # 18 holdout images: beyond chance is what they can show


@pytest.mark.parametrize(("head", "frozen", "trained_top"), [("patches", (7, 8), 10), ("pooled", (13, 14), 15)])
def test_only_the_top_blocks_change_in_phase_two(casting, tmp_path, head, frozen, trained_top):
    overrides = {**SHORT, "train.finetune.frozen_head": False, "model.head": head}
    train(casting, load_recipe(None, overrides), tmp_path / "run")
    trained = torch.load(tmp_path / "run" / "last.pt", weights_only=False)["model"]
    imagenet = torch.load(wheel_weights_path("efficientnet_lite0"), map_location="cpu", weights_only=True)
    block = "blocks.{}." if head == "patches" else "_blocks.{}."
    first, second = frozen  # unfreeze_blocks 2: these stay as ImageNet left them, the top one trains
    assert torch.equal(trained[block.format(first) + "_depthwise_conv.weight"],
                       imagenet[f"_blocks.{first}._depthwise_conv.weight"])  # fmt: skip
    assert torch.equal(
        trained[block.format(second) + "_bn2.running_mean"], imagenet[f"_blocks.{second}._bn2.running_mean"]
    )
    assert not torch.equal(trained[block.format(trained_top) + "_project_conv.weight"],
                           imagenet[f"_blocks.{trained_top}._project_conv.weight"])  # fmt: skip


@pytest.fixture(scope="module")
def shuffled(tmp_path_factory):
    """Sample data whose labels were shuffled: there is nothing to learn."""
    data = generate(tmp_path_factory.mktemp("sample"), n_normal=60, n_defect=60, size=(96, 96), seed=3)
    manifest = load_exports([data.export], ImportOptions(images_root=data.root))
    labels = [i.label for i in manifest.items]
    random.Random(0).shuffle(labels)
    items = [dataclasses.replace(i, label=label) for i, label in zip(manifest.items, labels, strict=True)]
    return dataclasses.replace(manifest, items=items)


def test_a_model_trained_on_shuffled_labels_is_refused_unless_forced(shuffled, tmp_path):
    overrides = {**SHORT, "input.height": 96, "input.width": 96, "train.finetune.unfreeze_blocks": 0}
    train(shuffled, load_recipe(None, overrides), tmp_path / "run")
    out = tmp_path / "model.onnx"
    with pytest.raises(LineInspectError, match="cannot be told from chance on the 18 holdout images.*--force"):
        export_run(tmp_path / "run", out)
    assert not out.exists()
    meta = read_metadata(export_run(tmp_path / "run", out, force=True).path)
    low, high = meta.metrics["roc_auc_ci"]
    assert low <= 0.5 <= high


def test_train_says_when_validation_cannot_be_told_from_chance(shuffled, tmp_path):
    export = tmp_path / "export.json"
    tasks = [labelled_task(n, i.path.name, i.label) for n, i in enumerate(shuffled.items, start=1)]
    write_export(tasks, export)
    result = subprocess.run(
        [LINEINSPECT, "train", str(export), "--images-root", str(shuffled.items[0].path.parent), "--out",
         str(tmp_path / "run"), "--set", "input.height=96", "--set", "input.width=96", "--set", "train.workers=0",
         "--set", "train.finetune.unfreeze_blocks=0"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stderr.split())
    assert "cannot be told from chance on the validation images" in text and "or method: anomaly" in text
    refused = subprocess.run([LINEINSPECT, "export", str(tmp_path / "run"), "--out", str(tmp_path / "m.onnx")],
                             capture_output=True, text=True, timeout=600)  # fmt: skip
    assert refused.returncode == 2 and "--force" in refused.stderr and "Traceback" not in refused.stderr
