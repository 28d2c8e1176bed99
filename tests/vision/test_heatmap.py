"""The exported heatmap: Grad-CAM of the defect class for every architecture, a second ONNX output beside unchanged
probabilities, and models exported before it still load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from annotation.errors import LineInspectError
from vision.metadata import METADATA_KEY, read_metadata
from vision.onnx_model import OnnxClassifier
from vision.predict import load_input
from vision.training.cam import WithHeatmap
from vision.training.export import export_run
from vision.training.models import ARCHITECTURES, COMPACT_CNN, PatchClassifier, build_model


def old_style(model: Path, out: Path) -> Path:
    """`model` as exported before heatmaps: only the probabilities output, no heatmap key in its metadata."""
    onnx.utils.extract_model(str(model), str(out), ["input"], ["probabilities"])
    meta = json.loads(read_metadata(model).model_dump_json(exclude={"heatmap_output"}))
    pruned = onnx.load(str(out))
    entry = pruned.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    onnx.save(pruned, str(out))
    return out


def _grad_cam(wrapped: WithHeatmap, x: torch.Tensor, defect: int) -> torch.Tensor:
    """Grad-CAM by autograd: feature maps weighted by d(logit_defect - logit_other) / d(pooled features)."""
    maps = wrapped.features(x).detach()
    pooled = torch.flatten(wrapped.pool(maps), 1).requires_grad_(True)
    logits = wrapped.head(pooled)
    (grad,) = torch.autograd.grad((logits[:, defect] - logits[:, 1 - defect]).sum(), pooled)
    return (grad[:, :, None, None] * maps).sum(dim=1)


@pytest.mark.parametrize("architecture", [COMPACT_CNN, *ARCHITECTURES])
def test_heatmap_is_grad_cam_of_the_defect_class_and_probabilities_are_unchanged(architecture):
    torch.manual_seed(0)
    model = build_model(architecture, 2, pretrained="none").eval()
    if architecture.startswith("mobilenet"):  # spread the hidden pre-activations over every piece of hardswish
        model.classifier[0].weight.data *= 20
    wrapped = WithHeatmap(model, defect_index=1).eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        probabilities, heatmap = wrapped(x)
        expected = torch.softmax(model.eval()(x), dim=1)
    assert torch.equal(probabilities, expected)
    reference = _grad_cam(wrapped, x, defect=1)
    assert heatmap.shape == reference.shape and heatmap.shape[0] == 3
    assert (heatmap - reference).abs().max() <= 1e-5 * reference.abs().max()


def test_average_pooled_linear_head_gives_exact_cam():
    """Map mean plus the bias difference is the logit difference: the map splits the decision over the image."""
    torch.manual_seed(0)
    model = build_model("resnet18", 2, pretrained="none").eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        logits = model(x)
        _, heatmap = WithHeatmap(model, defect_index=0).eval()(x)
    bias = model.fc.bias[0] - model.fc.bias[1]
    assert torch.allclose(heatmap.mean(dim=(1, 2)) + bias, logits[:, 0] - logits[:, 1], atol=1e-4)


def test_a_patch_heads_heatmap_is_its_patch_scores_and_the_image_score_their_maximum():
    torch.manual_seed(0)
    model = build_model("efficientnet_lite0", 2, pretrained="none", input_size=(96, 128), head="patches").eval()
    assert isinstance(model, PatchClassifier)
    x = torch.randn(3, 3, 96, 128)
    with torch.no_grad():
        probabilities, heatmap = WithHeatmap(model, defect_index=1).eval()(x)
        logits = model(x)
    assert heatmap.shape == (3, 12, 16)  # one score per 8x8-pixel patch
    assert torch.equal(probabilities, torch.softmax(logits, dim=1))
    # two classes: P(defect) = sigmoid(the mean of the 4 highest patch logits)
    top = heatmap.flatten(1).sort(dim=1, descending=True).values[:, :4].mean(dim=1)
    assert torch.allclose(probabilities[:, 1], torch.sigmoid(top), atol=1e-6)
    with pytest.raises(LineInspectError, match="patches needs an EfficientNet-Lite"):
        build_model("resnet18", 2, pretrained="none", head="patches")


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    data, run = tiny_run
    model = export_run(run, tmp_path_factory.mktemp("model") / "model.onnx", force=True).path  # one epoch
    return {"run": run, "model": model, "images": [s.path for s in data.images[:16]]}


def test_export_adds_a_heatmap_output_and_records_it(exported):
    graph = onnx.load(str(exported["model"])).graph
    assert [o.name for o in graph.output] == ["probabilities", "heatmap"]
    meta = read_metadata(exported["model"])
    assert meta.heatmap_output == "heatmap" and meta.output_name == "probabilities"
    assert meta.parity["max_abs_diff"] <= 1e-4 and meta.parity["heatmap_max_rel_diff"] <= 1e-3


def test_onnx_probabilities_match_torch_and_heatmaps_come_from_the_same_run(exported):
    classifier = OnnxClassifier(exported["model"])
    batch = np.stack([load_input(p, classifier.spec)[0] for p in exported["images"]])
    model = build_model("resnet18", 2, pretrained="none")
    model.load_state_dict(torch.load(exported["run"] / "best.pt", weights_only=True)["model"])
    wrapped = WithHeatmap(model, classifier.meta.defect_index).eval()
    with torch.no_grad():
        expected = torch.softmax(model.eval()(torch.from_numpy(batch)), dim=1).numpy()
        _, expected_maps = wrapped(torch.from_numpy(batch))
    probabilities, maps = classifier.predict_with_heatmaps(batch)
    assert np.abs(classifier.predict(batch) - expected).max() <= 1e-4
    assert np.array_equal(probabilities, classifier.predict(batch))
    assert maps.shape == (len(batch), 2, 2) and maps.dtype == np.float32  # 48 px / resnet stride 32
    assert np.abs(maps - expected_maps.numpy()).max() <= 1e-3 * np.abs(expected_maps.numpy()).max()


def test_a_model_exported_before_heatmaps_still_predicts_and_says_to_re_export(exported, tmp_path):
    old = OnnxClassifier(old_style(exported["model"], tmp_path / "old.onnx"))
    new = OnnxClassifier(exported["model"])
    batch = np.stack([load_input(p, new.spec)[0] for p in exported["images"]])
    assert old.meta.heatmap_output is None
    assert np.array_equal(old.predict(batch), new.predict(batch))
    with pytest.raises(LineInspectError, match="re-export"):
        old.predict_with_heatmaps(batch)
