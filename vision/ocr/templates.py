"""Fields out of label text: find with the template's patterns, then prove them valid.

A field is only ever a value that was printed and passed its checks. Among several matches
the first valid one wins; when none is valid the field stays empty and says why, with the
text that was found, so a misread serial is reported rather than guessed or "corrected"
into a different part's number. The one repair made is reading letters as the digits they
resemble (O->0, I->1, ...) in fields declared digits-only, and only a check digit that then
checks lets such a value through.
"""

from __future__ import annotations

import re
from dataclasses import replace
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


def gs1_ok(digits: str) -> bool:
    """GS1 mod 10 (weights 3,1 from the right): GTIN-8/12/13/14, SSCC-18, GLN."""
    if not digits.isdigit() or len(digits) < 2:
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
        if not value.isdigit():
            return None, f"{raw!r} is not all digits"
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


def extract_field(name: str, spec: FieldSpec, text: str) -> FieldValue:
    first_problem: tuple[str, str] | None = None
    for match in spec.regex().finditer(text):
        if spec.format:
            raw = _assemble(spec.format, match.groupdict())
        else:
            raw = match.group("value") if "value" in match.re.groupindex else match.group(0)
        if raw is None:
            continue
        value, problem = _validate(spec, raw)
        if value is not None:
            return FieldValue(name, value, spec.required, raw=raw)
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


def field_confidences(fields: dict[str, FieldValue], words: list[Word]) -> dict[str, FieldValue]:
    """Each field that has a value with the least confidence of the words it was read from."""
    out = {}
    for name, f in fields.items():
        pieces = {_alnum(t) for t in (f.raw or "").split()} - {""}
        sources = [w.confidence for w in words if any(_overlap(_alnum(w.text), p) for p in pieces)]
        out[name] = replace(f, confidence=round(min(sources), 4)) if f.value is not None and sources else f
    return out


def _overlap(word: str, piece: str) -> bool:
    """The word is the piece, or one holds the other (a word of one character only as the whole piece)."""
    return bool(word) and (word == piece or (len(word) > 1 and word in piece) or (len(piece) > 1 and piece in word))


def _alnum(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum()).casefold()
