"""Analog dials: needle angle through a calibration to a value, or a refusal with a reason."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from annotation.errors import LineInspectError
from vision.ocr import DialCalibration, read_dial
from vision.ocr.config import DEFAULT_SWEEP, dial_calibration, load_gauge
from vision.ocr.dial_scale import scale_ends
from vision.ocr.dials import value_at
from vision.ocr.image import encode_jpeg, encode_png
from vision.ocr.render_dial import FAMILIES, render_dial

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
    with pytest.raises(LineInspectError, match="min_value without max_value"):
        dial_calibration(min_angle=-135, max_angle=135, min_value=0)
    with pytest.raises(LineInspectError, match="not both"):
        dial_calibration(min_angle=-135, max_angle=135, min_value=0, max_value=1, points=[{"angle": 0, "value": 0}])


def test_a_calibration_with_only_the_values_finds_its_scale_on_the_dial():
    calibration = dial_calibration(min_value=0, max_value=16, unit="bar")
    assert calibration.find_scale is True
    assert [(p.angle, p.value) for p in calibration.points] == [(DEFAULT_SWEEP[0], 0), (DEFAULT_SWEEP[1], 16)]
    assert not LINEAR.find_scale and not NON_LINEAR.find_scale


def test_a_values_only_calibration_keeps_its_mode_when_copied_or_dumped():
    calibration = DialCalibration(min_value=0, max_value=16)
    again = DialCalibration.model_validate(calibration.model_dump(exclude_none=True))
    assert again.find_scale and again.points == calibration.points


def test_a_values_only_gauge_config_loads_with_its_scale_to_be_found():
    gauge = load_gauge("pressure-0-16bar")
    assert gauge.kind == "analog" and gauge.find_scale and gauge.span == 16 and gauge.unit == "bar"


@pytest.mark.parametrize(
    ("keys", "message"),
    [({"min_angle": -135}, "min_angle without max_angle: give both angles, or neither"),
     ({"max_angle": 135}, "max_angle without min_angle: give both angles, or neither"),
     ({"min_value": None}, "max_value without min_value"),
     ({"min_value": None, "max_value": None}, "a dial needs points, or min_value and max_value"),
     ({"max_value": None, "min_angle": -135, "max_angle": 135}, "min_value without max_value"),
     ({"points": [{"angle": -135, "value": 0}, {"angle": 135, "value": 16}]}, "either points or min_value/max_value"),
     ({"find_scale": False}, "find_scale: false needs min_angle and max_angle"),
     ({"max_value": 0}, "values must rise")],
)  # fmt: skip
def test_a_values_only_calibration_is_checked_with_a_message_that_says_what_to_fix(keys, message):
    values = {k: v for k, v in {"min_value": 0, "max_value": 16, **keys}.items() if v is not None}
    with pytest.raises(LineInspectError, match=message):
        dial_calibration(**values)


@pytest.mark.parametrize(
    ("calibration", "value", "seed"), [(LINEAR, 3.3, 1), (LINEAR, 9.1, 2), (NON_LINEAR, 0.4, 3), (NON_LINEAR, 7.2, 4)]
)
def test_rendered_dials_read_within_two_percent_of_span(calibration, value, seed):
    dial = render_dial(value, calibration, seed=seed)
    result = read_dial(encode_jpeg(dial.image), calibration)
    assert result.reason is None and result.value is not None and result.status == "ok"
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
    guess = DialCalibration(min_angle=-135, max_angle=135, min_value=0, max_value=100, find_scale=True)
    dial = render_dial(30.0, truth, seed=8)
    result = read_dial(encode_jpeg(dial.image), guess)
    assert abs(result.value - 30.0) < 2
    assert any("tick marks" in note for note in result.notes)


@pytest.mark.parametrize(
    ("start", "end", "low", "high", "value", "seed"),
    [(-135, 135, 0, 10, 3.3, 21), (-90, 90, 0, 100, 71.0, 22), (-150, 150, -20, 120, 35.0, 20),
     (-120, 120, 0, 16, 11.0, 24)],
)  # fmt: skip
def test_rendered_dials_read_within_two_percent_of_span_from_their_values_alone(start, end, low, high, value, seed):
    truth = DialCalibration(min_angle=start, max_angle=end, min_value=low, max_value=high)
    dial = render_dial(value, truth, seed=seed)
    result = read_dial(encode_jpeg(dial.image), DialCalibration(min_value=low, max_value=high))
    assert abs(result.value - value) / (high - low) < 0.02
    assert result.status == "uncertain"  # right, but the scale is the reader's own finding: not an ok reading
    assert abs(result.scale_ends[0] - start) < 4 and abs(result.scale_ends[1] - end) < 4
    assert any(note.startswith("scale found from the tick marks") for note in result.notes)


@pytest.mark.parametrize(
    "name",
    ["v_0127_f_0000_rgba.png",  # a 190-degree scale: 11% of span off with the 270-degree guess
     "7da778bf3bf44b869ec9f1ce7f4cad0a_jpeg_jpg.rf.45584242bd2199dbcd003d5d37b23ac7.jpg",  # 318 degrees
     "pressureGauge_4_jpg.rf.439f17b169e35f9f59964bea68c46856.jpg"],
)  # fmt: skip
def test_real_gauges_read_within_two_percent_of_span_from_their_values_alone(shared_data, name):
    folder = shared_data / "analog-gauges-reading" / "dataset" / "eval"
    entry = next(e for e in json.loads((folder / "gauge_info_eval.json").read_text()) if e["image"] == name)
    lo, hi, truth = float(entry["min"]), float(entry["max"]), float(entry["reading"])
    result = read_dial((folder / "images" / name).read_bytes(), DialCalibration(min_value=lo, max_value=hi))
    assert result.scale_ends is not None
    assert result.value is not None and abs(result.value - truth) / (hi - lo) < 0.02


def _face_without_ticks(needle_to: tuple[int, int] | None) -> bytes:
    face = np.full((400, 400, 3), 90, np.uint8)
    cv2.circle(face, (200, 200), 170, (240, 240, 240), -1)
    cv2.circle(face, (200, 200), 170, (20, 20, 20), 6)
    if needle_to:
        cv2.line(face, (200, 200), needle_to, (20, 20, 20), 7)
    return encode_png(face)


def test_without_tick_marks_the_calibrations_own_angles_are_used():
    guess = LINEAR.model_copy(update={"find_scale": True})
    result = read_dial(_face_without_ticks((320, 200)), guess)  # needle at 3 o'clock
    assert result.value == pytest.approx(value_at(LINEAR, result.angle)[0], abs=1e-3)
    assert any("not found on the dial" in note for note in result.notes)


def test_a_values_only_dial_without_tick_marks_says_it_assumed_the_270_degree_sweep():
    calibration = DialCalibration(min_value=0, max_value=10, unit="bar")
    result = read_dial(_face_without_ticks((320, 200)), calibration)  # needle at 3 o'clock: 90 deg
    assert result.status == "uncertain" and result.scale_ends is None  # a guessed sweep is never an ok reading
    assert result.reason == "the scale's ends were taken from the dial, not from a calibration with angles"
    assert result.value == pytest.approx(value_at(LINEAR, result.angle)[0], abs=1e-3)
    assert abs(result.value - 8.33) < 0.2
    assert "scale ends not found on the dial (no tick ring with a clear gap): assumed -135 to 135 deg" in result.notes


def test_a_values_only_dial_without_a_needle_gives_an_empty_value_and_a_reason():
    result = read_dial(_face_without_ticks(None), DialCalibration(min_value=0, max_value=10))
    assert result.value is None and result.confidence == 0 and "no needle" in result.reason


def test_a_dial_without_a_needle_is_refused_not_guessed():
    result = read_dial(_face_without_ticks(None), LINEAR)
    assert result.value is None and result.angle is None and result.confidence == 0
    assert "no needle" in result.reason and result.status == "unread"


@pytest.mark.parametrize(("grey", "status"), [(100, "ok"), (60, "uncertain"), (20, "unread")])
def test_a_second_hand_nearly_as_dark_as_the_needle_makes_the_reading_a_guess_then_a_refusal(grey, status):
    face = cv2.imdecode(np.frombuffer(_face_without_ticks((320, 200)), np.uint8), cv2.IMREAD_COLOR)
    cv2.line(face, (200, 200), (200, 320), (grey, grey, grey), 7)  # another hand at 6 o'clock
    result = read_dial(encode_png(face), LINEAR)
    assert result.status == status, result
    if status == "uncertain":  # the best guess is given, and why it is only that
        assert abs(result.value - 8.33) < 0.2 and result.reason.startswith("needle unclear (confidence 0.")
    if status == "unread":
        assert result.value is None and "no needle found" in result.reason


FULL_CIRCLE = DialCalibration(min_angle=0, max_angle=360, min_value=0, max_value=10)


@pytest.mark.parametrize(
    ("family", "calibration", "value", "seed"),
    [("small", LINEAR, 6.1, 31), ("small", NON_LINEAR, 0.7, 32), ("thin-needle", LINEAR, 2.2, 33),
     ("thin-needle", NON_LINEAR, 4.5, 34), ("meter-subdial", FULL_CIRCLE, 7.3, 35),
     ("meter-subdial", FULL_CIRCLE, 1.6, 36), ("plain", FULL_CIRCLE, 5.4, 37)],
)  # fmt: skip
def test_every_rendered_family_reads_within_two_percent_of_span(family, calibration, value, seed):
    dial = render_dial(value, calibration, seed=seed, family=family)
    if family in ("small", "meter-subdial"):
        assert 90 <= dial.image.shape[0] <= 210 and dial.image.shape[0] == dial.image.shape[1]
    result = read_dial(encode_jpeg(dial.image), calibration)
    assert result.status == "ok", result
    assert abs(result.value - value) / calibration.span < 0.02


@pytest.mark.parametrize("seed", [41, 46, 47, 50])  # red needle, dark needle, twice each
def test_with_a_second_pointer_the_gauge_config_names_the_needle_and_without_it_the_reading_is_a_guess(seed):
    dial = render_dial(3.8, LINEAR, seed=seed, family="second-pointer")
    named = read_dial(encode_jpeg(dial.image), LINEAR.model_copy(update={"needle": dial.needle}))
    assert named.status == "ok" and abs(named.value - 3.8) / LINEAR.span < 0.02
    other = "dark" if dial.needle == "red" else "red"
    hand = read_dial(encode_jpeg(dial.image), LINEAR.model_copy(update={"needle": other}))
    assert hand.value is None or abs(hand.value - 3.8) / LINEAR.span > 0.04  # the config picks the pointer read
    guess = read_dial(encode_jpeg(dial.image), LINEAR)
    assert guess.status != "ok" and (guess.status == "unread" or "two pointers" in guess.reason), guess


def test_a_dial_config_names_its_needle_and_refuses_a_kind_it_does_not_know():
    assert dial_calibration(min_value=0, max_value=10, needle="red").needle == "red"
    with pytest.raises(LineInspectError, match="needle"):
        dial_calibration(min_value=0, max_value=10, needle="blue")


def test_a_needle_on_the_seam_of_a_full_circle_scale_could_be_either_end_and_says_so():
    value, why = value_at(FULL_CIRCLE, 359.0)
    assert value == pytest.approx(9.97, abs=0.01) and "seam" in why
    assert value_at(FULL_CIRCLE, 1.0)[1] is not None and value_at(FULL_CIRCLE, 10.0) == (pytest.approx(10 / 36), None)
    dial = render_dial(0.02, FULL_CIRCLE, seed=44)
    result = read_dial(encode_jpeg(dial.image), FULL_CIRCLE)
    assert result.status == "uncertain" and "seam" in result.reason and result.value is not None


def test_an_unknown_dial_family_is_refused():
    with pytest.raises(ValueError, match="unknown dial family"):
        render_dial(1.0, LINEAR, seed=0, family="steampunk")
    assert "plain" in FAMILIES


def test_a_faint_tint_of_another_kind_is_not_taken_for_the_needle():
    face = cv2.imdecode(np.frombuffer(_face_without_ticks((320, 200)), np.uint8), cv2.IMREAD_COLOR)  # 3 o'clock
    cv2.circle(face, (200, 300), 25, (30, 30, 230), -1)  # a red mark below the hub: the red kind's strongest ink
    cv2.line(face, (200, 200), (115, 115), (222, 222, 240), 7)  # a faint pink streak towards 10:30
    result = read_dial(encode_png(face), LINEAR)
    assert result.status == "ok", result
    assert abs(result.angle - 90) < 2 and result.value == pytest.approx(value_at(LINEAR, 90)[0], abs=0.1)


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
