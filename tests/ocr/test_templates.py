"""Template fields: found by pattern, kept only when valid; configs fail with the key named."""

from __future__ import annotations

from dataclasses import replace

import pytest

from annotation.errors import LineInspectError
from vision.ocr.config import GAUGES_DIR, LABELS_DIR, LabelTemplate, load_gauge, load_template
from vision.ocr.results import Box, LabelResult, Word
from vision.ocr.templates import by_place, extract_fields, gs1_ok, luhn_ok, mod11_ok


def template(**fields) -> LabelTemplate:
    return LabelTemplate.model_validate({"name": "t", "fields": fields})


@pytest.mark.parametrize(
    ("check", "good"),
    [(luhn_ok, "79927398713"), (gs1_ok, "4006381333931"), (gs1_ok, "00012345600012"), (mod11_ok, "0306406152")],
)
def test_check_digits_accept_valid_numbers_and_reject_one_wrong_digit(check, good):
    assert check(good)
    for position in (0, len(good) // 2, len(good) - 1):
        wrong = good[:position] + str((int(good[position]) + 3) % 10) + good[position + 1 :]
        assert not check(wrong), wrong


def test_mod11_takes_x_as_ten():
    assert mod11_ok("080442957X")
    assert not mod11_ok("0804429571")


def test_a_date_must_be_a_real_date():
    t = template(date={"pattern": r"(?i:DATE)\s*(?P<value>\S+)", "type": "date", "formats": ["%Y-%m-%d"]})
    assert extract_fields(t, "DATE 2024-02-29")["date"].value == "2024-02-29"
    bad = extract_fields(t, "DATE 2023-02-29")["date"]
    assert bad.value is None and bad.raw == "2023-02-29" and "not a date" in bad.problem


def test_a_serial_whose_check_digit_fails_is_reported_not_guessed():
    t = template(serial={"pattern": r"S/N\s*(?P<value>\d+)", "check": "luhn", "required": True})
    field = extract_fields(t, "S/N 79927398710")["serial"]
    assert field.value is None and field.raw == "79927398710" and "luhn" in field.problem


def test_letters_misread_for_digits_are_repaired_only_when_the_check_digit_then_checks():
    t = template(serial={"pattern": r"S/N\s*(?P<value>[0-9OIl]+)", "digits_only": True, "check": "luhn"})
    assert extract_fields(t, "S/N 7992739B7l3".replace("B", "8"))["serial"].value == "79927398713"
    assert extract_fields(t, "S/N 4O12888888881881")["serial"].value == "4012888888881881"
    assert extract_fields(t, "S/N 4O12888888881882")["serial"].value is None


def test_a_slash_is_read_as_7_proven_by_a_check_digit_or_given_with_a_doubt():
    """NanumGothic's 7 reads as "/" ("GTIN: 88038/54202959"); a "/" that is a stray mark instead makes a number one
    digit too long, which a GS1 key's fixed length (8, 12, 13, 14, 17 or 18 digits) refuses. Without a check digit
    the 7 is the best guess, and a doubt: the label is uncertain."""
    shipped = load_template("default")
    assert extract_fields(shipped, "GTIN: 88038/54202959")["gtin"].value == "88038754202959"
    assert extract_fields(shipped, "GTIN: 88038/54202958")["gtin"].value is None  # the check digit fails
    assert extract_fields(shipped, "GTIN: 880508607/76/023")["gtin"].value is None  # 16 digits: no GS1 key
    assert not gs1_ok("880508607767023") and gs1_ok("88050860767023")
    assert extract_fields(shipped, "GTIN: 88038/54202959")["gtin"].doubt is None
    serial = extract_fields(shipped, "S/N: 2/68/02884")["serial"]
    assert serial.value == "2768702884" and "no check digit proves it" in serial.doubt
    assert extract_fields(shipped, "S/N: 2768702884")["serial"].doubt is None
    for name, key in (("default", "S/N:"), ("default-ko", "제조번호:")):  # the Korean template's serial too
        fields = extract_fields(load_template(name), f"{key} 2/68/02884")
        sure = {n: replace(f, confidence=0.99) for n, f in fields.items()}
        unsure = LabelResult("", [], sure, name, "tesserocr", 11, 0.1).unsure
        assert fields["serial"].value == "2768702884" and "serial: '2/68/02884': each '/' taken for a 7" in unsure[0]


def test_a_key_may_follow_a_border_read_as_a_glyph_but_not_another_word():
    """Where the print touches the label's edge, the edge reads as a glyph glued to the key ("IGTIN: ...|", rendered
    labels of the `margins` family): the shipped templates' keys start a word or follow one such glyph."""
    for name in ("default", "default-ko"):
        assert extract_fields(load_template(name), "IGTIN: 88094439323944|")["gtin"].value == "88094439323944"
        assert extract_fields(load_template(name), "XGTIN: 88094439323944")["gtin"].value is None
    fields = extract_fields(load_template("default"), "|P/N: AB-1234-C\nILOT: L230101A1\n[S/N: 4992739871")
    assert [fields[n].value for n in ("part_number", "lot", "serial")] == ["AB-1234-C", "L230101A1", "4992739871"]
    assert extract_fields(load_template("default"), "SLOT: L230101A1")["lot"].value is None


def test_a_slash_beside_a_7_may_be_its_stroke_read_twice_which_only_a_check_digit_tells():
    """NanumGothic's 7 also reads as "7/" or "/7" (GTIN 88028709533764 of rendered label seed 9503 read
    "88028/095337/64"): each "/" beside a 7 may be nothing. The check digit picks the reading, the first one passing
    with every "/" a 7 when that passes; a "/" dropped is a doubt, so the label is uncertain with its best guess."""
    shipped = load_template("default")
    gtin = extract_fields(shipped, "GTIN: 88028/095337/64")["gtin"]
    assert gtin.value == "88028709533764" and "stroke read twice; the check digit passes only so" in gtin.doubt
    assert extract_fields(shipped, "GTIN: 8805697787/2582")["gtin"].value == "88056977872582"
    assert extract_fields(shipped, "GTIN: 88028/095337/65")["gtin"].value is None  # no reading passes
    assert extract_fields(shipped, "GTIN: 88038/54202959")["gtin"].doubt is None  # no 7 beside: a 7, proven
    serial = extract_fields(shipped, "S/N: 2/768702884")["serial"]  # no check digit: every "/" a 7, in doubt
    assert serial.value == "27768702884" and "no check digit proves it" in serial.doubt


def test_a_lot_read_with_a_confusable_letter_is_given_but_never_ok():
    """Tesseract reads a 0 after a letter as O ("L230310R0" -> "L230310RO", sure of the word): the shipped templates
    name O confusable in lots, so such a reading is the reader's best guess, not an ok one."""
    for name, key in (("default", "LOT:"), ("default-ko", "로트:")):
        shipped = load_template(name)
        fields = extract_fields(shipped, f"{key} L230310RO")
        assert fields["lot"].value == "L230310RO" and "holds O" in fields["lot"].doubt
        sure = {n: replace(f, confidence=0.99) for n, f in fields.items()}
        result = LabelResult("", [], sure, name, "tesserocr", 11, 0.1)
        assert "lot: 'L230310RO' holds O, which the print does not tell from a digit (`confusable`)" in result.unsure
        assert extract_fields(shipped, f"{key} L230310R0")["lot"].doubt is None


def test_first_valid_match_wins_over_an_earlier_invalid_one():
    t = template(gtin={"pattern": r"(?P<value>\d{13})", "check": "gs1"})
    assert extract_fields(t, "4006381333932 then 4006381333931")["gtin"].value == "4006381333931"


def test_a_value_cut_short_inside_a_word_is_a_misread_not_a_shorter_value():
    shipped = load_template("default")
    # Tesseract read a 7 as "/" and a 1 as "A": the lot's pattern alone would take "L230" and the serial's "28527"
    fields = extract_fields(shipped, "LOT: L230/714G0\nS/N: 28527A3023")
    assert fields["serial"].value is None and fields["serial"].raw == "28527A3023"
    assert fields["serial"].problem == "'28527' runs on into 'A3023'"
    assert fields["lot"].value is None and "runs on into '/714G0'" in fields["lot"].problem
    assert extract_fields(shipped, "LOT: L230824]6")["lot"].problem == "'L230824' runs on into ']6'"  # J read as ]
    # a hyphen joins: "FZ-6857-J" read "FZ-6857-]" is not part number FZ-6857 (fresh draw 9300-9319: 5 labels so, ok)
    assert extract_fields(shipped, "P/N: FZ-6857-]")["part_number"].problem == "'FZ-6857' runs on into '-]'"
    # a value that ends at a space, a line's end or closing punctuation is whole (another field may follow it)
    fields = extract_fields(shipped, "S/N: 284527 LOT: L230714G0.\nP/N: 7731-A2)")
    got = (fields["serial"].value, fields["lot"].value, fields["part_number"].value)
    assert got == ("284527", "L230714G0", "7731-A2")
    # a later whole match still counts
    t = template(n={"pattern": r"N(?P<value>\d{3})"})
    assert extract_fields(t, "N123x N456")["n"].value == "456"


def test_missing_required_field_is_a_problem_and_optional_one_is_not():
    t = template(lot={"pattern": r"LOT (?P<value>\w+)", "required": True}, note={"pattern": r"NOTE (?P<value>\w+)"})
    fields = extract_fields(t, "nothing here")
    result = LabelResult("nothing here", [], fields, "t", "pytesseract", 11, 0.1)
    assert result.problems == ["lot: not found"] and not result.ok
    assert fields["note"].problem == "not found" and not fields["note"].required


def test_values_are_case_sensitive_unless_the_pattern_says_otherwise():
    t = template(lot={"pattern": r"(?i:lot)[: ]*(?P<value>[A-Z0-9]{5,})(?![A-Za-z0-9])"})
    assert extract_fields(t, "Lot: L2405A")["lot"].value == "L2405A"
    assert extract_fields(t, "LOT: L2405a")["lot"].value is None  # a lower-case letter is a misread


def test_compact_fields_lose_the_spaces_tesseract_inserts():
    t = template(pn={"pattern": r"P/N (?P<value>[A-Z]{2}[ ]?-[ ]?\d{4})", "compact": True})
    assert extract_fields(t, "P/N AX - 4471")["pn"].value == "AX-4471"
    for dashes in ("\u2014", "\u2013", "\u2212", "\u2014-", "--"):  # what Tesseract reads for a printed hyphen
        assert extract_fields(t, f"P/N AX{dashes}4471")["pn"].value == "AX-4471"


def test_every_shipped_config_loads():
    for path in LABELS_DIR.glob("*.yaml"):
        assert load_template(path.stem).fields, path
    kinds = {load_gauge(path.stem).kind for path in GAUGES_DIR.glob("*.yaml")}
    assert kinds == {"digital", "analog"}


def test_config_errors_name_the_file_and_the_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("fields:\n  serial:\n    pattern: 'S/N (?P<value>\\d+)'\n    check: crc32\n")
    with pytest.raises(LineInspectError, match=r"bad\.yaml: fields\.serial\.check"):
        load_template(path)
    path.write_text("fields:\n  lot:\n    pattern: 'LOT ((\\w+'\n")
    with pytest.raises(LineInspectError, match=r"fields\.lot\.pattern: .*not a valid regular expression"):
        load_template(path)
    path.write_text("kind: analog\npoints: [{angle: 0, value: 0}, {angle: 90, value: 5}, {angle: 45, value: 9}]\n")
    with pytest.raises(LineInspectError, match="clockwise"):
        load_gauge(path)


def test_a_template_s_min_confidence_decides_which_fields_are_a_guess(tmp_path):
    """default-ko asks for more confidence than default: the same reading is ok under one, a guess under the other."""
    assert load_template("default").min_confidence == 0.5 and load_template("default-ko").min_confidence == 0.7
    path = tmp_path / "strict.yaml"
    path.write_text("min_confidence: 0.8\nfields:\n  lot:\n    pattern: 'LOT: (?P<value>\\w+)'\n    required: true\n")
    template = load_template(path)
    fields = extract_fields(template, "LOT: K24B0917")
    fields["lot"] = replace(fields["lot"], confidence=0.75)
    strict = LabelResult("LOT: K24B0917", [], fields, "strict", "pytesseract", 11, 0.1, None, "prepared", 0.8)
    assert strict.status == "uncertain" and strict.unsure == ["lot: read 'K24B0917' with confidence 0.75"]
    assert replace(strict, min_confidence=load_template("default").min_confidence).status == "ok"
    path.write_text("min_confidence: 1.5\n")
    with pytest.raises(LineInspectError, match=r"strict\.yaml: min_confidence"):
        load_template(path)


def test_unknown_template_name_lists_the_known_ones():
    with pytest.raises(LineInspectError, match="known: .*shipping"):
        load_template("no-such-template")


def test_unreadable_and_unknown_keys_are_one_line_naming_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("fields:\n  lot: {pattern: 'LOT (\\w+)'\n")
    with pytest.raises(LineInspectError) as unreadable:
        load_template(path)
    assert str(unreadable.value).startswith(f"{path} is not valid YAML: line 3") and "\n" not in str(unreadable.value)
    path.write_text("kind: analog\nmin_value: 0\nmax_value: 10\nneedle_colour: red\n")
    with pytest.raises(LineInspectError) as unknown:
        load_gauge(path)
    assert str(unknown.value) == f"{path}: analog.needle_colour: Extra inputs are not permitted"


KOREAN = ["한빛 정밀 주식회사", "품번: KA-8160-Z", "로트: L240407K7", "제조번호: 5089032717", "제조일자: 2024-04-07"]


@pytest.mark.parametrize(
    ("line", "field", "value", "where"),
    [
        (2, "lot", "L240407K7", "between part_number and serial"),  # 로트 read as "SE"
        (1, "part_number", "KA-8160-Z", "before lot"),  # the first field: the line before the next one's
    ],
)
def test_a_field_whose_key_was_misread_is_found_by_its_place_and_is_a_doubt(line, field, value, where):
    shipped = load_template("default-ko")
    lines = list(KOREAN)
    lines[line] = "SE: " + lines[line].split(": ")[1]
    text = "\n".join(lines)
    fields = extract_fields(shipped, text)
    assert fields[field].problem == "not found"
    words = [Word(w, 0.9, Box(0, 40 * i, 20 * len(w), 30), i) for i, line in enumerate(lines) for w in line.split()]
    placed = by_place(shipped, text, words, fields)
    assert placed[field].value == value and placed[field].confidence == 0.9
    assert placed[field].doubt == f"its key was not read: found by its place {where}"
    assert LabelResult(text, words, placed, "default-ko", "tesserocr", 11, 0.1).status == "uncertain"
    assert {n: f for n, f in placed.items() if n != field} == {n: f for n, f in fields.items() if n != field}


@pytest.mark.parametrize(
    ("lines", "where"),
    [
        (["한빛 정밀 주식회사", "oe: KA-8160-Z", "Ge L240407K7", *KOREAN[3:]], "before serial"),  # no colon read
        ([*KOREAN[:2], "SE: L240407K7", "제조번: 5089032717", *KOREAN[4:]], "between part_number and date"),
    ],
)
def test_keys_misread_in_a_row_are_found_by_their_places(lines, where):
    shipped = load_template("default-ko")
    text = "\n".join(lines)
    fields = extract_fields(shipped, text)
    placed = by_place(shipped, text, [], fields)
    misread = [name for name, f in fields.items() if f.problem == "not found" and f.required]
    assert len(misread) == 2
    expected = dict(zip(["part_number", "lot", "serial"], ["KA-8160-Z", "L240407K7", "5089032717"], strict=True))
    for name in misread:
        assert placed[name].value == expected[name]
        assert placed[name].doubt == f"its key was not read: found by its place {where}"


@pytest.mark.parametrize(("gtin", "found"), [("88079998790079", True), ("88079998790078", False)])
def test_an_optional_field_is_placed_only_where_its_check_digit_proves_it(gtin, found):
    """GTIN, the last field and not required, its key read "6144:": placed after the date, the field before it, only
    when its check digit passes (a label without a GTIN may end in another number)."""
    shipped = load_template("default-ko")
    text = "\n".join([*KOREAN, f"6144: {gtin}"])
    fields = extract_fields(shipped, text)
    placed = by_place(shipped, text, [], fields)["gtin"]
    assert placed.value == (gtin if found else None)
    assert placed.doubt == ("its key was not read: found by its place after date" if found else None)


@pytest.mark.parametrize(
    "lines",
    [
        [*KOREAN[:2], "SE: L240407K7 외 2", *KOREAN[3:]],  # more than a key and the value on the line
        [*KOREAN[:2], "SE:", "L240407K7", *KOREAN[3:]],  # two lines between the neighbours: which is it?
        [*KOREAN[:2], "SE: L240407K7", "제조번: 5089032717", "외 2", *KOREAN[4:]],  # the next key is misread too,
        # and a line more than fields lies between the keys read
        [*KOREAN[:2], "SE: L24", *KOREAN[3:]],  # too short for a lot
    ],
)
def test_a_field_is_not_found_by_its_place_unless_the_place_is_plain(lines):
    shipped = load_template("default-ko")
    text = "\n".join(lines)
    fields = extract_fields(shipped, text)
    assert by_place(shipped, text, [], fields)["lot"] == fields["lot"]
