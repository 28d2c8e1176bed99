"""`method: anomaly`: a memory bank of good parts' patch features, exported with its nearest-neighbour search."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import onnx
import pytest
import torch

from annotation.exports import ImportOptions, load_exports
from vision.metadata import read_metadata
from vision.onnx_model import OnnxClassifier
from vision.preprocess import preprocess
from vision.recipe import load_recipe
from vision.sample_data import generate
from vision.training.anomaly import _view, build_patchcore, greedy_coreset, views
from vision.training.export import export_run
from vision.training.train import train

SIZE = 128
ANOMALY = {"method": "anomaly", "input.height": SIZE, "input.width": SIZE, "anomaly.input_scale": 1,
           "train.workers": 0, "anomaly.memory_bank": 1024}  # fmt: skip
MARGIN = 16  # px around a defect box that still count as on it: one cell of the 8x8 map


def test_greedy_coreset_covers_every_cluster():
    torch.manual_seed(0)
    centres = torch.randn(5, 32) * 20
    points = torch.cat([c + torch.randn(200, 32) for c in centres])
    chosen = greedy_coreset(points, 5, projection=16, seed=0)
    assert sorted(set((chosen // 200).tolist())) == [0, 1, 2, 3, 4]  # one per cluster, none left out
    assert torch.equal(greedy_coreset(points, 5000, 16, 0), torch.arange(1000))


def test_the_bank_sees_the_views_the_recipe_augments_with():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    augment = [{"HorizontalFlip": {"p": 0.5}}, {"VerticalFlip": {"p": 0.5}}, {"RandomBrightnessContrast": {}}]
    flips = views(augment, (4, 4))
    shown = [_view(x, v) for v in flips]
    expected = [x, torch.flip(x, [3]), torch.flip(x, [2]), torch.flip(x, [2, 3])]
    assert len(shown) == 4 and all(any(torch.equal(s, e) for s in shown) for e in expected)
    d4 = [_view(x, v) for v in views([{"HorizontalFlip": {}}, {"RandomRotate90": {}}], (4, 4))]
    assert len({tuple(v.flatten().tolist()) for v in d4}) == 8  # every flip and turn of a square, once each
    assert any(torch.equal(v, x.transpose(2, 3)) for v in d4)
    assert views([{"RandomRotate90": {}}], (4, 6)) == [(False, 0)]  # a turn would change a non-square input's shape
    assert views([], (4, 4)) == [(False, 0)]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    data = generate(tmp_path_factory.mktemp("sample"), n_normal=140, n_defect=60, size=(SIZE, SIZE), seed=4,
                    textures=["brushed"])  # fmt: skip
    return data, load_exports([data.export], ImportOptions(images_root=data.root))


@pytest.fixture(scope="module")
def exported(sample, tmp_path_factory):
    _, manifest = sample
    work = tmp_path_factory.mktemp("anomaly")
    result = train(manifest, load_recipe(None, ANOMALY), work / "run")
    return {"run": work / "run", "result": result, "model": export_run(work / "run", work / "model.onnx").path}


def test_anomaly_model_exports_with_parity_and_finds_defects(exported):
    meta = read_metadata(exported["model"])
    assert meta.method == "anomaly" and meta.architecture == "efficientnet_lite0"
    assert meta.parity["max_abs_diff"] <= 1e-4 and meta.parity["heatmap_max_rel_diff"] <= 1e-3
    assert exported["result"].history[0]["phase"] == "memory bank"
    assert meta.metrics["roc_auc"] >= 0.75 and meta.metrics["roc_auc_ci"][0] > 0.5  # holdout: unseen by the bank
    assert meta.operating_point["target_miss_rate"] == 0.05  # labelled defects: the miss-rate rule
    graph = onnx.load(str(exported["model"])).graph
    assert [o.name for o in graph.output] == ["probabilities", "heatmap"]
    # the nearest-neighbour search runs inside the graph: the bank (472 features of 1024 patches: 40 + 112 + 320
    # channels at strides 8, 16, 32) is in it
    assert any(sorted(i.dims) == [472, 1024] for i in graph.initializer)


def test_the_anomaly_map_peaks_on_the_defect(sample, exported):
    """Of the defects the model flags, the map's peak lies on the drawn defect in most: a random peak would land
    within MARGIN of a box about 15% of the time (some drawn defects are too faint to see, by design)."""
    data, _ = sample
    classifier = OnnxClassifier(exported["model"])
    flagged = hits = 0
    for image in [s for s in data.images if s.label == "defect"]:
        x = preprocess(image.path.read_bytes(), classifier.spec)[None]
        probabilities, maps = classifier.predict_with_heatmaps(x)
        assert probabilities.shape == (1, 2) and maps.shape == (1, SIZE // 16, SIZE // 16)
        if probabilities[0, 1] < classifier.threshold:
            continue
        flagged += 1
        row, col = np.unravel_index(np.argmax(cv2.resize(maps[0], (SIZE, SIZE))), (SIZE, SIZE))
        hits += any(x0 - MARGIN <= col < x1 + MARGIN and y0 - MARGIN <= row < y1 + MARGIN
                    for x0, y0, x1, y1 in (d.box for d in image.defects))  # fmt: skip
    assert flagged >= 30 and hits >= 0.55 * flagged


def test_the_anomaly_map_is_the_onnx_graphs_own_nearest_neighbour_distance(exported):
    """The exported map equals a brute-force search of the bank, done here in NumPy on the standardised features
    (less the good parts' floor)."""
    recipe = load_recipe(exported["run"] / "recipe.yaml")
    state = torch.load(exported["run"] / "best.pt", weights_only=True)["model"]
    model = build_patchcore(recipe, ["normal", "defect"], tuple(state["bank"].shape))
    model.load_state_dict(state)
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        patches = ((model.features(x).flatten(2).transpose(1, 2) - state["center"]) / state["spread"]).numpy()
    assert state["spread"].min() > 0 and state["center"].abs().max() > 0  # set from the good parts, not left as built
    bank = state["bank"].numpy().astype(np.float64)
    brute = np.sqrt(((patches[..., None, :] - bank) ** 2).sum(-1).min(-1)).reshape(2, SIZE // 16, SIZE // 16)
    _, maps = OnnxClassifier(exported["model"]).predict_with_heatmaps(x.numpy())
    assert np.abs(maps + state["floor"].item() - brute).max() <= 1e-3 * brute.max()


def test_good_parts_only_calibrates_for_a_false_reject_rate(sample, tmp_path):
    _, manifest = sample
    goods = dataclasses.replace(manifest, items=[i for i in manifest.items if i.label == "normal"])
    train(goods, load_recipe(None, {**ANOMALY, "calibration.false_reject_rate": 0.05}), tmp_path / "run")
    meta = read_metadata(export_run(tmp_path / "run", tmp_path / "model.onnx").path)
    point = meta.operating_point
    assert point["n_defect"] == 0 and point["target_false_reject_rate"] == 0.05 and point["target_miss_rate"] is None
    assert "good parts only" in point["note"]
    # 21 held-out good parts cannot support 5% (59 are needed): the threshold sits above every one of them
    assert point["supported"] is False and point["false_rejects"] == 0 and "59" in point["note"]
    assert meta.metrics["roc_auc"] is None
