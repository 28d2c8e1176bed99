"""`lineinspect bench accuracy`: one short reference run per data set (casting-impeller, KolektorSDD, the sample
data), both methods, the table written. The full-size figures are README's (`bench accuracy` without --set)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from annotation.export_writer import labelled_task, write_export
from vision.sample_data import generate

LINEINSPECT = str(Path(sys.executable).parent / "lineinspect")
SHORT = ["--set", "input.height=160", "--set", "input.width=160", "--set", "train.epochs=1",
         "--set", "train.workers=0", "--set", "anomaly.memory_bank=1024"]  # fmt: skip


@pytest.fixture(scope="module")
def datasets(shared_data, tmp_path_factory) -> list[str]:
    work = tmp_path_factory.mktemp("bench-data")
    casting = work / "casting"  # 80 + 80 photos of the test folder, sorted into label folders
    for folder in ("def_front", "ok_front"):
        (casting / folder).mkdir(parents=True)
        for path in sorted((shared_data / "casting-impeller" / "casting_data" / "test" / folder).glob("*.jpeg"))[:80]:
            shutil.copy(path, casting / folder / path.name)
    root = shared_data / "kolektorsdd-yolo"
    rows = list(csv.DictReader((root / "DERIVED_image_labels.csv").open()))
    kolektor = write_export([labelled_task(i + 1, r["image_path"], r["label"]) for i, r in enumerate(rows)],
                            work / "kolektor.json")  # fmt: skip
    sample = generate(work / "sample", n_normal=80, n_defect=80, size=(160, 160), seed=11)
    return [f"casting={casting}", f"kolektor={kolektor}@{root}", f"sample={sample.root / 'images'}"]


def test_bench_accuracy_writes_a_table_for_every_data_set_and_method(datasets, tmp_path):
    out = tmp_path / "bench"
    result = subprocess.run(
        [LINEINSPECT, "bench", "accuracy", *datasets, "--out", str(out), *SHORT,
         "--normal-label", "normal", "--normal-label", "ok_front", "--defect-label", "defect",
         "--defect-label", "def_front"],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads((out / "accuracy.json").read_text())
    assert [(r["dataset"], r["method"]) for r in rows] == [
        (d, m) for d in ("casting", "kolektor", "sample") for m in ("classifier", "anomaly")
    ]
    by = {(r["dataset"], r["method"]): r for r in rows}
    # KolektorSDD's 500x1250 strips get the 160x160 pixel budget shaped to them; the anomaly model, 1.6 times its sides
    inputs = {"classifier": ("256x96", "160x160"), "anomaly": ("416x160", "256x256")}
    for row in rows:
        assert row["backbone"] == "efficientnet_lite0"
        assert row["input"] == inputs[row["method"]][row["dataset"] != "kolektor"]
        assert row["train_seconds"] > 0 and row["ms_per_image"] > 0
        low, high = row["roc_auc_ci"]
        assert low <= row["roc_auc"] <= high
    # the short reference runs already find the defects of both real data sets, far from chance
    for name in ("casting", "kolektor"):
        assert by[(name, "classifier")]["roc_auc_ci"][0] > 0.6, by[(name, "classifier")]
    table = (out / "accuracy.md").read_text()
    assert table.count("\n") == 2 + len(rows) and "| kolektor | anomaly | efficientnet_lite0 |" in table
    assert "ROC-AUC" in result.stderr and "95% CI" in result.stderr


def test_bench_accuracy_refuses_what_it_cannot_read(tmp_path):
    result = subprocess.run([LINEINSPECT, "bench", "accuracy", str(tmp_path / "nowhere"), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2 and "data set not found" in result.stderr and "Traceback" not in result.stderr
    bad = subprocess.run([LINEINSPECT, "bench", "accuracy", str(tmp_path), "--out", str(tmp_path), "--method", "svm"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "choose classifier or anomaly" in bad.stderr
