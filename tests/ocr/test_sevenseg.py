"""Seven-segment displays: rendered photos (text known) and real fuel-pump LCDs, torch-free."""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from unittest.mock import ANY

import cv2
import numpy as np
import pytest

from annotation.errors import LineInspectError
from vision.ocr import DisplayProfile, load_gauge, read_display
from vision.ocr.displays import straighten, text_rows
from vision.ocr.image import decode_bgr, encode_jpeg, encode_png
from vision.ocr.render_display import (
    FAMILIES,
    SegmentStyle,
    cells_of,
    colon_space,
    crop_margin,
    family_reading,
    random_reading,
    random_style,
    render_photo,
    render_strip,
)
from vision.ocr.sevenseg import reading_value
from vision.ocr.sevenseg_model import DEFAULT_MODEL, METADATA_KEY, SECOND_OPINION, SevenSegModel

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "seed", "led"), [("218.02", 1, False), ("-4.7", 2, False), ("1305", 3, True), ("0.25", 4, True)]
)
def test_rendered_displays_read_exactly_with_decimal_point_and_minus(text, seed, led):
    photo, _ = render_photo(text, seed=seed, led=led)
    result = read_display(encode_jpeg(photo, 90))
    assert result.reason is None and result.status == "ok"
    assert result.text == text and result.value == float(text)
    assert [d.char for d in result.digits] == list(text)
    height, width = photo.shape[:2]
    for digit in result.digits:
        assert 0.5 <= digit.confidence <= 1
        assert -5 <= digit.box.x <= width and -5 <= digit.box.y <= height
    xs = [d.box.x for d in result.digits]
    assert xs == sorted(xs)  # boxes run left to right like the characters
    assert result.confidence == min(d.confidence for d in result.digits)


@pytest.mark.parametrize(
    ("family", "seed"),
    [("negative-lcd", 50002), ("negative-lcd", 50004), ("coloured-lcd", 50003), ("coloured-lcd", 50004),
     ("unit", 50003), ("unit", 50007), ("timer", 50001), ("timer", 50004)],
)  # fmt: skip
def test_every_rendered_display_family_reads_exactly(family, seed):
    text = family_reading(np.random.default_rng(10_000 + seed), family)
    photo, _ = render_photo(text, seed=seed, family=family)
    result = read_display(encode_jpeg(photo, 90))
    assert (result.text, result.status, result.value) == (text, "ok", reading_value(text))


@pytest.mark.parametrize(
    ("family", "seed"),
    [("plain", 51118), ("negative-lcd", 51121), ("negative-lcd", 51124), ("negative-lcd", 51127), ("timer", 51112),
     ("timer", 51118), ("timer", 51216), ("timer", 51254), ("unit", 51205), ("unit", 51231)],
)  # fmt: skip
def test_a_photo_cropped_to_the_display_is_read_as_its_glass(family, seed):
    """A fixed camera's crop has no panel around the glass to find it by: the search found a piece of the glass or
    nothing, and snapped the window's top and bottom to the digits' own edges. The first six were unread, or read
    from the whole frame and left uncertain for it; the photo itself is the last window now, its sides not snapped.
    In the last four a piece read sure ended the search, and its checks left it uncertain: "01" of 6:01:01, "-3" of
    1:28:14, "7" of 61, "11" of 5.07. A found window in doubt now falls back to the photo, which reads more digits
    with no doubt."""
    text = family_reading(np.random.default_rng(10_000 + seed), family)
    photo, _ = render_photo(text, seed=seed, family=family, crop=crop_margin(seed))
    result = read_display(encode_jpeg(photo, 90))
    assert (result.text, result.status) == (text, "ok"), result
    h, w = photo.shape[:2]
    assert result.display == [(0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))]


@pytest.mark.parametrize("family", ["plain", "negative-lcd"])
def test_polarities_read_alike_sure_go_to_the_glass_own(family):
    """A lone "8" cropped close: its dark gaps read "1" (0.9999) as surely as its bright segments read "8" (0.9995),
    and the first polarity tried won, as ok. Readings this close keep the polarity of the glass: bright on dark."""
    seed = 51343
    text = family_reading(np.random.default_rng(10_000 + seed), family)
    photo, _ = render_photo(text, seed=seed, family=family, crop=crop_margin(seed))
    result = read_display(encode_jpeg(photo, 90))
    assert text == "8" and (result.text, result.status) == ("8", "ok"), result


@pytest.mark.parametrize("seed", [50001, 50004, 50009])
def test_a_timer_is_read_with_its_colons_never_as_the_number_its_digits_make(seed):
    """The reader before colons were trained in read these "2206" (uncertain), "63249" (ok) and "52-18": 0 of 40
    reported timers exact, 28 of them given as ok. Now the colon is a character; the value counts its last field."""
    text = family_reading(np.random.default_rng(10_000 + seed), "timer")
    photo, _ = render_photo(text, seed=seed, family="timer")
    result = read_display(encode_jpeg(photo, 90))
    assert ":" in text and (result.text, result.status) == (text, "ok"), result
    assert result.value == reading_value(text) and [d.char for d in result.digits] == list(text)
    digits_only = text.replace(":", "")
    assert result.value != float(digits_only)


@pytest.mark.parametrize(("family", "seed"), [("plain", 50006), ("coloured-lcd", 50023), ("negative-lcd", 50043)])
def test_a_display_showing_one_digit_is_found(family, seed):
    """A one-digit display's glass is about square; the search once wanted windows 1.2 times wider than high and
    found none of these three."""
    text = random_reading(np.random.default_rng(10_000 + seed))
    photo, _ = render_photo(text, seed=seed, family=family)
    result = read_display(encode_jpeg(photo, 90))
    assert len(text) == 1 and (result.text, result.status) == (text, "ok")


@pytest.mark.parametrize("seed", [50102, 50113, 50139])
def test_a_negative_lcd_whose_big_bright_digits_cut_its_glass_is_found_whole(seed):
    """Bright digits tall on dark glass are holes in its dark blob: rows through them were not solid, the window found
    was the band of glass above or below them, and these three were unread. The blob's holes are filled now."""
    text = random_reading(np.random.default_rng(10_000 + seed))
    photo, _ = render_photo(text, seed=seed, family="negative-lcd")
    result = read_display(encode_jpeg(photo, 90))
    assert (result.text, result.status) == (text, "ok")


@pytest.mark.parametrize("seed", [50174, 50179, 50193])
def test_a_window_found_on_part_of_the_glass_grows_to_the_whole_readout(seed, monkeypatch):
    """Coloured digits on light glass: the window found was the glass's empty left part and the first digit or two
    ("7" of "7.31"), uncertain since the widened window reads more. Widened while that reads more sure digits, it
    holds the whole readout; not grown, these stay a part."""
    import vision.ocr.sevenseg as sevenseg

    text = random_reading(np.random.default_rng(10_000 + seed))
    photo, _ = render_photo(text, seed=seed, family="coloured-lcd")
    grown = read_display(encode_jpeg(photo, 90))
    assert (grown.text, grown.status) == (text, "ok")
    monkeypatch.setattr(sevenseg, "GROWTH", 0)
    part = read_display(encode_jpeg(photo, 90))
    assert part.status == "uncertain" and part.reason.startswith("the display window may not hold the whole readout")


@pytest.mark.parametrize("seed", [50002, 50003, 50006])
def test_a_unit_after_the_digits_is_left_out_of_the_reading(seed):
    """The model learned units on the glass (V, %, ...) from its training strips: "62 V" reads 62, not 627 (the
    model trained on plain strips only read these three as one more character and gave them as uncertain)."""
    text = random_reading(np.random.default_rng(10_000 + seed))
    photo, _ = render_photo(text, seed=seed, family="unit")
    result = read_display(encode_jpeg(photo, 90))
    assert (result.text, result.status) == (text, "ok")


@pytest.mark.parametrize("seed", [50002, 50004, 50007])
def test_the_row_a_gauge_config_names_is_read_on_a_display_with_two(seed):
    """A thermo-hygrometer's temperature over its humidity: `row: 1` reads the top reading and `row: 2` the one
    under it; read as one line, the two rows make no reading that passes (a window found on the top row alone, as
    for seed 50004, reads that row)."""
    rng = np.random.default_rng(10_000 + seed)
    text = random_reading(rng)
    photo, _ = render_photo(text, seed=seed, family="two-row")
    data = encode_jpeg(photo, 90)
    top = read_display(data, DisplayProfile(row=1))
    assert (top.text, top.status) == (text, "ok")
    under = read_display(data, DisplayProfile(row=2))
    assert under.text and under.text != text and under.value is not None
    assert all(d.box.y > max(t.box.y + t.box.height // 2 for t in top.digits) for d in under.digits)
    whole = read_display(data)
    assert whole.status != "ok" or whole.text == text
    missing = read_display(data, DisplayProfile(row=3))
    assert (missing.status, missing.reason) == ("unread", "no display with a row 3 of digits found")


@pytest.mark.parametrize("seed", [50015, 50020, 50053, 50058, 50064])
def test_a_display_with_two_rows_read_as_one_line_is_never_ok(seed):
    """Without `row`, these five were read as one line as "8" or "9", sure of it and given as ok: the reading in the
    wrong polarity (the glass between an LCD's segments read as strokes) was the surer. Now they are uncertain for
    that reason, or for another (50020 and 50053: the model trained with real crops reads no digits in either
    polarity of the window; the photo read whole, the last window, gives 50053 an unclear "19")."""
    text = random_reading(np.random.default_rng(10_000 + seed))
    photo, _ = render_photo(text, seed=seed, family="two-row")
    result = read_display(encode_jpeg(photo, 90))
    assert result.text != text and result.status in ("uncertain", "unread") and result.reason
    if result.status == "uncertain" and seed != 50053:
        assert result.reason.startswith("the display shows 2 rows of digits, read as one line")


def test_text_rows_find_the_readings_stacked_on_a_glass_and_one_on_most_displays():
    rng = np.random.default_rng(0)
    two, _, _ = render_strip("23.5", rng, random_style(rng, 80.0), below="45")
    assert len(text_rows(two, dark=True)) == 2
    for seed in range(40):  # "7", "0" or "1" leave a gap between their segments, not between rows
        rng = np.random.default_rng(seed)
        one, _, _ = render_strip(random_reading(rng), rng, replace(random_style(rng, 80.0), led=False))
        assert len(text_rows(one, dark=True)) == 1, seed


def test_rows_are_found_when_a_bright_sliver_of_panel_at_the_window_edge_outshines_the_strokes():
    """A red LED thermo-hygrometer (two-row seed 50625) whose window keeps slivers of the light panel: the ink's Otsu
    level fell between the slivers and the strokes, no stroke was left, no row was found in the right polarity, and
    the wrong one read the dark glass as "8", sure. The level is sought again below the slivers."""
    text = random_reading(np.random.default_rng(10_000 + 50625))
    photo, _ = render_photo(text, seed=50625, family="two-row")
    data = encode_jpeg(photo, 90)
    top = read_display(data, DisplayProfile(row=1))
    assert (text, top.text, top.status) == ("9606", "9606", "ok")
    strip = straighten(decode_bgr(data), np.float32(top.display))[0]
    assert len(text_rows(strip, dark=False)) == 2


@pytest.mark.parametrize("seed", [50523, 50529])
def test_light_glass_whose_digits_close_into_its_bezel_is_found(seed):
    """Light glass in a dark bezel is the hole in a dark ring; digits near the bezel closed into it and notched the
    hole, which then failed the rectangle test: no display was found at all. The hole's convex hull is the glass."""
    text = random_reading(np.random.default_rng(10_000 + seed))
    photo, _ = render_photo(text, seed=seed, family="two-row")
    top = read_display(encode_jpeg(photo, 90), DisplayProfile(row=1))
    assert (top.text, top.status) == (text, "ok") and top.display is not None


def test_an_unknown_display_family_is_refused():
    with pytest.raises(ValueError, match="unknown display family"):
        render_photo("1.0", seed=0, family="nixie")
    assert FAMILIES[0] == "plain"


@pytest.mark.parametrize(
    ("text", "value"),
    [("12.5", 12.5), ("-4.70", -4.7), ("12:34", 754.0), ("0:07", 7.0), ("1:02:03", 3723.0), ("23:59", 1439.0),
     ("12:3", None), ("12:75", None), ("-1:20", None), ("1.5:20", None), ("12::34", None), ("20-12", None)],
)  # fmt: skip
def test_a_reading_is_a_number_or_a_time_counted_in_its_last_fields_unit(text, value):
    assert reading_value(text) == value


def test_a_colon_is_drawn_between_two_cells_with_room_for_its_dots():
    assert cells_of("12:34") == [("1", False, False), ("2", False, True), ("3", False, False), ("4", False, False)]
    assert cells_of("1.5") == [("1", True, False), ("5", False, False)]
    rng = np.random.default_rng(3)
    style = replace(random_style(rng, 60.0), slant=0.0)
    plain, _, _ = render_strip("1234", np.random.default_rng(4), style, extra_cells=0)
    timer, shown, _ = render_strip("12:34", np.random.default_rng(4), style, extra_cells=0)
    assert [c for c, _, _ in shown] == ["1", "2", ":", "3", "4"]
    assert timer.shape[1] - plain.shape[1] == pytest.approx(colon_space(style), abs=1)
    _, left, right = shown[2]
    assert shown[1][2] < left < right < shown[3][1]  # the dots sit between the 2 and the 3
    for family in FAMILIES:
        assert all(ch in "0123456789-.:" for ch in family_reading(np.random.default_rng(0), family))
    assert ":" in family_reading(np.random.default_rng(0), "timer")


@pytest.mark.parametrize("seed", [50001, 50004, 50009])
def test_a_clock_whose_colon_blinked_off_reads_as_its_digits_unless_the_gauge_says_it_shows_a_time(seed):
    """A colon off (a clock's blink) leaves digits that read as a number, surely: `time_fields` puts it back."""
    text = family_reading(np.random.default_rng(10_000 + seed), "timer")
    photo, _ = render_photo(text, seed=seed, family="timer", colon_lit=False)
    data = encode_jpeg(photo, 90)
    assert read_display(data).text == text.replace(":", "")
    timer = read_display(data, DisplayProfile(time_fields=text.count(":") + 1))
    assert (timer.text, timer.status, timer.value) == (text, "ok", reading_value(text))


def test_a_gauge_that_shows_a_time_makes_a_reading_of_other_fields_uncertain(tmp_path):
    photo, _ = render_photo("218.02", seed=1)
    result = read_display(encode_jpeg(photo, 90), DisplayProfile(time_fields=2))
    assert (result.text, result.status) == ("218.02", "uncertain")
    assert result.reason == "the gauge shows a time of 2 fields; the display reads 1"
    (tmp_path / "both.yaml").write_text("kind: digital\ntime_fields: 2\ndecimals: 1\n")
    with pytest.raises(LineInspectError, match="a time .time_fields. or a number with decimals, not both"):
        load_gauge(tmp_path / "both.yaml")


def test_profile_supplies_the_decimal_point_only_when_none_is_seen():
    photo, _ = render_photo("1250", seed=5)
    data = encode_jpeg(photo, 90)
    assert read_display(data).value == 1250
    assert read_display(data, DisplayProfile(decimals=2)).value == 12.5
    with_point, _ = render_photo("3.75", seed=6)
    assert read_display(encode_jpeg(with_point, 90), DisplayProfile(decimals=1)).value == 3.75


def test_a_gauge_config_names_its_own_digit_model_beside_it_or_is_refused_on_load(tmp_path):
    """`model:` (from `ocr train-digits`, relative to the config) reads in place of the shipped model."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "line-7.onnx").write_bytes(DEFAULT_MODEL.read_bytes())
    (tmp_path / "line-7.yaml").write_text("kind: digital\npolarity: dark\nmodel: models/line-7.onnx\n")
    profile = load_gauge(tmp_path / "line-7.yaml")
    assert profile.model == tmp_path / "models" / "line-7.onnx"
    photo, _ = render_photo("218.02", seed=1)
    assert read_display(encode_jpeg(photo, 90), profile).text == "218.02"
    for model, says in (("missing.onnx", "seven-segment model not found"), ("line-7.yaml", "not a loadable ONNX")):
        (tmp_path / "bad.yaml").write_text(f"kind: digital\nmodel: {model}\n")
        with pytest.raises(LineInspectError, match=rf"bad.yaml: model: .*{says}"):
            load_gauge(tmp_path / "bad.yaml")


def _lcd_photo(text: str, seed: int, hide_from: int | None = None) -> np.ndarray:
    """An LCD on a light panel; from character `hide_from` on, the glass is blank (as under glare)."""
    rng = np.random.default_rng(seed)
    style = SegmentStyle(**{**random_style(rng, digit_height=70.0).__dict__, "led": False})
    strip, shown, _ = render_strip(text, rng, style, extra_cells=0)
    if hide_from is not None:
        x = min(x0 for _, x0, _ in shown[hide_from:])
        strip[:, int(x) - 2 :] = np.median(strip[:4].reshape(-1, 3), axis=0)
    framed = cv2.copyMakeBorder(strip, 6, 6, 6, 6, cv2.BORDER_CONSTANT, value=(35, 35, 35))
    h, w = framed.shape[:2]
    return cv2.copyMakeBorder(framed, h, 2 * h, w // 3, w // 3, cv2.BORDER_CONSTANT, value=(215, 215, 215))


def test_decimals_lost_at_the_glass_end_do_not_move_the_decimal_point():
    profile = DisplayProfile(decimals=2)
    assert read_display(encode_png(_lcd_photo("218.02", seed=11)), profile).value == 218.02
    hidden = read_display(encode_png(_lcd_photo("218.02", seed=11, hide_from=3)), profile)
    assert hidden.text == "218" and hidden.value == 218  # two empty cells are the decimals, not 2.18


def test_a_picture_without_a_display_gives_no_value_and_a_reason():
    rng = np.random.default_rng(0)
    wall = (np.full((480, 640, 3), 200) + rng.normal(0, 4, (480, 640, 3))).clip(0, 255).astype(np.uint8)
    result = read_display(encode_png(wall))
    assert result.value is None and result.text == "" and result.digits == []
    assert result.reason == "no seven-segment digits found" and result.status == "unread"
    corrupt = read_display(b"GIF89a broken")
    assert corrupt.value is None and corrupt.reason.startswith("unreadable image") and corrupt.status == "unread"


# rendered photos whose display finder sees only part of the glass: a window that reads "3" of "3328" sure of
# every digit (seeds outside the range `bench ocr` reports on)
PARTIAL_WINDOWS = [("3328", 50087), ("3830.65", 50100), ("-506.859", 50072), ("-913.58", 50203)]


def test_a_window_that_may_not_hold_the_whole_readout_is_never_an_ok_reading():
    results = []
    for text, seed in PARTIAL_WINDOWS:
        photo, _ = render_photo(text, seed=seed)
        result = read_display(encode_jpeg(photo, 90))
        assert result.status != "ok" or result.text == text, (text, result)
        results.append(result)
    widened = [r for r in results if r.status == "uncertain" and "may not hold the whole readout" in r.reason]
    assert widened, [r.reason for r in results]
    assert all(r.value is not None for r in widened)  # the best guess is still given


def test_a_noisier_and_noisier_display_is_read_as_a_guess_before_it_is_ever_read_wrong_as_ok():
    photo, _ = render_photo("1250", seed=5)
    noise = np.random.default_rng(0).normal(0, 1, photo.shape)
    statuses = []
    for level in (0, 100, 200, 260, 330):
        result = read_display(encode_jpeg(np.clip(photo + level * noise, 0, 255).astype(np.uint8), 90))
        assert result.status != "ok" or result.text == "1250", (level, result)
        statuses.append(result.status)
    assert statuses[0] == "ok" and "uncertain" in statuses, statuses


def test_real_fuel_pump_displays_read_the_integer_litres(shared_data):
    folder = shared_data / "gaspump-7seg-lcd"
    rows = [r for r in csv.DictReader((folder / "DERIVED_subset_labels.csv").open()) if r["quality"] == "HQ"][:24]
    profile = load_gauge("fuel-pump-lcd")
    right = 0
    for row in rows:
        result = read_display((folder / row["image_path"]).read_bytes(), profile)
        truth = int(row["used_liter"])
        right += result.value is not None and truth in (math.floor(result.value), math.ceil(result.value))
    assert right >= 20  # the shipped model reads 22 of these 24; `lineinspect bench ocr` measures all 218
    first = read_display((folder / rows[0]["image_path"]).read_bytes(), profile)
    assert first.text == "29.00" and first.unit == "L" and len(first.digits) == 5


def test_a_digit_read_as_nothing_between_two_read_makes_the_reading_a_guess(shared_data):
    """A fuel pump showing "115.00" with its fourth digit behind a reflection: the digits read sit 1, 1, 1 and 2
    cells apart, so a digit between them was read as nothing (a model trained with real crops read it "1150", sure)."""
    from vision.ocr.sevenseg import MAX_STEP, _widest_step
    from vision.ocr.sevenseg_model import CharReading

    def chars(*centres: float) -> list[CharReading]:
        return [CharReading("8", 0.99, x - 2, x + 2) for x in centres] + [CharReading(".", 0.9, 19, 20)]

    assert _widest_step(chars(10, 20, 30, 40)) == 1.0 and _widest_step(chars(10, 20, 30, 50)) == 2.0
    assert _widest_step(chars(10, 20)) is None and 1.0 < MAX_STEP < 2.0  # a pitch needs three digits
    photo = shared_data / "gaspump-7seg-lcd" / "Datasets/LQ_digital/1ca1a48fd14bca5653e98309f50d6476c4cd15ad.jpg"
    result = read_display(photo.read_bytes(), load_gauge("fuel-pump-lcd"))
    assert result.status == "uncertain" and result.text.replace(".", "").startswith("115"), result
    apart = re.fullmatch(
        r"a digit between two read was read as nothing \(they are (\d\.\d) digit cells apart\)", result.reason
    )
    assert apart and float(apart[1]) > MAX_STEP, result.reason


def test_the_photo_of_a_close_up_cut_by_its_edge_does_not_replace_the_glass_found_in_it(shared_data):
    """A fuel pump's "222" whose third digit the photo's right edge cuts. The glass found reads "22", and "21"
    widened: a guess. The photo itself also reads "22" with no doubt (nothing beyond its edge to widen into); it
    replaces a found window only when it reads more digits, so the guess stays a guess."""
    photo = shared_data / "gaspump-7seg-lcd" / "Datasets/LQ_digital/06cec77f0f984cd7776c059a2aca2e4105071af7.jpg"
    data = photo.read_bytes()
    result = read_display(data, load_gauge("fuel-pump-lcd"))
    assert (result.text, result.status) == ("22", "uncertain"), result
    assert result.reason.startswith("the display window may not hold the whole readout"), result.reason
    width = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape[1]
    assert result.display[0][0] > 0 and result.display[1][0] <= width  # a window found, not the photo


def test_the_shipped_models_are_small_and_describe_themselves():
    """The reader, trained with the real crops' training half, and the second opinion, on rendered displays alone."""
    data = {
        DEFAULT_MODEL: "rendered strips + real crops (odd-indexed files of sevenseg-digits)",
        SECOND_OPINION: "rendered strips only",
    }
    for path, trained_on in data.items():
        assert path.stat().st_size < 1_000_000
        model = SevenSegModel(path)
        assert model.meta["charset"] == "0123456789-.:" and model.meta["training"]["data"] == trained_on
        assert model.session.get_modelmeta().custom_metadata_map[METADATA_KEY]


def test_a_digit_model_for_another_character_set_is_refused(tmp_path):
    """Models from before colons were read (charset "0123456789-.") give a clear error, not wrong characters."""
    import onnx

    model = onnx.load(str(DEFAULT_MODEL))
    entry = next(e for e in model.metadata_props if e.key == METADATA_KEY)
    entry.value = json.dumps({**json.loads(entry.value), "charset": "0123456789-."})
    onnx.save(model, str(tmp_path / "old.onnx"))
    with pytest.raises(LineInspectError, match=r"old.onnx was trained for another input \('0123456789-.'\); retrain"):
        SevenSegModel(tmp_path / "old.onnx")


def test_reading_a_display_never_imports_torch(tmp_path):
    photo, _ = render_photo("42.5", seed=7)
    image = tmp_path / "display.png"
    image.write_bytes(encode_png(photo))
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch is blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from pathlib import Path\n"
        "from vision.ocr import read_display, read_dial, read_label\n"
        f"print(read_display(Path({str(image)!r}).read_bytes()).text)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42.5"


def test_training_data_is_rendered_the_same_from_the_same_seed():
    from vision.training.sevenseg import make_examples

    first, again, other = make_examples(20, seed=3), make_examples(20, seed=3), make_examples(20, seed=4)
    assert [t for _, t in first] == [t for _, t in again]
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(first, again, strict=True))
    assert [t for _, t in first] != [t for _, t in other]
    assert all(x.shape[0] == 40 and x.shape[1] % 4 == 0 and 0 <= x.min() and x.max() <= 1 + 1e-6 for x, _ in first)


@pytest.mark.parametrize(("family", "bright"), [("negative-lcd", True), ("coloured-lcd", False), ("unit", None)])
def test_training_strips_come_from_every_photo_family_with_the_segments_polarity(monkeypatch, family, bright):
    """The model learns every family the photos come in; a strip says whether its segments are brighter than the
    glass (light segments on a negative LCD's dark glass are read with a top-hat, like LEDs)."""
    from vision.ocr import render_display

    assert set(render_display.TRAINING_FAMILIES) == set(FAMILIES) - {"two-row"}  # its rows are read one by one
    assert sum(render_display.TRAINING_FAMILIES.values()) == pytest.approx(1)
    monkeypatch.setattr(render_display, "TRAINING_FAMILIES", {family: 1.0})
    rng = np.random.default_rng(1)
    for _ in range(12):
        _, text, is_bright = render_display.render_training_strip(rng)
        assert re.fullmatch(r"[0-9.:-]+", text)  # a unit on the glass is never part of the text
        assert bright is None or is_bright is bright  # decides the top-hat or black-hat of `strip_input`


def test_a_few_training_steps_lower_the_ctc_loss():
    import torch

    from vision.training.sevenseg import LineReader, _batch, make_examples

    torch.manual_seed(0)
    model = LineReader()
    x, targets, input_lengths, target_lengths = _batch(make_examples(16, seed=5))
    ctc = torch.nn.CTCLoss(zero_infinity=True)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        loss = ctc(model(x).log_softmax(2).transpose(0, 1), targets, input_lengths, target_lengths)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


def _two_display_panel() -> tuple[np.ndarray, dict[str, list[float]]]:
    """A panel with two LCDs (a meter's two fields), and each glass's box [x, y, width, height]."""
    panel = np.full((560, 760, 3), 215, np.uint8)
    boxes = {}
    for text, seed, top in (("218.02", 11, 40), ("47.5", 12, 320)):
        rng = np.random.default_rng(seed)
        style = SegmentStyle(**{**random_style(rng, digit_height=70.0).__dict__, "led": False})
        strip = render_strip(text, rng, style, extra_cells=0)[0]
        framed = cv2.copyMakeBorder(strip, 6, 6, 6, 6, cv2.BORDER_CONSTANT, value=(35, 35, 35))
        h, w = framed.shape[:2]
        panel[top : top + h, 60 : 60 + w] = framed
        boxes[text] = [66, top + 6, w - 12, h - 12]
    return panel, boxes


def test_a_gauge_config_s_region_picks_the_display_and_its_reading_can_be_ok():
    panel, boxes = _two_display_panel()
    data = encode_png(panel)
    for text, (x, y, w, h) in boxes.items():
        box = read_display(data, DisplayProfile(region=[x, y, w, h]))
        assert (box.text, box.status) == (text, "ok"), box
        corners = [[x + w, y + h], [x, y], [x + w, y], [x, y + h]]  # four corners, in any order
        assert read_display(data, DisplayProfile(region=corners)).text == text
    found = read_display(data)
    assert found.text in boxes  # without a region the reader picks one display itself


def test_a_region_that_cuts_the_readout_is_never_an_ok_reading():
    panel, boxes = _two_display_panel()
    x, y, w, h = boxes["218.02"]
    cut = read_display(encode_png(panel), DisplayProfile(region=[x + w // 2, y, w // 2, h]))
    assert cut.status == "uncertain" and "may not hold the whole readout" in cut.reason, cut


@pytest.mark.parametrize(
    ("region", "message"),
    [([1, 2, 3], "a box [x, y, width, height] or four corners"), ([0, 0, -5, 10], "must be positive")],
)
def test_a_region_of_the_wrong_shape_is_refused_with_the_shape_to_use(region, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        DisplayProfile(region=region)


def test_the_real_digit_crops_split_once_into_disjoint_train_and_holdout_parts(shared_data):
    from vision.ocr.digit_crops import real_crops

    root = shared_data / "sevenseg-digits"
    train, holdout = real_crops(root, "train"), real_crops(root, "holdout")
    assert train == real_crops(root, "train") and holdout == real_crops(root, "holdout")
    assert not {p for p, _ in train} & {p for p, _ in holdout}
    assert len(train) + len(holdout) == len(list(root.glob("*/*.jpg")))
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.jpg"))
        assert [p for p, _ in holdout if p.parent == folder] == files[0::2]  # even positions: measuring only
        assert [p for p, _ in train if p.parent == folder] == files[1::2]
    labels = {p.parent.name: label for p, label in holdout}
    assert labels["00"] == "0" and labels["09"] == "9" and labels["11"] == ""


def test_training_with_real_crops_writes_a_model_that_names_its_real_data(shared_data, tmp_path):
    from vision.training.sevenseg import REAL_SHARE, make_real_examples, train_digits

    root = shared_data / "sevenseg-digits"
    examples = make_real_examples(root, 1600, seed=1)
    assert all(x.shape[0] == 40 and x.shape[1] % 4 == 0 and 0 <= x.min() and x.max() <= 1 + 1e-6 for x, _ in examples)
    texts = [t for _, t in examples]
    few = {t for _, t in make_real_examples(root, 40, seed=1) if len(t) < 2}
    assert len(few) >= 8  # fewer examples than crops: single crops drawn from every class, not the first ones
    assert "" in texts and any(len(t) >= 2 for t in texts)  # empty positions and lines
    pointed = [t for t in texts if "." in t]  # a point after a digit, never last, never two
    assert pointed and all(t.count(".") == 1 and t[0] != "." and not t.endswith(".") for t in pointed)
    result = train_digits(tmp_path / "real.onnx", samples=96, epochs=1, seed=0, min_samples=32, real=root)
    model = SevenSegModel(result.out)
    assert model.meta["training"]["data"] == "rendered strips + real crops (odd-indexed files of sevenseg-digits)"
    assert model.meta["training"]["real_examples"] == round(96 * REAL_SHARE / (1 - REAL_SHARE))
    tenth = train_digits(tmp_path / "tenth.onnx", samples=90, epochs=1, min_samples=32, real=root, real_share=0.1)
    training = SevenSegModel(tenth.out).meta["training"]
    assert training["real_examples"] == 10 and training["real_share"] == 0.1
    with pytest.raises(LineInspectError, match="real share must be between 0 and 1"):
        train_digits(tmp_path / "all.onnx", samples=90, epochs=1, min_samples=32, real=root, real_share=1.0)


def test_a_point_drawn_after_a_real_crop_is_ink_on_the_glass_of_a_gap_beside_it(shared_data):
    from vision.ocr.digit_crops import real_crops
    from vision.training.sevenseg import _with_point

    path, _ = real_crops(shared_data / "sevenseg-digits", "train")[0]
    crop = cv2.imread(str(path))
    pointed = _with_point(crop, np.random.default_rng(0))
    h, w = crop.shape[:2]
    gap = cv2.cvtColor(pointed[:, w:], cv2.COLOR_BGR2GRAY).astype(int)
    assert np.array_equal(pointed[:, :w], crop) and 0.14 * h <= gap.shape[1] <= 0.22 * h + 1
    glass, dot = np.median(gap[: h // 2]), gap[round(0.7 * h) :].min()
    assert glass - dot > 30 and gap[: h // 2].std() < 1  # dark ink low in the gap, plain glass above it


def test_an_exported_model_loads_back_for_training_on_and_gives_the_same_logits():
    import torch

    from vision.training.sevenseg import LineReader, load_onnx_weights, make_examples

    model = LineReader()
    load_onnx_weights(model, DEFAULT_MODEL)
    model.eval()
    shipped = SevenSegModel()
    for x, _ in make_examples(3, seed=2):
        with torch.no_grad():
            expected = model(torch.from_numpy(x)[None, None]).numpy()
        assert np.abs(expected - shipped.session.run(None, {"strip": x[None, None]})[0]).max() < 1e-3


def _real_glass(shared_data: Path, digits: str) -> tuple[bytes, DisplayProfile]:
    """Real LCD digits of the crops' training half side by side, and a profile whose region is the whole image."""
    from vision.ocr.digit_crops import real_crops

    by_digit: dict[str, list[Path]] = {}
    for path, truth in real_crops(shared_data / "sevenseg-digits", "train"):
        by_digit.setdefault(truth, []).append(path)
    glass = np.hstack([cv2.imread(str(by_digit[d][1])) for d in digits])
    h, w = glass.shape[:2]
    return encode_png(glass), DisplayProfile(polarity="dark", region=[(0, 0), (w, 0), (w, h), (0, h)])


def test_digits_that_read_differently_with_the_window_narrowed_are_a_guess_not_ok(shared_data, monkeypatch):
    """Real "131": the model trained on rendered displays alone reads "3", sure of the digit and of the window;
    squeezed to 0.7 of its width the window reads otherwise, so it is a guess."""
    import vision.ocr.sevenseg as sevenseg

    data, profile = _real_glass(shared_data, "131")
    result = read_display(data, profile, model=SECOND_OPINION)
    assert result.status == "uncertain" and result.text == "3" and result.confidence >= 0.9  # the best guess is given
    assert result.reason.startswith("the digits read differently with the window narrowed")
    monkeypatch.setattr(sevenseg, "NARROWER", 1.0)  # not squeezed, the same wrong reading passes as ok
    assert read_display(data, profile, model=SECOND_OPINION).status == "ok"


def test_a_reading_the_second_digit_model_disputes_is_a_guess_not_ok(shared_data, monkeypatch, tmp_path):
    """The shipped model (trained with real crops) reads real "727" right and sure; the second opinion, the model
    trained on rendered displays alone, reads "77": the reading is a guess. With itself as second opinion it is
    ok, and so it is read as a display's own model (a copy named in a gauge config), which reads alone."""
    from vision.ocr import sevenseg_model

    data, profile = _real_glass(shared_data, "727")
    result = read_display(data, profile)
    assert result.status == "uncertain" and result.text == "727" and result.confidence >= 0.9
    assert result.reason == "a second digit model, trained on rendered displays alone, reads 77"
    own = tmp_path / "line-7.onnx"
    own.write_bytes(DEFAULT_MODEL.read_bytes())
    sure = replace(result, status="ok", reason=None, seconds=ANY)
    assert read_display(data, profile.model_copy(update={"model": own})) == sure
    monkeypatch.setattr(sevenseg_model, "SECOND_OPINION", DEFAULT_MODEL)
    assert read_display(data, profile) == sure
