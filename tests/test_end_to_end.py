"""The real chain on real data: export -> check -> train -> export ONNX -> evaluate -> inspect.

Label Studio exports (JSON, JSON-MIN, CSV) are built inside the test for
../shared/data/casting-impeller and ../shared/data/kolektorsdd-yolo; the CLI runs
as a user would run it, in a subprocess.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from annotation.export_writer import labelled_task, write_export
from annotation.exports import ImportOptions, load_exports
from vision.metadata import read_metadata
from vision.onnx_model import OnnxClassifier
from vision.preprocess import preprocess
from vision.training.models import build_model

LINEINSPECT = str(Path(sys.executable).parent / "lineinspect")
CASTING_LABELS = ["--normal-label", "ok_front", "--defect-label", "def_front"]
FAST = [
    "--set",
    "train.epochs=4",
    "--set",
    "train.workers=0",
    "--set",
    "model.architecture=resnet18",
    "--set",
    "model.pretrained=none",
    "--set",
    "input.height=64",
    "--set",
    "input.width=64",
]


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([LINEINSPECT, *map(str, args)], capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"lineinspect {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def casting(shared_data, tmp_path_factory) -> dict:
    """A 320-image subset of casting-impeller as three Label Studio exports of the same tasks."""
    root = shared_data / "casting-impeller" / "casting_data"
    out = tmp_path_factory.mktemp("casting")
    tasks = []
    for folder in ("def_front", "ok_front"):
        for path in sorted((root / "test" / folder).glob("*.jpeg"))[:160]:
            tasks.append(labelled_task(len(tasks) + 1, f"/data/local-files/?d={path.relative_to(root)}", folder))
    exports = {fmt: write_export(tasks, out / f"export.{fmt}", fmt) for fmt in ("json", "json-min", "csv")}
    return {"root": root, "out": out, "exports": exports, "n": len(tasks)}


@pytest.fixture(scope="module")
def casting_model(casting) -> dict:
    out = casting["out"]
    cli(
        "train",
        casting["exports"]["json"],
        "--images-root",
        casting["root"],
        "--out",
        out / "run",
        *FAST,
        *CASTING_LABELS,
    )
    exported = cli("export", out / "run", "--out", out / "model.onnx", "--miss-rate", "0.1", "--force")
    return {"run": out / "run", "model": out / "model.onnx", "export_log": exported.stderr}


def test_all_three_export_formats_give_the_same_manifest(casting):
    options = ImportOptions(images_root=casting["root"], normal_labels=("ok_front",), defect_labels=("def_front",))
    manifests = [load_exports([path], options) for path in casting["exports"].values()]
    assert all(len(m.items) == casting["n"] for m in manifests)
    assert len({m.fingerprint() for m in manifests}) == 1


@pytest.mark.parametrize("fmt", ["json", "json-min", "csv"])
def test_dataset_check_summarises_each_format(casting, fmt):
    result = cli("dataset", "check", casting["exports"][fmt], "--images-root", casting["root"], *CASTING_LABELS)
    assert "normal" in result.stdout and "defect" in result.stdout and "0 errors" in result.stdout


def test_dataset_check_exits_non_zero_on_errors(casting):
    # without the label mapping every label is unknown: errors, exit code 1
    result = cli("dataset", "check", casting["exports"]["json"], "--images-root", casting["root"], check=False)
    assert result.returncode == 1
    assert "unknown_label" in result.stdout


def test_training_writes_a_resumable_run(casting_model):
    run = casting_model["run"]
    for name in ("recipe.yaml", "split.json", "history.json", "best.pt", "last.pt"):
        assert (run / name).is_file(), name
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, len(history) + 1))


def test_exported_model_carries_its_metadata(casting, casting_model):
    meta = read_metadata(casting_model["model"])
    plan = json.loads((casting_model["run"] / "split.json").read_text())
    assert meta.classes == ["normal", "defect"] and meta.defect_class == "defect"
    assert (meta.input.height, meta.input.width, meta.input.color, meta.input.resize) == (64, 64, "rgb", "stretch")
    assert meta.training_data.fingerprint == plan["fingerprint"]
    assert sum(meta.training_data.counts["holdout"].values()) == sum(
        1 for i in plan["items"] if i["split"] == "holdout"
    )
    assert meta.operating_point["target_miss_rate"] == 0.1
    assert meta.threshold == meta.operating_point["threshold"]
    assert meta.metrics["n"] == sum(meta.training_data.counts["holdout"].values())
    assert meta.version != "unversioned" and meta.architecture == "resnet18"
    info = json.loads(cli("model", "info", casting_model["model"]).stdout)
    assert info == json.loads(meta.model_dump_json())


def test_export_parity_is_within_tolerance_and_independently_true(casting_model):
    meta = read_metadata(casting_model["model"])
    assert meta.parity["max_abs_diff"] <= 1e-4 and meta.parity["images"] > 0
    # check again here, on images of both classes, with the weights the run kept
    plan = json.loads((casting_model["run"] / "split.json").read_text())
    paths = [Path(i["path"]) for i in plan["items"]][::20]
    model = build_model("resnet18", 2, pretrained="none")
    model.load_state_dict(torch.load(casting_model["run"] / "best.pt", weights_only=True)["model"])
    classifier = OnnxClassifier(casting_model["model"])
    batch = np.stack([preprocess(p.read_bytes(), classifier.spec) for p in paths])
    with torch.no_grad():
        expected = torch.softmax(model.eval()(torch.from_numpy(batch)), dim=1).numpy()
    assert np.abs(expected - classifier.predict(batch)).max() <= 1e-4


def test_model_has_dynamic_batch(casting_model):
    classifier = OnnxClassifier(casting_model["model"])
    for n in (1, 7):
        assert classifier.predict(np.zeros((n, 3, 64, 64), np.float32)).shape == (n, 2)


def test_evaluate_writes_metrics_and_plots(casting, casting_model):
    out = casting["out"] / "eval"
    export = casting["exports"]["json-min"]
    shown = cli("evaluate", casting_model["model"], export, "--images-root", casting["root"], "--out", out,
                *CASTING_LABELS)  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == casting["n"]
    assert metrics["roc_auc"] > 0.6  # four short epochs at 64 px already separate the classes
    low, high = metrics["roc_auc_ci"]  # 95% bootstrap interval, shown by the CLI too
    assert low <= metrics["roc_auc"] <= high and f"(95% CI {low:.3f}-{high:.3f})" in " ".join(shown.stderr.split())
    assert set(metrics["per_class"]) == {"normal", "defect"}
    for name in ("roc.png", "pr.png", "confusion_matrix.png", "score_histogram.png", "predictions.csv"):
        assert (out / name).stat().st_size > 1000, name


def test_inspect_gives_one_row_per_image_and_errors_as_rows(casting, casting_model, tmp_path):
    folder = tmp_path / "line"
    folder.mkdir()
    for path in sorted((casting["root"] / "test" / "ok_front").glob("*.jpeg"))[:5]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "broken.jpeg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    out = tmp_path / "results.csv"
    cli("inspect", casting_model["model"], folder, casting["exports"]["csv"], "--out", out,
        "--images-root", casting["root"], *CASTING_LABELS)  # fmt: skip
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6 + casting["n"]
    broken = [r for r in rows if r["path"].endswith("broken.jpeg")]
    assert len(broken) == 1 and broken[0]["error"] and not broken[0]["score"]
    good = [r for r in rows if not r["error"]]
    meta = read_metadata(casting_model["model"])
    for row in good:
        assert row["verdict"] == ("defect" if float(row["score"]) >= meta.threshold else "normal")
        assert row["model_version"] == meta.version and row["label"] in meta.classes
    assert sum(1 for r in rows if r["true_label"]) == casting["n"]


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    result = cli("inspect", tmp_path / "missing.onnx", tmp_path, check=False)
    assert result.returncode == 2
    assert "model file not found" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def kolektor(shared_data, tmp_path_factory) -> dict:
    """KolektorSDD (500x1250 grayscale): a JSON export with plain relative paths."""
    root = shared_data / "kolektorsdd-yolo"
    out = tmp_path_factory.mktemp("kolektor")
    rows = list(csv.DictReader((root / "DERIVED_image_labels.csv").open()))
    tasks = [labelled_task(i + 1, row["image_path"], row["label"]) for i, row in enumerate(rows)]
    return {"root": root, "out": out, "export": write_export(tasks, out / "export.json"), "n": len(tasks)}


def test_kolektor_chain_with_gray_non_square_input(kolektor):
    out = kolektor["out"]
    cli("train", kolektor["export"], "--images-root", kolektor["root"], "--out", out / "run",
        "--set", "train.epochs=2", "--set", "train.workers=0", "--set", "input.height=160", "--set", "input.width=64",
        "--set", "input.color=gray")  # fmt: skip
    cli("export", out / "run", "--out", out / "model.onnx", "--force")  # two epochs: quality is not the point
    meta = read_metadata(out / "model.onnx")
    assert (meta.input.height, meta.input.width, meta.input.color) == (160, 64, "gray")
    assert meta.parity["max_abs_diff"] <= 1e-4
    assert meta.operating_point["target_miss_rate"] == 0.05  # from the default recipe
    cli("inspect", out / "model.onnx", kolektor["root"] / "Datasets" / "images", "--out", out / "results.csv")
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == kolektor["n"] and not any(r["error"] for r in rows)
