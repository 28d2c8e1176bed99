"""`lineinspect inspect --heatmaps DIR`: overlays on the original images, centred on the defect where the model saw it.

A compact CNN trained from scratch on rendered sample images (about a minute on 2 CPU cores) inspects
fresh rendered images whose defect boxes are known; each overlay is read back from its PNG.
"""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

import serving.batch.run as run_module
from annotation.errors import LineInspectError
from annotation.exports import ImportOptions, load_exports
from serving.batch.heatmaps import ALPHA, HeatmapWriter, heatmap_file, on_image
from serving.batch.output import read_rows
from serving.batch.run import inspect_paths
from serving.demo import DEMO_RECIPE
from tests.serving.conftest import cli
from tests.vision.test_heatmap import old_style
from tests.vision.test_train import COMPACT
from vision.metadata import write_metadata
from vision.onnx_model import OnnxClassifier
from vision.preprocess import PreprocessSpec, preprocess
from vision.recipe import load_recipe
from vision.sample_data import generate
from vision.training.export import export_run
from vision.training.train import train

SIZE = 96
MARGIN = 8  # px around a defect box that still count as on it: half a cell of the 6x6 feature map


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    work = tmp_path_factory.mktemp("heatmap-model")
    data = generate(work / "data", n_normal=200, n_defect=200, size=(SIZE, SIZE), seed=5, textures=["brushed"])
    manifest = load_exports([data.export], ImportOptions(images_root=data.root))
    train(manifest, load_recipe(DEMO_RECIPE, {**COMPACT, "input.height": SIZE, "input.width": SIZE}), work / "run")
    return export_run(work / "run", work / "model.onnx", force=True).path


@pytest.fixture(scope="module")
def line(tmp_path_factory):
    """Fresh rendered images (60 defect, 20 normal) and their defect boxes by file name."""
    data = generate(tmp_path_factory.mktemp("line"), n_normal=20, n_defect=60, size=(SIZE, SIZE), seed=11,
                    textures=["brushed"])  # fmt: skip
    return data.root / "images", {s.path.name: [d.box for d in s.defects] for s in data.images}


@pytest.fixture(scope="module")
def inspected(model, line, tmp_path_factory):
    """One default `--heatmaps` run over the rendered images."""
    out = tmp_path_factory.mktemp("inspected")
    cli("inspect", model, line[0], "--out", out / "rows.csv", "--heatmaps", out / "heatmaps")
    return read_rows(out / "rows.csv"), out / "heatmaps"


def heat_from_overlay(overlay: np.ndarray, original: np.ndarray) -> np.ndarray:
    """The 0..255 heat an overlay PNG shows: unblend the original, then the nearest JET colour."""
    colours = ((overlay.astype(np.float32) - (1 - ALPHA) * original) / ALPHA).reshape(-1, 3)
    jet = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_JET)[:, 0].astype(np.float32)
    distances = (jet**2).sum(axis=1) - 2 * colours @ jet.T  # squared distance, less |colour|^2 (same for all)
    return distances.argmin(axis=1).reshape(overlay.shape[:2])


def near(boxes: list) -> np.ndarray:
    """The pixels that count as on a defect: in a box or within MARGIN of it."""
    mask = np.zeros((SIZE, SIZE), bool)
    for x0, y0, x1, y1 in boxes:
        mask[max(0, y0 - MARGIN) : y1 + MARGIN, max(0, x0 - MARGIN) : x1 + MARGIN] = True
    return mask


def test_heatmap_peaks_lie_on_the_rendered_defects(inspected, line):
    rows, folder = inspected
    _, boxes = line
    on_defect, at_centre, by_chance, drawn = 0, 0, 0.0, 0
    for i, row in enumerate(rows):
        name = row["path"].rsplit("/", 1)[-1]
        if not boxes[name] or row["verdict"] != "defect":
            continue
        original = cv2.imread(row["path"])
        heat = heat_from_overlay(cv2.imread(str(heatmap_file(folder, i, row["path"]))), original)
        y, x = np.unravel_index(np.argmax(heat), heat.shape)
        on = near(boxes[name])
        on_defect += int(on[y, x])
        at_centre += int(on[SIZE // 2, SIZE // 2])
        by_chance += float(on.mean())  # a uniformly random point
        drawn += 1
    assert drawn >= 50  # of the 60 defect images, the flagged ones have a heatmap
    # measured: 44 of 59 peaks (75%) within 8 px of a box; the image centre is for 22 (37%), a random point 19%
    assert on_defect / drawn >= 0.65
    assert on_defect >= 1.5 * at_centre and on_defect >= 2.5 * by_chance


def test_by_default_heatmaps_are_written_for_defect_verdicts_only(model, line, tmp_path):
    """The model's threshold is moved to the middle of its own scores on these images, so that both verdicts
    occur however the short training run landed on this machine."""
    classifier = OnnxClassifier(model)
    paths = sorted(line[0].rglob("*.jpg"))
    scores = np.unique(classifier.predict(np.stack([preprocess(p.read_bytes(), classifier.spec) for p in paths]))[
        :, classifier.meta.defect_index])  # fmt: skip
    assert len(scores) >= 2, "the model gives every image the same score"
    middle = model.parent / "middle-threshold.onnx"
    if not middle.exists():
        shutil.copy(model, middle)
        k = len(scores) // 2
        write_metadata(middle, classifier.meta.model_copy(update={"threshold": float(scores[k - 1] + scores[k]) / 2}))
    cli("inspect", middle, line[0], "--out", tmp_path / "rows.csv", "--heatmaps", tmp_path / "maps")
    rows = read_rows(tmp_path / "rows.csv")
    expected = {heatmap_file(tmp_path / "maps", i, r["path"]) for i, r in enumerate(rows) if r["verdict"] == "defect"}
    assert 0 < len(expected) < len(rows)
    assert set((tmp_path / "maps").iterdir()) == expected


def test_heatmaps_for_all_covers_every_readable_image_at_its_own_size(model, line, tmp_path):
    folder = tmp_path / "images"
    shutil.copytree(line[0] / "normal", folder)
    (folder / "broken.jpg").write_bytes(b"not an image")
    wide = cv2.resize(cv2.imread(str(folder / "normal_0000.jpg")), (160, 90))
    cv2.imwrite(str(folder / "wide.png"), wide)
    cli("inspect", model, folder, "--out", tmp_path / "rows.jsonl", "--heatmaps", tmp_path / "maps",
        "--heatmaps-for", "all")  # fmt: skip
    rows = read_rows(tmp_path / "rows.jsonl")
    readable = {i: r for i, r in enumerate(rows) if r["error"] is None}
    assert len(readable) == len(rows) - 1
    assert set((tmp_path / "maps").iterdir()) == {
        heatmap_file(tmp_path / "maps", i, r["path"]) for i, r in readable.items()
    }
    for i, row in readable.items():
        overlay = cv2.imread(str(heatmap_file(tmp_path / "maps", i, row["path"])))
        assert overlay.shape == cv2.imread(row["path"]).shape
    assert not list((tmp_path / "maps").glob("*.tmp"))


def test_letterboxed_heatmap_is_placed_over_the_original_not_the_bars():
    spec = PreprocessSpec(height=64, width=64, resize="letterbox")  # a 200x100 image fills rows 16..48 of the input
    heatmap = np.zeros((4, 4), np.float32)
    heatmap[1, 3] = 1.0  # input rows 16..32, columns 48..64: the original's top right quarter
    weights = on_image(heatmap, 100, 200, spec)
    assert weights.shape == (100, 200) and weights.max() == 1.0
    y, x = np.unravel_index(np.argmax(weights), weights.shape)
    assert y < 50 and x >= 150


def test_a_model_exported_before_heatmaps_is_a_clear_cli_error(model, line, tmp_path):
    old = old_style(model, tmp_path / "old.onnx")
    result = cli("inspect", old, line[0], "--out", tmp_path / "rows.csv", "--heatmaps", tmp_path / "maps", check=False)
    assert result.returncode != 0
    assert "has no heatmap output" in result.stderr and "re-export" in result.stderr
    assert not (tmp_path / "rows.csv").exists()
    cli("inspect", old, line[0], "--out", tmp_path / "rows.csv")  # without --heatmaps it serves as before
    assert len(read_rows(tmp_path / "rows.csv")) == 80


def test_a_resumed_run_writes_the_heatmaps_the_interrupted_run_did_not(model, line, tmp_path, monkeypatch):
    classifier = OnnxClassifier(model)
    inputs = [(p, "") for p in sorted(line[0].rglob("*.jpg"))]
    out, folder = tmp_path / "rows.csv", tmp_path / "maps"
    real_chunk_rows, calls = run_module.chunk_rows, []

    def interrupted_on_the_third_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_chunk_rows(*args, **kwargs)

    monkeypatch.setattr(run_module, "chunk_rows", interrupted_on_the_third_chunk)
    with pytest.raises(LineInspectError, match="interrupted after 16 of 80"):
        inspect_paths(classifier, inputs, out, batch_size=8, workers=1)  # without --heatmaps
    monkeypatch.setattr(run_module, "chunk_rows", real_chunk_rows)
    writer = HeatmapWriter(folder, classifier, "all")
    inspect_paths(classifier, inputs, out, batch_size=8, workers=1, resume=True, heatmaps=writer)
    rows = read_rows(out)
    assert len(rows) == 80 and writer.written == 80
    assert set(folder.iterdir()) == {heatmap_file(folder, i, r["path"]) for i, r in enumerate(rows)}
