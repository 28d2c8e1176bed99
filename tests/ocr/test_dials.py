"""Analog dials: needle angle through a calibration to a value, or a refusal with a reason."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from annotation.errors import LineInspectError
from vision.ocr import DialCalibration, read_dial
from vision.ocr.config import dial_calibration
from vision.ocr.dial_scale import scale_ends
from vision.ocr.dials import value_at
from vision.ocr.image import encode_jpeg, encode_png
from vision.ocr.render_dial import render_dial

LINEAR = DialCalibration(min_angle=-135, max_angle=135, min_value=0, max_value=10, unit="bar")
NON_LINEAR = DialCalibration(
    points=[{"angle": -135, "value": 0}, {"angle": 0, "value": 1}, {"angle": 135, "value": 10}]
)


def test_calibration_maps_angles_to_values_linearly_between_points():
    assert value_at(LINEAR, -135) == (0.0, None)
    assert value_at(LINEAR, 0)[0] == pytest.approx(5)
    assert value_at(LINEAR, 67.5)[0] == pytest.approx(7.5)
    assert value_at(NON_LINEAR, -67.5)[0] == pytest.approx(0.5)
    assert value_at(NON_LINEAR, 67.5)[0] == pytest.approx(5.5)


def test_needle_a_little_past_either_end_reads_as_that_end_and_far_past_is_refused():
    assert value_at(LINEAR, -140)[0] == 0  # resting on the stop pin
    assert value_at(LINEAR, 140)[0] == 10
    value, reason = value_at(LINEAR, 180)
    assert value is None and "outside the calibrated scale" in reason


def test_a_sweep_may_cross_twelve_o_clock_or_six():
    bottom_up = DialCalibration(min_angle=135, max_angle=-135, min_value=0, max_value=90)  # 90 deg through 6 o'clock
    assert bottom_up.sweep == 90
    assert value_at(bottom_up, 180)[0] == pytest.approx(45)


def test_command_line_calibration_is_checked_like_a_file():
    with pytest.raises(LineInspectError, match="all of min_angle"):
        dial_calibration(min_angle=-135, max_angle=135, min_value=0)
    with pytest.raises(LineInspectError, match="not both"):
        dial_calibration(min_angle=-135, max_angle=135, min_value=0, max_value=1, points=[{"angle": 0, "value": 0}])


@pytest.mark.parametrize(
    ("calibration", "value", "seed"), [(LINEAR, 3.3, 1), (LINEAR, 9.1, 2), (NON_LINEAR, 0.4, 3), (NON_LINEAR, 7.2, 4)]
)
def test_rendered_dials_read_within_two_percent_of_span(calibration, value, seed):
    dial = render_dial(value, calibration, seed=seed)
    result = read_dial(encode_jpeg(dial.image), calibration)
    assert result.reason is None and result.value is not None
    assert abs(result.value - value) / calibration.span < 0.02
    assert abs(result.angle - dial.angle) < 3
    assert 0 < result.confidence <= 1 and result.unit == calibration.unit
    assert np.hypot(result.center[0] - dial.center[0], result.center[1] - dial.center[1]) < 0.1 * dial.radius


@pytest.mark.parametrize(("start", "end", "seed"), [(-135, 135, 5), (-90, 90, 6), (-150, 150, 7)])
def test_scale_ends_are_found_from_the_tick_marks(start, end, seed):
    calibration = DialCalibration(min_angle=start, max_angle=end, min_value=0, max_value=100)
    dial = render_dial(40.0, calibration, seed=seed)
    gray = cv2.cvtColor(dial.image, cv2.COLOR_BGR2GRAY)
    found = scale_ends(gray, dial.center, dial.radius, dial.angle)
    assert found is not None
    assert abs(found[0] - start) < 4 and abs(found[1] - end) < 4


def test_a_guessed_sweep_gives_way_to_the_one_on_the_dial():
    truth = DialCalibration(min_angle=-90, max_angle=90, min_value=0, max_value=100)
    guess = DialCalibration(min_angle=-135, max_angle=135, min_value=0, max_value=100)
    dial = render_dial(30.0, truth, seed=8)
    result = read_dial(encode_jpeg(dial.image), guess, find_scale=True)
    assert abs(result.value - 30.0) < 2
    assert any("tick marks" in note for note in result.notes)


def test_without_tick_marks_the_calibrations_own_angles_are_used():
    face = np.full((400, 400, 3), 90, np.uint8)
    cv2.circle(face, (200, 200), 170, (240, 240, 240), -1)
    cv2.circle(face, (200, 200), 170, (20, 20, 20), 6)
    cv2.line(face, (200, 200), (200 + 120, 200), (20, 20, 20), 7)  # needle at 3 o'clock
    result = read_dial(encode_png(face), LINEAR, find_scale=True)
    assert result.value == pytest.approx(value_at(LINEAR, result.angle)[0], abs=1e-3)
    assert any("not found on the dial" in note for note in result.notes)


def test_a_dial_without_a_needle_is_refused_not_guessed():
    face = np.full((400, 400, 3), 90, np.uint8)
    cv2.circle(face, (200, 200), 170, (240, 240, 240), -1)
    cv2.circle(face, (200, 200), 170, (20, 20, 20), 6)
    result = read_dial(encode_png(face), LINEAR)
    assert result.value is None and result.angle is None and result.confidence == 0
    assert "no needle" in result.reason


def test_unreadable_bytes_give_a_reason():
    result = read_dial(b"not an image", LINEAR)
    assert result.value is None and result.reason.startswith("unreadable image")


@pytest.mark.parametrize("name", ["v_0451_f_0000_rgba.png", "v_0462_f_0000_rgba.png"])
def test_real_factory_gauges_read_within_two_percent_of_span(shared_data, name):
    folder = shared_data / "analog-gauges-reading" / "dataset" / "eval"
    entry = next(e for e in json.loads((folder / "gauge_info_eval.json").read_text()) if e["image"] == name)
    lo, hi, truth = float(entry["min"]), float(entry["max"]), float(entry["reading"])
    calibration = DialCalibration(min_angle=-135, max_angle=135, min_value=lo, max_value=hi)
    result = read_dial((folder / "images" / name).read_bytes(), calibration)
    assert result.value is not None and abs(result.value - truth) / (hi - lo) < 0.02
