"""Fields out of label text: find with the template's patterns, then prove them valid.

A field is only ever a value that was printed and passed its checks. Among several matches
the first valid one wins; when none is valid the field stays empty and says why, with the
text that was found, so a misread serial is reported rather than guessed or "corrected"
into a different part's number. The repairs made are in fields declared digits-only: letters
read as the digits they resemble (O->0, I->1, ...), and a "/" read as 7 (some fonts' 7 reads so): proven where
the field has a check digit, else given with a doubt (the label is then uncertain, the value its best guess).
Beside a 7, a "/" may also be that 7's stroke read twice ("7/"): the check digit picks the reading, with a doubt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

from vision.ocr.config import FieldSpec, LabelTemplate
from vision.ocr.results import FieldValue, Word

_DIGIT_LOOKALIKES = str.maketrans(
    {
        "O": "0",
        "o": "0",
        "D": "0",
        "Q": "0",
        "I": "1",
        "l": "1",
        "|": "1",
        "i": "1",
        "Z": "2",
        "z": "2",
        "S": "5",
        "s": "5",
        "B": "8",
        "G": "6",
        "b": "6",
        "g": "9",
        "T": "7",
    }
)


def luhn_ok(digits: str) -> bool:
    """Luhn mod 10 (ISO/IEC 7812): serials, IMEIs, card-like numbers."""
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


GS1_LENGTHS = (8, 12, 13, 14, 17, 18)  # GTIN-8/12/13/14, GLN (13), GSIN (17), SSCC (18)


def gs1_ok(digits: str) -> bool:
    """GS1 mod 10 (weights 3,1 from the right) on a GS1 key's length: GTIN-8/12/13/14, SSCC-18, GLN."""
    if not digits.isdigit() or len(digits) not in GS1_LENGTHS:
        return False
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(ch) * (3 if i % 2 == 0 else 1) for i, ch in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def mod11_ok(value: str) -> bool:
    """ISO 7064-style mod 11 with weights 2.. from the right and X for 10 (ISBN-10 and many part numbers)."""
    if len(value) < 2 or not value[:-1].isdigit() or not (value[-1].isdigit() or value[-1] in "Xx"):
        return False
    total = sum(int(ch) * w for w, ch in enumerate(reversed(value[:-1]), start=2))
    check = (11 - total % 11) % 11
    return (10 if value[-1] in "Xx" else int(value[-1])) == check


CHECKS = {"luhn": luhn_ok, "gs1": gs1_ok, "mod11": mod11_ok}


def _validate(spec: FieldSpec, raw: str) -> tuple[str | None, str | None]:
    """(value, None) when valid, else (None, why not)."""
    value = re.sub(r"\s+", "", raw) if spec.compact or spec.digits_only or spec.type != "text" else raw.strip()
    if spec.digits_only:
        value = value.translate(_DIGIT_LOOKALIKES)
        if not value.replace("/", "").isdigit():
            return None, f"{raw!r} is not all digits"
        if spec.check:
            passing = _passing_sevens(spec.check, value)
            if not passing:
                return None, f"{value.replace('/', '7')!r} fails its {spec.check} check digit"
            return passing[0], None
        value = value.replace("/", "7")  # NanumGothic's 7 reads as "/"
    if spec.check and not CHECKS[spec.check](value):
        return None, f"{value!r} fails its {spec.check} check digit"
    if spec.type == "date":
        for fmt in spec.formats:
            try:
                return datetime.strptime(value, fmt).date().isoformat(), None
            except ValueError:
                continue
        return None, f"{value!r} is not a date ({' or '.join(spec.formats)})"
    if spec.type == "integer":
        if not re.fullmatch(r"[+-]?\d+", value):
            return None, f"{value!r} is not an integer"
        number = int(value)
        if (spec.min is not None and number < spec.min) or (spec.max is not None and number > spec.max):
            return None, f"{number} is outside {spec.min}..{spec.max}"
        return str(number), None
    return value, None


def _assemble(template: str, groups: dict[str, str | None]) -> str:
    """`format` of a field: {group}s with spaces removed; [parts] dropped when a group in them is empty."""
    parts = {k: re.sub(r"\s+", "", v or "") for k, v in groups.items()}

    def optional(m: re.Match[str]) -> str:
        return m.group(1) if all(parts.get(n) for n in re.findall(r"{(\w+)}", m.group(1))) else ""

    return re.sub(r"\[([^\]]*)\]", optional, template).format(**parts)


def _confusable(spec: FieldSpec, value: str) -> str | None:
    held = "".join(c for c in dict.fromkeys(value) if c in spec.confusable)
    return f"{value!r} holds {held}, which the print does not tell from a digit (`confusable`)" if held else None


def _sevens(digits: str) -> list[str]:
    """What digits with "/" in them may be: each "/" a 7 (NanumGothic's 7 reads as "/"), or, beside a 7, that 7's
    stroke read twice ("7/"): dropped."""
    out = [""]
    for i, ch in enumerate(digits):
        twice = ch == "/" and "7" in digits[max(0, i - 1) : i + 2]
        out = [o + d for o in out for d in (("7", "") if twice else ("7",) if ch == "/" else (ch,))]
    return out


def _passing_sevens(check: str, digits: str) -> list[str]:
    """Of what the digits may be (`_sevens`), those that pass the check digit: every "/" a 7 first."""
    return [v for v in _sevens(digits) if CHECKS[check](v)]


def _unproven_seven(spec: FieldSpec, raw: str) -> str | None:
    if not spec.digits_only or "/" not in raw:
        return None
    if not spec.check:
        return f"{raw.strip()!r}: each '/' taken for a 7 (some fonts' 7 reads so), and no check digit proves it"
    digits = re.sub(r"\s+", "", raw).translate(_DIGIT_LOOKALIKES)
    passing = _passing_sevens(spec.check, digits)
    if len(passing) > 1 or passing[0] != digits.replace("/", "7"):
        ways = f"{len(passing)} ways" if len(passing) > 1 else "only so"
        return f"{raw.strip()!r}: a '/' beside a 7 may be its stroke read twice; the check digit passes {ways}"
    return None


def _cut_short(text: str, end: int) -> str | None:
    """What the print goes on with when a match stops inside a word ("28527" of "28527/3023", a 7 read as "/";
    "L230824" of "L230824]6"; "FZ-6857" of "FZ-6857-]", a J read as "]"): a value cut there is part of a misread,
    not a value. Closing punctuation is not."""
    if text[end - 1 : end].isspace() or not text[end : end + 1].strip():
        return None  # the match ends at a word's end
    rest = text[end:].split(maxsplit=1)[0]
    return rest if rest[0] in "/\\-" or any(ch.isalnum() for ch in rest) else None


def extract_field(name: str, spec: FieldSpec, text: str) -> FieldValue:
    first_problem: tuple[str, str] | None = None
    for match in spec.regex().finditer(text):
        group = "value" if "value" in match.re.groupindex else 0
        if spec.format:
            raw = _assemble(spec.format, match.groupdict())
        else:
            raw = match.group(group)
        if raw is None:
            continue
        rest = _cut_short(text, match.end(group))
        if rest:
            first_problem = first_problem or (raw.strip() + rest, f"{raw.strip()!r} runs on into {rest!r}")
            continue
        value, problem = _validate(spec, raw)
        if value is not None:
            doubt = _confusable(spec, value) or _unproven_seven(spec, raw)
            return FieldValue(name, value, spec.required, raw=raw, doubt=doubt)
        first_problem = first_problem or (raw, problem or "invalid")
    if first_problem:
        return FieldValue(name, None, spec.required, raw=first_problem[0], problem=first_problem[1])
    return FieldValue(name, None, spec.required, problem="not found")


_DASHES = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2212", "-"))


def extract_fields(template: LabelTemplate, text: str) -> dict[str, FieldValue]:
    """Every field of the template; a printed hyphen that Tesseract reads as a dash, a minus sign or a run of
    them ("7731—-A2") counts as one."""
    text = re.sub(r"-{2,}", "-", text.translate(_DASHES))
    return {name: extract_field(name, spec, text) for name, spec in template.fields.items()}


# a word this close after a value, in letter heights, may be the rest of it (a space is about 0.6: a word one space
# after a value is a doubt too)
RUN_ON = 0.75
# a key of a few characters, read as anything, and its colon, or a space where the label prints none
KEY_MISREAD = r"^\s*(?:\S{0,5}[:.;]\s*|\S{1,5}\s+)?"


def by_place(
    template: LabelTemplate, text: str, words: list[Word], fields: dict[str, FieldValue]
) -> dict[str, FieldValue]:
    """Fields not found because their key was misread ("로트:" as "SE:"), found by their place instead (`place_of`),
    when that line is a short key, its colon and the field's value, nothing more. The value is validated like any
    other and carries a doubt: where the field is required the label is uncertain, but the value is given."""
    lines = text.split("\n")
    out = dict(fields)
    for name in template.fields:
        place = place_of(template, lines, fields, name)
        found = None if place is None else extract_alone(name, template.fields[name], lines[place.line])
        if place is not None and found is not None and found.value is not None:
            found = replace(found, doubt=found.doubt or f"its key was not read: found by its place {place.between}")
            out[name] = field_confidences({name: found}, words)[name]
    return out


@dataclass(frozen=True)
class Place:
    line: int
    between: str  # the fields read with their keys that fix it, for the doubt: "between part_number and serial"


def place_of(template: LabelTemplate, lines: list[str], fields: dict[str, FieldValue], name: str) -> Place | None:
    """The line of a field that was not found, by its place: the template lists its fields in print order, so it lies
    as many lines before the next field read with its key as there are fields between them, and as many after the one
    before (a field read with its key counts, valid or not: "품번 WU-85.40-N"; several keys may be misread in a row);
    the last fields, with none read after them, by the one before alone. Required fields, and optional ones a check
    digit proves (a GTIN whose key reads "6144:"). None when no field around it is read with its key, or the lines
    between two such fields do not match the fields between them."""
    f, names = fields[name], list(template.fields)
    if f.value is not None or f.problem != "not found" or not (f.required or template.fields[name].check):
        return None
    keyed = {n: _line_of(template.fields[n], lines) for n in names if fields[n].problem != "not found"}
    at = {n: line for n, line in keyed.items() if line is not None}
    k = names.index(name)
    after = next((n for n in names[k + 1 :] if n in at), None)
    before = next((n for n in reversed(names[:k]) if n in at), None)
    if after is not None:
        line = at[after] - (names.index(after) - k)
        if line < 0 or (before is not None and at[before] != line - (k - names.index(before))):
            return None
        return Place(line, f"between {before} and {after}" if before else f"before {after}")
    if before is None or at[before] + k - names.index(before) >= len(lines):
        return None
    return Place(at[before] + k - names.index(before), f"after {before}")


def extract_alone(name: str, spec: FieldSpec, text: str) -> FieldValue | None:
    """The field from text that holds its value alone, after at most a short key read as anything and its colon (or
    a space); None when the pattern's value part does not stand alone (no `value` group, or one that needs the rest)."""
    start = spec.pattern.find("(?P<value>")
    if start < 0:
        return None
    keyless = spec.model_copy(update={"pattern": KEY_MISREAD + spec.pattern[start:] + r"\s*$"})
    try:
        return extract_field(name, keyless, text)
    except re.error:
        return None


def _line_of(spec: FieldSpec, lines: list[str]) -> int | None:
    """The first line on which the field's pattern starts a match."""
    return next((i for i, line in enumerate(lines) if spec.regex().search(line)), None)


def field_confidences(fields: dict[str, FieldValue], words: list[Word]) -> dict[str, FieldValue]:
    """Each field that has a value with the least confidence of the words it was read from, and a doubt when the
    print runs on from its last word as if one word had been read as two."""
    out = {}
    for name, f in fields.items():
        sources = source_words(f, words)
        if f.value is None or not sources:
            out[name] = f
            continue
        confidence = round(min(w.confidence for w in sources), 4)
        out[name] = replace(f, confidence=confidence, doubt=f.doubt or _runs_on(sources, words, _pieces(f)))
    return out


def source_words(f: FieldValue, words: list[Word]) -> list[Word]:
    """The words a field's text was read from."""
    pieces = _pieces(f)
    return [w for w in words if any(_overlap(_alnum(w.text), p) for p in pieces)]


def _pieces(f: FieldValue) -> set[str]:
    return {_alnum(t) for t in (f.raw or "").split()} - {""}


def _runs_on(sources: list[Word], words: list[Word], pieces: set[str]) -> str | None:
    """The word after the value's last (in reading order, on its line) when closer than RUN_ON letter heights and
    not part of the value: "L2301" of a tilted "L230113W8" read as "L2301 13W8" may be the first half of a word, and
    so may "L23031" of "L230311X1" in a font whose 1s stand wide apart (half a letter between them)."""
    line = sources[0].line
    ends = [i for i, w in enumerate(words) if w.line == line and w in sources]  # never empty: sources[0] is one
    if ends[-1] + 1 == len(words):
        return None
    last, following = words[ends[-1]], words[ends[-1] + 1]
    a, b = last.box, following.box
    gap = max(b.x - a.x - a.width, a.x - b.x - b.width, b.y - a.y - a.height, a.y - b.y - b.height, 0)
    letter = max(min(a.width, a.height), min(b.width, b.height))  # across the line, however the photo is turned
    rest = _alnum(following.text)
    if following.line == line and gap < RUN_ON * letter and rest and not any(rest in p for p in pieces):
        return f"{last.text!r} runs on into {following.text!r} (a gap of {gap} px): one word read as two?"
    return None


def _overlap(word: str, piece: str) -> bool:
    """The word is the piece, or one holds the other (a word of one character only as the whole piece)."""
    return bool(word) and (word == piece or (len(word) > 1 and word in piece) or (len(piece) > 1 and piece in word))


def same_print(a: str, b: str) -> bool:
    """Two readings of one value agree, spaces and punctuation aside."""
    return _alnum(a) == _alnum(b)


def _alnum(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum()).casefold()
