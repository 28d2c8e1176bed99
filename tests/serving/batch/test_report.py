"""`lineinspect inspect --report`: one self-contained HTML page, rendered in Debian's headless Chromium and read
back with OCR: counts, score histogram, defect rate over time, the image grids with heatmaps and the evaluation."""

from __future__ import annotations

import re
import shutil

from annotation.export_writer import labelled_task, write_export
from tests.browser import colour_fraction, dump_dom, screenshot, text_in
from tests.serving.conftest import cli


def test_the_report_shows_counts_time_grids_evaluation_and_errors(casting_images, models, tmp_path):
    """Twelve real images taken (by their names) over three hours, labelled in an export, and one corrupt file."""
    folder = tmp_path / "day"
    folder.mkdir()
    tasks = []
    photos = casting_images["defect"][:6] + casting_images["normal"][:6]
    for k, path in enumerate(photos):
        name = f"cam1_20261125_{6 + k // 4:02d}{k % 4 * 10:02d}00.jpeg"
        shutil.copy(path, folder / name)
        label = "def_front" if k < 6 else "ok_front"
        tasks.append(labelled_task(k + 1, f"/data/local-files/?d={name}", label))
    export = write_export(tasks, tmp_path / "export.json")
    (folder / "cam1_20261125_090000.jpeg").write_bytes(photos[0].read_bytes()[:200])
    out, report = tmp_path / "rows.csv", tmp_path / "report.html"
    labels = ("--images-root", folder, "--normal-label", "ok_front", "--defect-label", "def_front")
    corrupt = folder / "cam1_20261125_090000.jpeg"
    shown = ("--report", report, "--heatmaps", tmp_path / "heat", "--heatmaps-for", "all")
    result = cli("inspect", models["model"], export, corrupt, *labels, "--out", out, *shown)
    assert f"wrote {report}" in result.stderr
    html = report.read_text()
    assert not re.search(r'(src|href)="(https?:)?//', html), "nothing fetched from elsewhere"
    assert html.count('src="data:image/') >= 12 + 4, "thumbnails and the four evaluation plots are embedded"
    assert html.count("<svg") == 2, "score histogram and defect rate over time"
    assert html.count('alt="heatmap of') >= 12, "each image in the grids beside its heatmap"
    dom = dump_dom(report.as_uri())
    assert "13" in dom and "Defect rate per hour" in dom
    assert re.search(r"ROC AUC [0-9.]+ \(95% interval [0-9.]+ to [0-9.]+", " ".join(dom.split()))
    png = screenshot(report.as_uri(), tmp_path / "report.png", height=6500)
    text = text_in(png)
    for words in ("batch inspection report", "counts", "unreadable", "scores", "defect rate over time",
                  "highest-scoring defects", "most uncertain images", "evaluation against the labels",
                  "roc auc", "unreadable images"):  # fmt: skip
        assert words in text, f"{words!r} not visible in the report:\n{text}"
    assert colour_fraction(png, (0x1F, 0x4E, 0x79), tol=30) > 0.001, "the histogram's bars are drawn"


def test_a_report_that_cannot_be_written_is_one_line_and_the_rows_are_kept(casting_images, models, tmp_path):
    folder = tmp_path / "few"
    folder.mkdir()
    shutil.copy(casting_images["normal"][0], folder / "a.jpeg")
    (tmp_path / "taken").mkdir()
    result = cli("inspect", models["model"], folder, "--out", tmp_path / "rows.csv", "--report", tmp_path / "taken",
                 check=False)  # fmt: skip
    assert result.returncode == 2 and "cannot write the report" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "rows.csv").is_file() and not (tmp_path / "taken.tmp").exists()
