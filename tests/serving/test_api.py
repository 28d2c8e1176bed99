"""The Python API: README's example runs as written, and its answers are the CLI's."""

from __future__ import annotations

import contextlib
import csv
import io
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from annotation.errors import LineInspectError
from serving.api import Inspection, Inspector, read_label
from tests.serving.conftest import cli
from vision.ocr import DisplayResult, LabelResult

README = Path(__file__).parents[2] / "README.md"
LABEL_LINES = ("PART NO: 7731-A2", "LOT: K24B0917", "S/N: 004417", "DATE: 2026-11-25")


def _example() -> str:
    section = README.read_text(encoding="utf-8").split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S)[1]


def _plain_label(path: Path) -> None:
    """Black text on white, drawn with OpenCV's Hershey font: the plainest label there is."""
    label = np.full((220, 900, 3), 255, np.uint8)
    for i, line in enumerate(LABEL_LINES):
        cv2.putText(label, line, (20, 45 + 50 * i), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.imwrite(str(path), label)


@pytest.fixture()
def workdir(tmp_path, models, casting_images, monkeypatch) -> Path:
    """The files README's example names, in the current directory."""
    shutil.copy(models["model"], tmp_path / "model.onnx")
    line3 = tmp_path / "images" / "line3"
    line3.mkdir(parents=True)
    for path in casting_images["defect"][:3] + casting_images["normal"][:3]:
        shutil.copy(path, line3 / path.name)
    (line3 / "torn.jpg").write_bytes(casting_images["normal"][3].read_bytes()[:500])  # a cut-off file
    shutil.copy(casting_images["defect"][3], tmp_path / "part.jpg")
    _plain_label(tmp_path / "label.png")
    cv2.imwrite(str(tmp_path / "display.png"), np.full((120, 320, 3), 40, np.uint8))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_example_runs_and_answers_as_the_cli(workdir):
    scope: dict = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(_example(), "README.md (Python API)", "exec"), scope)
    results, part, label = scope["results"], scope["part"], scope["label"]
    assert all(isinstance(r, Inspection) for r in results) and len(results) == 7
    cli("inspect", "model.onnx", "images/line3", "--out", "rows.csv")
    with open("rows.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [str(r.path) for r in results] == [row["path"] for row in rows]
    for result, row in zip(results, rows, strict=True):
        if row["error"]:
            assert result.score is None and result.verdict is None and result.error == row["error"]
        else:
            assert result.score == pytest.approx(float(row["score"]), abs=1e-6)
            assert (result.verdict, result.label) == (row["verdict"], row["label"])
    assert scope["rejected"] == [r.path for r in results if r.verdict == "defect"]
    cv2.imwrite("part.png", cv2.imread("part.jpg"))  # the same pixels as a file
    (from_file,) = scope["inspector"].inspect(["part.png"])
    assert part.path is None and part.score == pytest.approx(from_file.score, abs=1e-6)
    assert isinstance(label, LabelResult) and label.ok, label.problems
    assert {k: label.fields[k].value for k in ("part_number", "lot", "serial", "date")} == {
        "part_number": "7731-A2", "lot": "K24B0917", "serial": "004417", "date": "2026-11-25"
    }  # fmt: skip
    assert isinstance(scope["reading"], DisplayResult)
    assert "7731-A2" in printed.getvalue()


def test_bad_input_raises_the_clis_one_line_error(workdir):
    with pytest.raises(LineInspectError, match="model file not found"):
        Inspector("missing.onnx")
    inspector = Inspector("model.onnx")
    with pytest.raises(LineInspectError, match="uint8 array"):
        inspector.inspect_array(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(LineInspectError, match="cannot read"):
        read_label("missing.png")
    with pytest.raises(LineInspectError, match="label template"):
        read_label("label.png", template="no-such-template")
