"""README's first command: `lineinspect demo` runs the whole chain and leaves every result it names."""

from __future__ import annotations

import csv
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

from serving.demo import DEMO_RECIPE
from vision.metadata import read_metadata

LINEINSPECT = str(Path(sys.executable).parent / "lineinspect")


def test_demo_trains_exports_evaluates_inspects_and_serves(tmp_path):
    recipe = yaml.safe_load(DEMO_RECIPE.read_text())
    recipe["train"]["epochs"] = 1  # the chain, not the accuracy: the full recipe is measured in README
    config = tmp_path / "demo.yaml"
    config.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "demo-output"
    result = subprocess.run(
        [LINEINSPECT, "demo", "--out", str(out), "--config", str(config)], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    meta = read_metadata(out / "model.onnx")
    assert meta.architecture == "efficientnet_lite0" and meta.parity["max_abs_diff"] <= 1e-4
    assert (out / "evaluation" / "metrics.json").is_file() and (out / "evaluation" / "roc.png").is_file()
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 300 and all(r["verdict"] in ("normal", "defect") for r in rows)
    with sqlite3.connect(out / "service" / "lineinspect.db") as db:
        records = db.execute("SELECT line, camera, model_version, verdict FROM inspections").fetchall()
    assert len(records) == 8 and {r[:3] for r in records} == {("demo-line", "cam-1", meta.version)}
    assert "service      8 records" in result.stderr
