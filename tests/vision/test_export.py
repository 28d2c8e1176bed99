"""Export refuses what it cannot vouch for and says what it calibrated."""

from __future__ import annotations

import pytest

import vision.training.export as export_module
from annotation.errors import LineInspectError
from vision.metadata import read_metadata
from vision.training.export import export_run


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run[1]


def test_export_refuses_to_write_a_model_that_fails_parity(run, tmp_path, monkeypatch):
    monkeypatch.setattr(export_module, "PARITY_TOLERANCE", -1.0)  # no model can pass: the refusal path runs
    out = tmp_path / "model.onnx"
    with pytest.raises(LineInspectError, match="parity check failed"):
        export_run(run, out)
    assert not out.exists()
    assert not list(tmp_path.iterdir()), "no temporary file is left behind"


def test_too_few_holdout_defects_are_reported_not_hidden(run, tmp_path):
    # 6 holdout defects cannot support a 1% miss rate (that needs 299 with no miss)
    meta = read_metadata(export_run(run, tmp_path / "model.onnx", miss_rate=0.01, force=True).path)
    point = meta.operating_point
    assert point["supported"] is False and "299" in point["note"]
    assert point["misses"] == 0  # the threshold then catches every holdout defect


def test_export_without_a_finished_epoch_is_a_clear_error(tmp_path):
    with pytest.raises(LineInspectError, match="not a training run"):
        export_run(tmp_path, tmp_path / "model.onnx")
