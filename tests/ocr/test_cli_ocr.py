"""The OCR commands as a user runs them: `lineinspect ocr label|gauge` and `lineinspect bench ocr`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from serving.cli import app
from tests.ocr.test_sevenseg import _two_display_panel
from vision.ocr.bench import DIAL_FAMILIES
from vision.ocr.config import DialCalibration
from vision.ocr.render_dial import render_dial
from vision.ocr.render_display import FAMILIES as DISPLAY_FAMILIES
from vision.ocr.render_display import family_reading, random_reading, render_photo
from vision.ocr.render_label import render_label

LINEINSPECT = str(Path(sys.executable).parent / "lineinspect")
runner = CliRunner()


def test_ocr_label_prints_the_fields_and_writes_words_with_boxes(tmp_path):
    label = render_label(1)
    image = tmp_path / "label.png"
    cv2.imwrite(str(image), label.image)
    result = runner.invoke(app, ["ocr", "label", str(image), "--json", str(tmp_path / "out.json")])
    assert result.exit_code == 0, result.output
    assert f"serial={label.fields['serial']}" in result.stdout and "[ok;" in result.stdout
    saved = json.loads((tmp_path / "out.json").read_text())[0]
    assert saved["fields"]["lot"]["value"] == label.fields["lot"] and saved["ok"] is True
    assert {"text", "confidence", "box", "line"} <= set(saved["words"][0])


def test_ocr_label_exits_1_when_a_required_field_is_missing(tmp_path):
    image = tmp_path / "blank.png"
    cv2.imwrite(str(image), np.full((200, 300, 3), 230, np.uint8))
    result = runner.invoke(app, ["ocr", "label", str(image)])
    assert result.exit_code == 1 and "no text found" in result.stdout


def test_ocr_gauge_reads_a_dial_with_a_calibration_from_the_command_line(tmp_path):
    calibration = DialCalibration(min_angle=-120, max_angle=120, min_value=0, max_value=16)
    dial = render_dial(11.0, calibration, seed=11)
    image = tmp_path / "dial.png"
    cv2.imwrite(str(image), dial.image)
    result = runner.invoke(
        app,
        [
            "ocr",
            "gauge",
            str(image),
            "--kind",
            "analog",
            "--min-angle",
            "-120",
            "--max-angle",
            "120",
            "--min-value",
            "0",
            "--max-value",
            "16",
            "--unit",
            "bar",
        ],
    )
    assert result.exit_code == 0, result.output
    value = float(result.stdout.split(": ")[1].split()[0])
    assert abs(value - 11.0) < 0.02 * 16 and " bar " in result.stdout


def test_ocr_gauge_takes_calibration_points_for_a_non_linear_scale(tmp_path):
    calibration = DialCalibration(
        points=[{"angle": -135, "value": 0}, {"angle": 0, "value": 1}, {"angle": 135, "value": 10}]
    )
    dial = render_dial(4.0, calibration, seed=12)
    image = tmp_path / "dial.png"
    cv2.imwrite(str(image), dial.image)
    result = runner.invoke(
        app,
        ["ocr", "gauge", str(image), "--kind", "analog", "--point", "-135=0", "--point", "0=1", "--point", "135=10"],
    )
    assert result.exit_code == 0, result.output
    assert abs(float(result.stdout.split(": ")[1].split()[0]) - 4.0) < 0.2


def test_ocr_gauge_reads_a_digital_display_with_a_named_profile(tmp_path):
    photo, _ = render_photo("73.40", seed=8, led=False)
    image = tmp_path / "display.jpg"
    cv2.imwrite(str(image), photo)
    result = runner.invoke(app, ["ocr", "gauge", str(image), "--gauge", "fuel-pump-lcd"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{image}: 73.4 L") and "shown '73.40'" in result.stdout


def test_an_analog_reading_without_a_calibration_is_a_clear_error(tmp_path):
    image = tmp_path / "dial.png"
    cv2.imwrite(str(image), np.full((100, 100, 3), 200, np.uint8))
    result = subprocess.run(
        [LINEINSPECT, "ocr", "gauge", str(image), "--kind", "analog"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "needs a calibration" in result.stderr and "Traceback" not in result.stderr


def test_bench_ocr_reports_rendered_sets_with_stock_tesseract_alongside(tmp_path):
    out = tmp_path / "bench.json"
    result = runner.invoke(
        app,
        [
            "bench",
            "ocr",
            "--only",
            "rendered-displays",
            "--only",
            "rendered-dials",
            "--rendered",
            "4",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    displays, dials = report["rendered-displays"], report["rendered-dials"]
    assert set(displays) == set(DISPLAY_FAMILIES)
    plain = displays["plain"]
    assert plain["exact"]["of"] == 4 and plain["exact"]["right"] >= 3
    assert plain["stock_tesseract"]["exact"]["right"] <= plain["exact"]["right"]
    assert all(family["exact"]["of"] == 4 and "stock_tesseract" not in family for family in list(displays.values())[1:])
    assert all(family["cropped"]["exact"]["of"] == 4 for family in displays.values())
    assert displays["plain"]["cropped"]["exact"]["right"] >= 3
    assert set(dials) == set(DIAL_FAMILIES)
    for family in dials.values():
        assert family["dials"] == 4 and family["median_error_of_span"] < 0.02
    assert "negative-lcd" in result.stdout and "meter-subdial" in result.stdout
    assert "cropped: exact" in result.stdout


def _dial_png(tmp_path: Path, value: float, calibration: DialCalibration, seed: int) -> Path:
    image = tmp_path / "dial.png"
    cv2.imwrite(str(image), render_dial(value, calibration, seed=seed).image)
    return image


def test_ocr_gauge_reads_a_meter_subdial_through_its_shipped_config_and_the_needle_named_on_the_command_line(
    tmp_path,
):
    full_circle = DialCalibration(min_angle=0, max_angle=360, min_value=0, max_value=10)
    image = tmp_path / "subdial.png"
    cv2.imwrite(str(image), render_dial(6.2, full_circle, seed=51, family="meter-subdial").image)
    result = runner.invoke(app, ["ocr", "gauge", str(image), "--gauge", "meter-subdial"])
    assert result.exit_code == 0, result.output
    assert abs(float(result.stdout.split(": ")[1].split()[0]) - 6.2) < 0.2 and "[ok;" in result.stdout
    plain = tmp_path / "two-pointers.png"
    cv2.imwrite(str(plain), render_dial(3.8, full_circle, seed=46, family="second-pointer").image)  # dark needle
    args = ["ocr", "gauge", str(plain), "--kind", "analog", "--min-angle", "0", "--max-angle", "360",
            "--min-value", "0", "--max-value", "10"]  # fmt: skip
    guessed = runner.invoke(app, args)
    assert guessed.exit_code == 1 and "two pointers" in guessed.stdout
    named = runner.invoke(app, [*args, "--needle", "dark"])
    assert named.exit_code == 0, named.output
    assert abs(float(named.stdout.split(": ")[1].split()[0]) - 3.8) < 0.2
    wrong = runner.invoke(app, [*args, "--needle", "blue"])
    assert wrong.exit_code != 0 and "needle: Input should be 'auto', 'dark', 'light' or 'red'" in str(wrong.exception)


def test_ocr_gauge_reads_a_dial_from_its_values_alone_and_says_where_the_scale_was_found(tmp_path):
    image = _dial_png(tmp_path, 11.0, DialCalibration(min_angle=-120, max_angle=120, min_value=0, max_value=16), 24)
    out = tmp_path / "out.json"
    result = runner.invoke(
        app,
        ["ocr", "gauge", str(image), "--kind", "analog", "--min-value", "0", "--max-value", "16", "--unit", "bar",
         "--json", str(out)],
    )  # fmt: skip
    # a scale found on the dial is the reader's guess: the value is given, as uncertain, and the exit code says so
    assert result.exit_code == 1, result.output
    assert abs(float(result.stdout.split(": ")[1].split()[0]) - 11.0) < 0.02 * 16 and " bar " in result.stdout
    assert "UNCERTAIN the scale's ends were taken from the dial" in result.stdout
    assert "scale found on the dial: " in result.stdout
    answer = json.loads(out.read_text())[0]
    assert answer["status"] == "uncertain" and answer["value"] is not None
    start, end = answer["scale_ends"]
    assert abs(start + 120) < 4 and abs(end - 120) < 4


def test_ocr_gauge_reads_a_dial_with_a_values_only_gauge_config(tmp_path):
    image = _dial_png(tmp_path, 5.0, DialCalibration(min_angle=-150, max_angle=150, min_value=0, max_value=16), 20)
    result = runner.invoke(app, ["ocr", "gauge", str(image), "--gauge", "pressure-0-16bar"])
    assert result.exit_code == 1 and "UNCERTAIN" in result.stdout, result.output
    assert abs(float(result.stdout.split(": ")[1].split()[0]) - 5.0) < 0.02 * 16
    assert "scale found on the dial: " in result.stdout


def test_ocr_gauge_says_when_a_values_only_dial_shows_no_scale_and_the_270_degree_sweep_was_assumed(tmp_path):
    face = np.full((400, 400, 3), 90, np.uint8)
    cv2.circle(face, (200, 200), 170, (240, 240, 240), -1)
    cv2.circle(face, (200, 200), 170, (20, 20, 20), 6)
    cv2.line(face, (200, 200), (320, 200), (20, 20, 20), 7)  # needle at 3 o'clock, no tick marks
    image = tmp_path / "plain.png"
    cv2.imwrite(str(image), face)
    result = runner.invoke(
        app, ["ocr", "gauge", str(image), "--kind", "analog", "--min-value", "0", "--max-value", "10"]
    )
    assert result.exit_code == 1 and "UNCERTAIN" in result.stdout, result.output  # a guessed sweep: not an ok reading
    assert "scale not found on the dial: assumed -135 to 135 deg" in result.stdout


def test_an_analog_calibration_with_one_angle_is_a_clear_error(tmp_path):
    image = tmp_path / "dial.png"
    cv2.imwrite(str(image), np.full((100, 100, 3), 200, np.uint8))
    result = subprocess.run(
        [LINEINSPECT, "ocr", "gauge", str(image), "--kind", "analog", "--min-angle", "-135", "--min-value", "0",
         "--max-value", "16"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "min_angle without max_angle" in result.stderr


def test_bench_ocr_reports_each_rendered_label_family_on_its_own_row(tmp_path):
    out = tmp_path / "bench.json"
    args = ["bench", "ocr", "--only", "rendered-labels", "--family", "hershey", "--family", "turned"]
    args += ["--per-family", "2", "--seed", "5", "--engine", "tesserocr", "--json", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    families = json.loads(out.read_text())["rendered-labels"]["tesserocr"]
    assert list(families) == ["hershey", "turned"]
    assert families["hershey"]["labels_all_fields_right"]["of"] == 2 and families["hershey"]["korean"]["of"] == 0
    assert families["turned"]["english"]["of"] == 1 and families["turned"]["korean"]["of"] == 1  # seeds 5 and 6
    assert families["turned"]["fields_right"]["right"] >= 8
    assert "labels: hershey" in result.stdout and "labels: turned" in result.stdout


def test_bench_ocr_refuses_an_unknown_label_family():
    args = [LINEINSPECT, "bench", "ocr", "--only", "rendered-labels", "--family", "sideways"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "unknown label family sideways" in result.stderr and "Traceback" not in result.stderr


def test_ocr_gauge_reads_the_display_a_region_points_at_and_refuses_a_malformed_region(tmp_path):
    panel, boxes = _two_display_panel()
    image = tmp_path / "panel.png"
    cv2.imwrite(str(image), panel)
    region = ",".join(str(v) for v in boxes["47.5"])
    result = runner.invoke(app, ["ocr", "gauge", str(image), "--kind", "digital", "--region", region])
    assert result.exit_code == 0 and ": 47.5  [ok;" in result.stdout, result.output
    bad = subprocess.run(
        [LINEINSPECT, "ocr", "gauge", str(image), "--kind", "digital", "--region", "1,2,3"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "--region '1,2,3': write it as X,Y,WIDTH,HEIGHT" in bad.stderr


@pytest.mark.slow  # trains for 15 s
def test_train_digits_writes_a_model_the_display_reader_loads(tmp_path, shared_data):
    """The command as README gives it, in a process of its own (it imports torch, which the readers never do)."""
    from vision.ocr.sevenseg_model import SevenSegModel

    out = tmp_path / "digits.onnx"
    done = subprocess.run(
        [Path(sys.executable).parent / "lineinspect", "ocr", "train-digits", "--out", out, "--samples", "1000",
         "--epochs", "1", "--threads", "1"], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    model = SevenSegModel(out)
    assert model.meta["training"]["samples"] == 1000 and model.meta["training"]["epochs"] == 1
    # a gauge config naming it reads with it: one epoch on 1000 strips has learned no digit yet
    (tmp_path / "line.yaml").write_text("kind: digital\nmodel: digits.onnx\n")
    photo, _ = render_photo("218.02", seed=1)
    (tmp_path / "display.jpg").write_bytes(cv2.imencode(".jpg", photo)[1].tobytes())
    shipped = runner.invoke(app, ["ocr", "gauge", str(tmp_path / "display.jpg"), "--kind", "digital"])
    own = runner.invoke(app, ["ocr", "gauge", str(tmp_path / "display.jpg"), "--gauge", str(tmp_path / "line.yaml")])
    assert "218.02" in shipped.output and "218.02" not in own.output
    bench = tmp_path / "bench.json"
    args = ["bench", "ocr", "--only", "digit-crops", "--data", str(shared_data), "--json", str(bench)]
    assert runner.invoke(app, [*args, "--digit-model", str(out)]).exit_code == 0
    assert json.loads(bench.read_text())["digit-crops"]["digits"]["rate"] < 0.5  # the shipped model: 99.4%


def test_ocr_gauge_reads_a_timer_whose_colon_is_off_as_a_time_with_time_fields(tmp_path):
    text = family_reading(np.random.default_rng(10_000 + 50001), "timer")
    photo, _ = render_photo(text, seed=50001, family="timer", colon_lit=False)
    image = tmp_path / "timer.jpg"
    cv2.imwrite(str(image), photo)
    minutes, seconds = map(int, text.split(":"))
    result = runner.invoke(app, ["ocr", "gauge", str(image), "--kind", "digital", "--time-fields", "2"])
    assert result.exit_code == 0 and f": {60 * minutes + seconds}.0  [ok;" in result.stdout, result.output
    assert f"shown '{text}'" in result.stdout
    config = runner.invoke(app, ["ocr", "gauge", str(image), "--gauge", "cycle-timer"])
    assert config.exit_code == 0 and f": {60 * minutes + seconds}.0 s  [ok;" in config.stdout, config.output


def test_ocr_gauge_reads_the_row_asked_for_on_a_display_with_two_and_refuses_row_0(tmp_path):
    """--row, the shipped thermo-hygrometer config (its top row) and --row 2 over it (the reading under it)."""
    text = random_reading(np.random.default_rng(10_000 + 50004))
    photo, _ = render_photo(text, seed=50004, family="two-row")
    image = tmp_path / "thermo-hygrometer.jpg"
    cv2.imwrite(str(image), photo)
    result = runner.invoke(app, ["ocr", "gauge", str(image), "--kind", "digital", "--row", "1"])
    assert result.exit_code == 0 and f": {float(text):g}  [ok;" in result.stdout, result.output
    shipped = runner.invoke(app, ["ocr", "gauge", str(image), "--gauge", "thermo-hygrometer"])
    assert shipped.exit_code == 0 and f": {float(text):g} °C  [ok;" in shipped.stdout, shipped.output
    second = runner.invoke(app, ["ocr", "gauge", str(image), "--gauge", "thermo-hygrometer", "--row", "2"])
    assert second.exit_code == 0 and f": {float(text):g} °C" not in second.stdout, second.output
    bad = subprocess.run(
        [LINEINSPECT, "ocr", "gauge", str(image), "--kind", "digital", "--row", "0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "row" in bad.stderr
