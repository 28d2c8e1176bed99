"""Read a product or shipping label: text, word boxes and confidences, template fields.

Tesseract is called as few times as the label allows: once for a clear label, again with
another page-segmentation mode only when a required field is still missing or invalid, and
the orientation detector only when the text lines run vertically; a template with a second
script (Korean) adds one call that re-reads its Latin words with the Latin model. Fields are
validated in every pass, so keeping a valid field from any pass never admits a guess, and a field
that two passes read as two different valid values is in doubt. Last, each value's print is read again
alone, by Tesseract at another scale (required values) and by RapidOCR's recogniser: a value either reads
otherwise is in doubt too, and where RapidOCR reads a valid value Tesseract did not, its value is given, in doubt.
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass, replace

import cv2
import numpy as np

from vision.ocr import rapid
from vision.ocr.config import FieldSpec, LabelTemplate
from vision.ocr.image import decode_bgr, to_gray
from vision.ocr.label_image import PreparedLabel, lines_run_vertically, prepare, whole
from vision.ocr.results import Box, FieldValue, LabelResult, Word
from vision.ocr.templates import (
    RUN_ON,
    by_place,
    extract_alone,
    extract_fields,
    field_confidences,
    place_of,
    same_print,
    source_words,
)
from vision.ocr.tesseract import TsvWord, get_engine
from vision.preprocess import ImageDecodeError

MAX_SIDE = 1800  # 4K phone photos decode at half size: their print is still ~20 px high
PSM_ORDER = (11, 6, 4)  # sparse text first (labels are scattered fields), then block layouts
UPRIGHT_CONFIDENCE = 0.6  # below this mean word confidence, and with fields misread, check the orientation
SECOND_LOOK = 0.8  # required values read again at this share of the page's scale (0.6 and 1.4 did no better)
INK = 96  # grey levels from the paper's: print
TALL = 1.5  # a "word" this many times the height of the page's Latin words is a barcode's bars or a border
EMPTY_TEMPLATE = LabelTemplate(name="none")


@dataclass
class _Pass:
    psm: int
    words: list[Word]
    text: str
    fields: dict[str, FieldValue]
    page: PreparedLabel
    readings: dict[str, set[str]]  # each field's values read without a doubt, here and in the passes merged in
    page_boxes: list[Box]  # each word's box on the page read (`words` hold the photo's: on a turned page, larger)

    @property
    def score(self) -> tuple[int, float]:
        valid = sum(f.value is not None for f in self.fields.values())
        sure = sum(f.value is not None and f.doubt is None for f in self.fields.values())
        return valid + sure, sum(w.confidence * len(w.text) for w in self.words)


def read_label(
    data: bytes, template: LabelTemplate | None = None, engine: str = "pytesseract", psm: int | None = None
) -> LabelResult:
    """Image bytes to a LabelResult; an unreadable image or a blank one gives a reason, not an error.

    `engine`: pytesseract or tesserocr (Tesseract on the prepared page), or rapidocr (PP-OCR on the photo)."""
    template = template or EMPTY_TEMPLATE
    if engine == "rapidocr":
        return rapid.read_label_rapidocr(data, template)
    start = time.perf_counter()
    tess = get_engine(engine)
    try:
        gray = to_gray(decode_bgr(data, max_side=MAX_SIDE))
    except ImageDecodeError as exc:
        return _empty(template, tess.name, start, f"unreadable image: {exc}")
    languages = template.languages
    turns = 0
    height = template.text_height
    page = prepare(gray, target_height=height)
    if lines_run_vertically(255 - page.image):
        detected = _quarter_turns(tess, page)
        turns = detected if detected in (1, 3) else 1  # the glyphs say a quarter turn; the detector says which
        page = prepare(gray, quarter_turns=turns, target_height=height)
    best = _passes(tess, page, languages, psm, template)
    if _confidence(best) < UPRIGHT_CONFIDENCE and any(_misread(f) for f in best.fields.values()):
        extra = _quarter_turns(tess, page)  # upside down, or the other quarter turn
        if extra:
            turned = _passes(tess, prepare(gray, turns + extra, target_height=height), languages, psm, template)
            best = _merge(turned, best) if turned.score > best.score else _merge(best, turned)
    source = "prepared"
    if template.fields and any(_misread(f) for f in best.fields.values()):
        # the preparation may have spoiled what the photo itself shows: read that too (one pass, the mode kept)
        plain = _read(tess, whole(gray, turns), languages, best.psm, template)
        if plain.score[0] > best.score[0]:
            best, source = _merge(plain, best), "whole"
        else:
            best.readings = _readings(best, plain)  # what it read still counts
    best.fields = _disputed(best)
    if template.fields and best.words:
        best.fields = by_place(template, best.text, best.words, best.fields)
        best.fields = _second_look(tess, best, template, languages[0])
    reason = None if best.words else "no text found"
    return LabelResult(
        best.text,
        best.words,
        best.fields,
        template.name,
        tess.name,
        best.psm,
        time.perf_counter() - start,
        reason,
        source,
        template.min_confidence,
    )


def _passes(tess, page: PreparedLabel, languages: list[str], psm: int | None, template: LabelTemplate) -> _Pass:
    """Read with the first page-segmentation mode, and the next ones while a field is misread."""
    fixed = psm or (None if template.psm == "auto" else int(template.psm))
    best: _Pass | None = None
    for mode in (fixed,) if fixed else PSM_ORDER:
        current = _read(tess, page, languages, mode, template)
        best = _merge(current, best) if best is None or current.score > best.score else _merge(best, current)
        if best.words and not any(_misread(f) for f in best.fields.values()):
            break
    assert best is not None
    return best


def _quarter_turns(tess, page: PreparedLabel) -> int:
    """Clockwise quarter turns the prepared page needs, from Tesseract's orientation detector (0 if unsure)."""
    turns = tess.orientation(page.image)
    return 0 if turns is None else turns // 90


def _confidence(p: _Pass) -> float:
    chars = sum(len(w.text) for w in p.words)
    return sum(w.confidence * len(w.text) for w in p.words) / chars if chars else 0.0


def _misread(f: FieldValue) -> bool:
    """Worth another pass: a required field not read or read with a doubt, or any field read but invalid."""
    return (f.required and (f.value is None or f.doubt is not None)) or f.problem not in (None, "not found")


def _read(tess, page: PreparedLabel, languages: list[str], psm: int, template: LabelTemplate) -> _Pass:
    raw = _words(tess, page.image, languages, psm)
    back = np.linalg.inv(page.to_prepared)
    lines: dict[tuple[int, int, int], list[TsvWord]] = {}
    for w in raw:
        lines.setdefault(w.line_key, []).append(w)
    words: list[Word] = []
    page_boxes: list[Box] = []
    text_lines: list[str] = []
    for index, key in enumerate(sorted(lines, key=lambda k: (min(w.top for w in lines[k]), k))):
        line = sorted(lines[key], key=lambda w: w.left)
        text_lines.append(" ".join(w.text for w in line))
        words += [Word(w.text, round(w.confidence / 100, 4), _photo_box(w, back), index) for w in line]
        page_boxes += [Box(w.left, w.top, w.width, w.height) for w in line]
    text = "\n".join(text_lines)
    fields = field_confidences(extract_fields(template, text), words)
    readings = {name: {f.value} for name, f in fields.items() if f.value is not None and f.doubt is None}
    return _Pass(psm, words, text, fields, page, readings, page_boxes)


def _words(tess, image: np.ndarray, languages: list[str], psm: int) -> list[TsvWord]:
    """Tesseract's words; on a mixed-script label, each run of Latin words re-read by the first language alone.

    Tesseract decodes each word first with the language of the word before it and keeps that
    reading when it looks plausible, so a Latin value after a Hangul key ("로트: L240926G3") is
    read by the Korean model, which has seen little Latin print (L becomes "[", G and D 0) and
    may split one word in two ("[24032 7400" for L240327U0): Latin pieces that close together are
    re-read as one, so the Latin model decides where its words end.
    """
    words = _rows_as_lines([w for w in tess.words(image, "+".join(languages), psm) if w.confidence >= 0])
    if len(languages) < 2:
        return words
    heights = [w.height for w in words if not _other_script(w.text)]
    tall = TALL * float(np.median(heights)) if heights else 0.0
    runs: list[list[int]] = []
    for i, w in enumerate(words):
        if _other_script(w.text) or w.height > tall:
            continue
        if runs and runs[-1][-1] == i - 1 and _pieces_of_one_word(words[i - 1], w):
            runs[-1].append(i)
        else:
            runs.append([i])
    rereads = dict(zip((run[0] for run in runs), _reread(tess, image, words, runs, languages[0]), strict=True))
    latin = {i for run in runs for i in run}
    return [r for i, w in enumerate(words) for r in (rereads.get(i, []) if i in latin else [w])]


def _rows_as_lines(words: list[TsvWord]) -> list[TsvWord]:
    """The words, each of Tesseract's lines that shares a row of print with another joined to it: sparse text
    (psm 11) may give a key and its value lines of their own ("품번" and "VG-4074-G", side by side). Lines share a
    row when the bands of their words (median top to median bottom) overlap by half the thinner one."""
    lines: dict[tuple[int, int, int], list[TsvWord]] = {}
    for w in words:
        lines.setdefault(w.line_key, []).append(w)
    band = {k: (np.median([w.top for w in ws]), np.median([w.top + w.height for w in ws])) for k, ws in lines.items()}
    rows: list[list[tuple[int, int, int]]] = []
    for key in sorted(lines, key=lambda k: band[k]):
        row = next((r for r in rows if _same_row(band[r[0]], band[key])), None)
        if row is None:
            rows.append([key])
        else:
            row.append(key)
    joined = {k: row[0] for row in rows for k in row}
    return [replace(w, line_key=joined[w.line_key]) for w in words]


def _same_row(a: tuple[float, float], b: tuple[float, float]) -> bool:
    overlap = min(a[1], b[1]) - max(a[0], b[0])
    return overlap >= 0.5 * min(a[1] - a[0], b[1] - b[0])


def _pieces_of_one_word(before: TsvWord, after: TsvWord) -> bool:
    """Closer than half a letter's height on one line, the first not a key (ending in a colon): a Hangul key misread
    as Latin must not join its value, or the value is re-read beside the key's glyphs."""
    gap = after.left - (before.left + before.width)
    close = gap < max(before.height, after.height) / 2
    return before.line_key == after.line_key and close and not before.text.endswith(":")


def _other_script(text: str) -> bool:
    return any(ch.isalpha() and "LATIN" not in unicodedata.name(ch, "") for ch in text)


def _reread(tess, image: np.ndarray, words: list[TsvWord], runs: list[list[int]], language: str) -> list[list[TsvWord]]:
    """Runs of words read again by `language` alone, in one call: each run's crop is stacked one per
    row on a blank page, so no neighbour's script sways them. A run the second reading misses keeps
    its first words."""
    if not runs:
        return []
    spans = [(_columns(words, run[0], image.shape[1])[0], _columns(words, run[-1], image.shape[1])[1]) for run in runs]
    rows = [(min(_rows(words[i])[0] for i in run), max(_rows(words[i])[1] for i in run)) for run in runs]
    crops = [image[slice(*r), slice(*span)] for r, span in zip(rows, spans, strict=True)]
    found: list[list[TsvWord]] = [[] for _ in runs]
    for k, row in enumerate(_read_stacked(tess, crops, language)):
        first, last = words[runs[k][0]], words[runs[k][-1]]
        for r in row:
            x = r.left + spans[k][0]  # back in the page's columns
            if x < last.left + last.width and x + r.width > first.left:  # a neighbour's colon caught beside it is not
                found[k].append(replace(r, left=x, top=r.top + rows[k][0], line_key=first.line_key))
    return [sorted(got, key=_left) or [words[i] for i in run] for run, got in zip(runs, found, strict=True)]


def _read_stacked(tess, crops: list[np.ndarray], language: str) -> list[list[TsvWord]]:
    """Crops stacked one per row on a blank page, a row's height apart, read in one call: each crop's words, in
    the crop's own pixels and left to right."""
    gap = max(c.shape[0] for c in crops)
    tops = np.cumsum([gap] + [c.shape[0] + gap for c in crops])  # row k spans tops[k]..tops[k+1]
    page = np.full((int(tops[-1]), max(c.shape[1] for c in crops) + 2 * gap), 255, np.uint8)
    for crop, top in zip(crops, tops[:-1], strict=True):
        page[top : top + crop.shape[0], gap : gap + crop.shape[1]] = crop
    rows: list[list[TsvWord]] = [[] for _ in crops]
    for r in tess.words(page, language, 6):
        k = int(np.searchsorted(tops, r.top + r.height / 2, side="right")) - 1
        if r.confidence >= 0 and 0 <= k < len(crops):
            rows[k].append(replace(r, left=r.left - gap, top=r.top - int(tops[k])))
    return [sorted(row, key=_left) for row in rows]


def _rows(w: TsvWord) -> tuple[int, int]:
    """Generous above and below: the other script's boxes can clip a J's tail."""
    dy = max(4, w.height // 4)
    return max(0, w.top - dy), w.top + w.height + dy


def _columns(words: list[TsvWord], i: int, width: int) -> tuple[int, int]:
    """Out to the neighbours on the line (a word's height at most): the other script's boxes can
    leave out a thin first or last glyph, such as the 1 that a key's box half covers."""
    w = words[i]
    line = [o for o in words if o.line_key == w.line_key and o is not w]
    before = [o.left + o.width for o in line if o.left + o.width <= w.left + w.width // 2]
    after = [o.left for o in line if o.left >= w.left + w.width // 2]
    left = max([w.left - w.height, *before])
    right = min([w.left + w.width + w.height, *after])
    return max(0, min(left, w.left - 4)), min(width, max(right, w.left + w.width + 4))


def _left(w: TsvWord) -> int:
    return w.left


def _second_look(tess, best: _Pass, template: LabelTemplate, language: str) -> dict[str, FieldValue]:
    """The fields' print read again, alone: by Tesseract at SECOND_LOOK of the page's scale, and by RapidOCR's
    recogniser (when installed; Tesseract's look is of the required fields alone). A value that then reads otherwise
    ("L24080521", then "L2408052Z1", of a printed L240805Z1) was the engine's pick between look-alikes, and is a
    doubt. Where RapidOCR reads a valid value other than Tesseract's (valid, in doubt or invalid: "L22120926" or
    "FZ-6857-]" of L221209Z6 and FZ-6857-J; or the same print, read as another value: "4892166 7/62", its "/" a 7),
    its value is given, in doubt: of such disagreements on development labels
    it was right in 10 of 12, Tesseract in none; but not over a value its check digit proves ("8801333161381", a
    digit short, passes as a GTIN-13 too). Fields whose words are not on the kept pass's page (taken from another
    pass) are left as they are."""
    crops = _value_crops(best, template)
    if not crops:
        return best.fields
    images = [wide for _, wide, _ in crops.values()]
    required = [name for name in crops if best.fields[name].required]  # only theirs: each row sways the others
    scaled = [
        cv2.resize(crops[n][0], None, fx=SECOND_LOOK, fy=SECOND_LOOK, interpolation=cv2.INTER_AREA) for n in required
    ]
    again_read = dict(zip(required, _read_stacked(tess, scaled, language), strict=True)) if required else {}
    rapid_reads = rapid.recognise(images) if rapid.available() else [None] * len(crops)
    fields = dict(best.fields)
    for (name, (_, _, printed)), other in zip(crops.items(), rapid_reads, strict=True):
        f = fields[name]
        raw = f.raw or printed
        again = " ".join(w.text for w in again_read[name]) if name in again_read else raw
        given = extract_alone(name, template.fields[name], other) if other is not None else None
        valid = given.value if given is not None else None
        differs = other is not None and (
            f.value is None or valid not in (None, f.value) or not _agrees(other, raw, valid, f.value)
        )
        if differs:
            proven = f.value is not None and template.fields[name].check  # by its check digit: kept
            if valid is not None and not proven:
                doubt = f"Tesseract read {raw!r}; RapidOCR reads {other!r}, given"
                fields[name] = replace(given, confidence=f.confidence, doubt=doubt)
            elif f.value is not None and not f.doubt:
                fields[name] = replace(f, doubt=f"read {raw!r}; RapidOCR reads {other!r}")
        elif (
            f.value is not None
            and not f.doubt
            and not _agrees(again, raw, _value_alone(name, template, again), f.value)
        ):
            fields[name] = replace(f, doubt=f"read {raw!r}, then {again!r} at another scale")
    return fields


def _agrees(reading: str, raw: str, reading_value: str | None, value: str) -> bool:
    """Another reading of a value's crop agrees with the value: the same print, or a reading that gives that value (a
    neighbour's glyph read beside it aside: ":3112806306"); `reading_value` is what `extract_alone` takes from it."""
    return same_print(reading, raw) or reading_value == value


def _value_alone(name: str, template: LabelTemplate, text: str) -> str | None:
    found = extract_alone(name, template.fields[name], text)
    return found.value if found is not None else None


def _value_crops(best: _Pass, template: LabelTemplate) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """The page around each field's print, the same reaching out for print no word holds (`_reach`: for RapidOCR;
    Tesseract reads a neighbour's glyph beside a value into it), and the print as read: the words it was read from
    (valid or not) on the line of the first; for a required field not found, the words after its key ("LOT:
    Le20228R7"), or else its line by its place ("모트: L220/728W5", key and all)."""
    crops = {}
    lines = best.text.split("\n")
    for name, f in best.fields.items():
        if f.raw:
            sources = source_words(f, best.words)
        elif f.required:
            sources = _after_key(template.fields[name], best.words)
            if not sources:
                place = place_of(template, lines, best.fields, name)
                sources = [w for w in best.words if place is not None and w.line == place.line]
        else:
            continue
        line = [w for w in sources if w.line == sources[0].line]
        if not line:
            continue
        printed = " ".join(w.text for w in line)
        if f.raw and not same_print(printed, f.raw):
            continue  # taken from another pass: this page's words hold a piece of it at most ("40114W2")
        boxes = _in_band(best, line[0].line, _with_run_on(best, line))
        crop, wide = _crop(best.page.image, boxes), _crop(best.page.image, boxes, _reach(best, line[0].line, boxes))
        if crop is not None and wide is not None:
            crops[name] = crop, wide, printed
    return crops


def _with_run_on(best: _Pass, words: list[Word]) -> list[Box]:
    """The page boxes of the words, and of the words after them on their line that run on from them (closer than
    RUN_ON letter heights, as the field's run-on doubt has it): Tesseract may split a value at a wide glyph ("L22041"
    and "7N8" of L220417N8, "L23031" and "1X1" of L230311X1). A word that is not part of the value only makes
    RapidOCR's reading invalid, and such a value is in doubt already."""
    on_line = sorted(
        ((w, b) for w, b in zip(best.words, best.page_boxes, strict=True) if w.line == words[0].line),
        key=lambda pair: pair[1].x,
    )
    boxes = [b for w, b in on_line if w in words]
    last = max(boxes, key=lambda b: b.x + b.width)
    for w, b in on_line:
        if w not in words and _runs_on_from(last, b):
            boxes.append(b)
            last = b
    return boxes


def _runs_on_from(last: Box, b: Box) -> bool:
    """b starts after last ends (half a letter of overlap allowed), closer than RUN_ON letter heights, in its row."""
    gap, letter = b.x - (last.x + last.width), max(b.height, last.height)
    return -letter / 2 < gap < RUN_ON * letter and _same_row((last.y, last.y + last.height), (b.y, b.y + b.height))


def _reach(best: _Pass, line: int, boxes: list[Box]) -> tuple[int, int]:
    """How far a crop of the boxes reaches left and right for print no word holds: the ink between them and their
    neighbours on the line (a letter's height out at most), as a serial's first digit dropped by Tesseract ("3" of
    "번호: 3112806306", in no word's box). Blank gaps give none: more of the page around a value sways RapidOCR."""
    x0, x1 = min(b.x for b in boxes), max(b.x + b.width for b in boxes)
    y0, y1 = min(b.y for b in boxes), max(b.y + b.height for b in boxes)
    letter = int(np.median([b.height for b in boxes]))
    others = [b for w, b in zip(best.words, best.page_boxes, strict=True) if w.line == line and b not in boxes]
    left = max([x0 - letter, *(b.x + b.width for b in others if b.x + b.width <= x0)])
    right = min([x1 + letter, *(b.x for b in others if b.x >= x1)])
    page = best.page.image[max(0, y0) : y1]
    paper = np.median(page)
    ink = np.flatnonzero((np.abs(page.astype(np.int16) - paper) > INK).any(axis=0))
    before, after = ink[(ink >= max(0, left)) & (ink < x0)], ink[(ink >= x1) & (ink < right)]
    margin = letter // 3  # as `_crop` pads
    reach_left = x0 - int(before.min()) + margin if before.size else 0
    reach_right = int(after.max()) + 1 - x1 + margin if after.size else 0
    return reach_left, reach_right


def _in_band(best: _Pass, line: int, boxes: list[Box]) -> list[Box]:
    """The boxes, those taller than TALL times the page's typical word cut to the band of the line's other words:
    Tesseract's box of a word can reach from the line above to the line below ("4892166762", 200 px high on a
    page of 82 px print), and a crop of it reads the neighbours' print."""
    tall = TALL * float(np.median([b.height for b in best.page_boxes]))
    band = [b for w, b in zip(best.words, best.page_boxes, strict=True) if w.line == line and b.height <= tall]
    if not band or all(b.height <= tall for b in boxes):
        return boxes
    top, bottom = min(b.y for b in band), max(b.y + b.height for b in band)
    cut = [(b, max(b.y, top), min(b.y + b.height, bottom)) for b in boxes]
    return [b if b.height <= tall or y1 <= y0 else Box(b.x, y0, b.width, y1 - y0) for b, y0, y1 in cut]


def _after_key(spec: FieldSpec, words: list[Word]) -> list[Word]:
    """The words after the first match of the field's key (its pattern before the value) on a line; none when the
    pattern has no key before a `value` group, or its key's part does not stand alone."""
    start = spec.pattern.find("(?P<value>")
    if start <= 0:
        return []
    try:
        key = re.compile(spec.pattern[:start])
    except re.error:
        return []
    for line in sorted({w.line for w in words}):
        on_line = [w for w in words if w.line == line]
        ends = np.cumsum([len(w.text) + 1 for w in on_line]) - 1  # each word's end in the line's text
        found = key.search(" ".join(w.text for w in on_line))
        if found and found.end() > 0:
            rest = [w for w, end in zip(on_line, ends, strict=True) if end > found.end()]
            if rest:
                return rest
    return []


def _crop(image: np.ndarray, boxes: list[Box], reach: tuple[int, int] = (0, 0)) -> np.ndarray | None:
    """The image around the boxes, a third of a letter's height out (left and right out to `reach` where that is
    further), as dark print on light: a page left light on dark (a dark label on a light table) would stack its
    crops on the white page as dark blocks that read as nothing."""
    x0, y0 = min(b.x for b in boxes), min(b.y for b in boxes)
    x1, y1 = max(b.x + b.width for b in boxes), max(b.y + b.height for b in boxes)
    pad = (y1 - y0) / 3
    h, w = image.shape
    x0, x1 = int(max(0, x0 - max(pad, reach[0]))), int(min(w, x1 + max(pad, reach[1])))
    y0, y1 = int(max(0, y0 - pad)), int(min(h, y1 + pad))
    if x1 - x0 <= 2 or y1 - y0 <= 2:
        return None
    crop = image[y0:y1, x0:x1]
    return 255 - crop if np.median(crop) < 128 else crop


def _merge(primary: _Pass, other: _Pass | None) -> _Pass:
    """The primary pass, with valid fields it lacks, or reads only with a doubt, taken from the other where it reads
    them without one (each was validated, and keeps the confidence of the words it was read from there)."""
    if other is None:
        return primary
    fields = {name: _better(f, other.fields[name]) for name, f in primary.fields.items()}
    readings = _readings(primary, other)
    return _Pass(primary.psm, primary.words, primary.text, fields, primary.page, readings, primary.page_boxes)


def _readings(a: _Pass, b: _Pass) -> dict[str, set[str]]:
    return {name: a.readings.get(name, set()) | b.readings.get(name, set()) for name in a.fields}


def _better(primary: FieldValue, other: FieldValue) -> FieldValue:
    """The primary pass's field, unless the other reads it and the primary misses it or has a doubt the other lacks."""
    if other.value is None or (primary.value is not None and (primary.doubt is None or other.doubt is not None)):
        return primary
    return other


def _disputed(p: _Pass) -> dict[str, FieldValue]:
    """A field that another pass read otherwise, both without a doubt, is in doubt: the engine picked one of them
    (a serial's first digit outside one pass's word box: "3112806306", then "112806306")."""
    fields = dict(p.fields)
    for name, f in p.fields.items():
        others = sorted(p.readings.get(name, set()) - {f.value})
        if f.value is not None and f.doubt is None and others:
            fields[name] = replace(f, doubt=f"read {f.value!r}, and {others[0]!r} in another pass")
    return fields


def _photo_box(w: TsvWord, back: np.ndarray) -> Box:
    corners = np.float32(
        [[w.left, w.top], [w.left + w.width, w.top], [w.left + w.width, w.top + w.height], [w.left, w.top + w.height]]
    )
    mapped = cv2.perspectiveTransform(corners[None], back)[0]
    (x0, y0), (x1, y1) = mapped.min(0), mapped.max(0)
    return Box(int(x0), int(y0), int(np.ceil(x1 - x0)), int(np.ceil(y1 - y0)))


def _empty(template: LabelTemplate, engine: str, start: float, reason: str) -> LabelResult:
    fields = extract_fields(template, "")
    seconds, sure = time.perf_counter() - start, template.min_confidence
    return LabelResult("", [], fields, template.name, engine, None, seconds, reason, "prepared", sure)
