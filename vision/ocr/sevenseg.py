"""Read a seven-segment display: find it, straighten it, read the line, make it a number.

Stock Tesseract has no model of segment shapes and reads at most one rendered readout in
five right; the line reader here (`sevenseg_model`) is trained on the project's own
rendered displays and the real LCD crops' training half. Polarity (dark LCD segments or bright LED ones) comes
from the gauge profile, or both are tried and the more confident reading wins (within TIE, the glass's own: a lone
"8" cropped close reads "1" in its dark gaps as surely as "8" in its segments). A fixed camera's gauge config
may say where the display is (`region`); otherwise the reader finds it, and a window found on part of the glass
grows while widening it reads more sure digits. The photo itself is the last window tried: a photo cropped to the
display has no panel around the glass to find it by. A found window read sure ends the search, but if its reading
is in doubt the photo is read too, and replaces it when it reads more digits with no doubt at all (on a crop the
window found may be one digit of the glass; a close-up cut by the photo's edge reads no more digits whole). A
timer's or clock's colon is read as a character ("12:34"; its value counts in the last field's unit, see
`reading_value`); a gauge whose config says it shows a time (`time_fields`) gets back a colon blinked off, which
alone would leave the digits reading as a number.

A reading is `ok` only when every digit (and colon) is sure, no digit between two was
read as nothing, the window holds the whole readout (read again one digit height wider on both sides, the window
must show the same digits: a window found on part of the glass reads "3" of "3328" with full confidence), the window
squeezed to 0.7 of its width reads the same (segment shapes the model knows survive that, a shape it never learned
and reads with false confidence often does not), and, for the shipped reader, a second model trained on rendered
displays alone reads the same digits and colons (README gives the figures). Anything less is `uncertain`, with the
reading as the best guess. The rules were set on rendered displays, the odd-numbered gas-pump photos and the real
LCD crops' training half; `bench ocr` measures the share of ok readings and their accuracy on every set.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vision.ocr.config import DisplayProfile
from vision.ocr.displays import PAD, STRIP_HEIGHT, find_displays, order_corners, straighten, text_rows
from vision.ocr.image import decode_bgr
from vision.ocr.results import Box, Digit, DisplayResult
from vision.ocr.sevenseg_model import (
    DEFAULT_MODEL,
    INPUT_HEIGHT,
    CharReading,
    load_model,
    second_opinion,
    strip_input,
)
from vision.preprocess import ImageDecodeError, probe

MIN_CONFIDENCE = 0.5  # below this a character is more likely glare than a digit
MIN_MEAN_CONFIDENCE = 0.7  # a reading less sure than this is only a guess
SURE = 0.9  # every digit of an ok reading is this sure; a window whose digits are ends the search
WIDER = 1.0  # the whole-readout check reads the window this many strip heights wider on each side
GROWTH = 3  # a window found on part of the glass is widened at most this many times to find the rest
NARROWER = 0.7  # the shape check reads the window squeezed to this share of its width (0.85 and 0.5: README)
MAX_STEP = 1.6  # digits read further apart than this many digit cells have one between them read as nothing
TIE = 0.01  # a window's two polarities read within this score of each other: the glass's own polarity is kept
MAX_SIDE = 1600  # displays are large in the frame; bigger photos are decoded reduced


@dataclass(frozen=True)
class _Reading:
    chars: list[CharReading]
    strip: np.ndarray  # the window, straightened
    homography: np.ndarray
    strip_height: int
    strip_width: int
    corners: np.ndarray  # the window in the photo (the photo's own corners when it is read whole)
    dark: bool
    given: bool  # the window is a gauge config's region or the photo itself, not one found (`straighten`)

    @property
    def sureness(self) -> float:
        """The digits' mean confidence (0 without digits)."""
        digits = [c.confidence for c in self.chars if c.char.isdigit()]
        return float(np.mean(digits)) if digits else 0.0

    @property
    def score(self) -> float:
        """Sureness weighted by up to three digits: a window with a whole readout beats one with a stray digit."""
        return self.sureness * min(sum(c.char.isdigit() for c in self.chars), 3)


def read_display(data: bytes, profile: DisplayProfile | None = None, model: Path = DEFAULT_MODEL) -> DisplayResult:
    """Image bytes to a DisplayResult; an unreadable image or no display gives a reason, not an error. The profile's
    own digit model, when it names one, reads in place of `model`."""
    start = time.perf_counter()
    profile = profile or DisplayProfile()
    try:
        image = decode_bgr(data, max_side=MAX_SIDE)
    except ImageDecodeError as exc:
        return _empty(f"unreadable image: {exc}", start, profile)
    reader, second = load_model(profile.model or model), second_opinion(profile.model or model)
    polarities = {"dark": [True], "bright": [False], "auto": [True, False]}[profile.polarity]
    h, w = image.shape[:2]
    frame = np.float32([[0, 0], [w, 0], [w, h], [0, h]])  # last: the photo may be cropped to the display
    if profile.region is not None:  # a fixed camera: the gauge config says where the glass is
        found = [np.float32(profile.region) * (max(h, w) / max(probe(data)[1:]))]
    else:
        found = [c.corners for c in find_displays(image)] + [frame]
    best: _Reading | None = None
    for corners in found:
        given = profile.region is not None or corners is frame
        for reading in _readings(reader, corners, image, given, polarities, profile.row):
            if best is None or reading.score > best.score:
                best = reading
        if best is not None and best.sureness >= SURE:
            break  # windows come best first: once one reads clearly, the others are distractions
    if best is None and profile.row is not None:
        return _empty(f"no display with a row {profile.row} of digits found", start, profile)
    widened = None
    if best is not None and not best.given and profile.row is None:
        best, widened = _grown(best, image, reader)
    readers = (reader, second)
    doubt = _doubt(best, image, readers, profile.row, polarities, widened)
    if doubt is not None and best is not None and not best.given:
        photo = _whole_readout(best, image, frame, readers, polarities, profile.row)
        if photo is not None:
            best, doubt = photo, None
    return _result(best, profile, start, doubt)


def _whole_readout(best: _Reading, image: np.ndarray, frame: np.ndarray, readers, polarities, row) -> _Reading | None:
    """The photo itself read as the window, when that reads more digits than the found window `best` and is sure
    of them (no doubt at all), else None. On a photo cropped to the display the windows found are pieces of the
    glass (a digit, a segment), and a piece read sure ends the search in doubt: "01" of 6:01:01, "7" of 61."""
    readings = _readings(readers[0], frame, image, True, polarities, row)
    photo = max(readings, key=lambda r: r.score, default=None)
    if photo is None or len(_digits(photo.chars)) <= len(_digits(best.chars)):
        return None
    return photo if _doubt(photo, image, readers, row, polarities) is None else None


def _readings(
    reader, corners: np.ndarray, image: np.ndarray, given: bool, polarities: list[bool], row: int | None
) -> list[_Reading]:
    """A window's readings, one per polarity in which it shows the profile's row (or any digits)."""
    strip, homography = straighten(image, corners, given)
    found = [(dark, *part) for dark in polarities if (part := _row_of(strip, dark, row)) is not None]
    inputs = [strip_input(strip[top:bottom], dark) for dark, top, bottom in found]
    readings = []
    for (dark, top, bottom), chars in zip(found, reader.read(inputs) if inputs else [], strict=True):
        shift = np.array([[1, 0, 0], [0, 1, top], [0, 0, 1]], np.float64)
        part = strip[top:bottom]
        readings.append(_Reading(chars, part, homography @ shift, part.shape[0], part.shape[1], corners, dark, given))
    if len(readings) == 2 and abs(readings[0].score - readings[1].score) < TIE:
        return [r for r in readings if r.dark == _light_glass(strip)]  # dark segments on light glass, or bright
    return readings


def _light_glass(strip: np.ndarray) -> bool:
    """Whether the window is mostly lighter than its midtone, as an LCD's glass behind dark segments (a lit LED's
    or a negative LCD's is dark behind bright ones)."""
    low, middle, high = np.percentile(cv2.cvtColor(strip, cv2.COLOR_BGR2GRAY), [5, 50, 95])
    return bool(middle > (low + high) / 2)


def _grown(best: _Reading, image: np.ndarray, reader) -> tuple[_Reading, list[CharReading]]:
    """A window found on part of the glass, grown: widened (WIDER on each side) while that reads more digits, every
    one sure, at most GROWTH times. Returns the grown window and what it reads widened once more, which the
    whole-readout check compares it with. (Not for a row of several: on two-row displays read with `row: 1` it lost
    more readings than it found.)"""
    grown = 0
    while True:
        corners = _wider(best.corners)
        (wider,) = _readings(reader, corners, image, False, [best.dark], None)
        sure = [c.confidence for c in wider.chars if c.char.isdigit() and c.confidence >= MIN_CONFIDENCE]
        if grown == GROWTH or len(sure) <= len(_digits(best.chars)) or min(sure) < SURE:
            return best, wider.chars
        best, grown = wider, grown + 1


def _row_of(strip: np.ndarray, dark: bool, row: int | None) -> tuple[int, int] | None:
    """(top, bottom) of the strip's part to read: the whole strip unless the profile names a row (1 = top) of a
    display with several; None when the strip has fewer. A row keeps a quarter of its height above and below, up
    to halfway to its neighbours."""
    if row is None:
        return 0, strip.shape[0]
    rows = text_rows(strip, dark)
    if row > len(rows):
        return None
    k = row - 1
    (top, bottom), pad = rows[k], (rows[k][1] - rows[k][0]) // 4
    above = (rows[k - 1][1] + top) // 2 if k > 0 else 0
    below = (bottom + rows[k + 1][0]) // 2 if k + 1 < len(rows) else strip.shape[0]
    return max(above, top - pad), min(below, bottom + pad)


def _doubt(
    best: _Reading | None,
    image: np.ndarray,
    readers,
    row: int | None,
    polarities: list[bool],
    widened: list[CharReading] | None = None,
) -> str | None:
    """Why a reading with digits is not sure, or None: rows of digits read as one line, unclear digits, no window,
    or a window that does not hold the whole readout (of the profile's row, when it names one). `readers`: the model
    and its second opinion (or None); `widened`: the window's reading widened, when growing it already read that."""
    reader, second = readers
    if best is None or best.score == 0:
        return None
    if row is None:  # rows in any polarity tried: the wrong one's reading of two rows as one line can be the surer
        rows = max(len(text_rows(best.strip, dark)) for dark in polarities)
        if rows > 1:
            return f"the display shows {rows} rows of digits, read as one line (the gauge's `row` picks one)"
    if best.sureness < MIN_MEAN_CONFIDENCE:
        return f"digits unclear (mean confidence {best.sureness:.2f})"
    least = min(c.confidence for c in best.chars if c.char.isdigit())
    if least < SURE:
        return f"a digit is unclear (confidence {least:.2f})"
    colon = min((c.confidence for c in best.chars if c.char == ":"), default=1.0)
    if colon < SURE:
        return f"a colon is unclear (confidence {colon:.2f}): a time or a number"
    gap = _widest_step([c for c in best.chars if c.confidence >= MIN_CONFIDENCE])
    if gap is not None and gap > MAX_STEP:
        return f"a digit between two read was read as nothing (they are {gap:.1f} digit cells apart)"
    if widened is None:
        corners = _wider(best.corners)
        found = _readings(reader, corners, image, best.given, [best.dark], row)
        if not found:
            return f"the display window widened shows no row {row} of digits"
        widened = found[0].chars
    read = [_digits(best.chars, ":"), _digits(widened, ":")]
    if read[0] != read[1]:
        return f"the display window may not hold the whole readout: it reads {read[0]}, {read[1] or 'nothing'} widened"
    return shape_doubt(reader, second, best.strip, best.dark, best.chars)


def shape_doubt(reader, second, strip: np.ndarray, dark: bool, chars: list[CharReading]) -> str | None:
    """Why the digits' shapes are in doubt, or None: the strip squeezed to NARROWER of its width reads other
    characters, or the second opinion (`sevenseg_model.second_opinion`, or None) reads other digits."""
    h, w = strip.shape[:2]
    narrowed = strip_input(cv2.resize(strip, (max(1, round(w * NARROWER)), h)), dark)
    if _text(reader.read([narrowed])[0]) != _text(chars):
        return "the digits read differently with the window narrowed: segment shapes the model is unsure of"
    other = None if second is None else _digits(second.read([strip_input(strip, dark)])[0], ":")
    if other is not None and other != _digits(chars, ":"):
        return f"a second digit model, trained on rendered displays alone, reads {other or 'nothing'}"
    return None


def _text(chars: list[CharReading]) -> str:
    return "".join(c.char for c in chars if c.confidence >= MIN_CONFIDENCE)


def _digits(chars: list[CharReading], also: str = "") -> str:
    """The digits read (and the characters in `also`), each at least MIN_CONFIDENCE sure."""
    return "".join(c.char for c in chars if (c.char.isdigit() or c.char in also) and c.confidence >= MIN_CONFIDENCE)


def _wider(corners: np.ndarray) -> np.ndarray:
    """The window's corners moved outwards along its rows by WIDER times its height on each side."""
    q = order_corners(corners)
    along = (q[1] - q[0]) / max(float(np.linalg.norm(q[1] - q[0])), 1e-6)
    step = along * WIDER * float(np.linalg.norm(q[3] - q[0]))
    return np.float32([q[0] - step, q[1] + step, q[2] + step, q[3] - step])


def _result(best: _Reading | None, profile: DisplayProfile, start: float, doubt: str | None) -> DisplayResult:
    if best is None or best.score == 0:
        return _empty("no seven-segment digits found", start, profile)
    chars = [c for c in best.chars if c.confidence >= MIN_CONFIDENCE and (profile.signed or c.char != "-")]
    chars = _one_point(_once_per_cell(chars))
    text = _tidy("".join(c.char for c in chars), profile, _unread_cells(chars, best))
    digits = [Digit(c.char, round(c.confidence, 4), _box(c, best)) for c in chars]
    confidence = round(min((d.confidence for d in digits), default=0.0), 4)
    corners = [tuple(map(float, p)) for p in best.corners]
    seconds = time.perf_counter() - start
    fields = text.count(":") + 1
    if profile.time_fields and fields != profile.time_fields and doubt is None:
        doubt = f"the gauge shows a time of {profile.time_fields} fields; the display reads {fields}"
    value = reading_value(text)
    if value is None:
        reason = f"display shows {text!r}, not a number" + (" or a time" if ":" in text else "")
        return DisplayResult(text, None, digits, confidence, seconds, corners, profile.unit, reason, "unread")
    status = "ok" if doubt is None else "uncertain"
    return DisplayResult(text, value, digits, confidence, seconds, corners, profile.unit, doubt, status)


def reading_value(text: str) -> float | None:
    """A readout's number: "-12.50" -> -12.5; a time counts in its last field's unit, "1:02:03" -> 3723.0 (seconds
    of a timer, minutes of a clock's "12:34"); None when the text is neither (fields after a colon have two digits,
    a time has no sign or point)."""
    if ":" not in text:
        try:
            return float(text)
        except ValueError:
            return None
    fields = text.split(":")
    if not all(f.isdigit() for f in fields) or any(len(f) != 2 or int(f) > 59 for f in fields[1:]):
        return None
    total = 0
    for field in fields:
        total = total * 60 + int(field)
    return float(total)


def _one_point(chars: list[CharReading]) -> list[CharReading]:
    """A readout lights one decimal point; LCDs show the unlit ones faintly. Keep the surest."""
    points = [c for c in chars if c.char == "."]
    if len(points) <= 1:
        return chars
    keep = max(points, key=lambda c: c.confidence)
    return [c for c in chars if c.char != "." or c is keep]


def _once_per_cell(chars: list[CharReading]) -> list[CharReading]:
    """Drop a digit repeated within one cell: the reader can emit a wide glyph twice, and two
    equal digits on a display are a whole pitch apart."""
    pitch = _pitch(chars)
    if pitch is None:
        return chars
    kept: list[CharReading] = []
    for c in chars:
        last = kept[-1] if kept else None
        if last is not None and c.char == last.char and (c.x0 + c.x1 - last.x0 - last.x1) / 2 < 0.75 * pitch:
            continue
        kept.append(c)
    return kept


def _tidy(text: str, profile: DisplayProfile, unread: int = 0) -> str:
    """Apply what the profile knows: where the decimal point sits when it is not lit or seen, and a time's colons.

    Readouts are right-aligned, so the last `decimals` cells are the decimals; `unread` of
    them (hidden by glare, say) were not read, and the point goes before the rest. A time's colons (`time_fields`),
    when none was read (a clock's colon blinks), go between the last pairs of digits: "2206" is 22:06.
    """
    text = text.strip(".:")
    pairs = 2 * (profile.time_fields - 1) if profile.time_fields else 0  # the digits after the first field
    if pairs and text.isdigit() and len(text) > pairs:
        head, tail = text[:-pairs], text[-pairs:]
        return ":".join([head, *(tail[i : i + 2] for i in range(0, pairs, 2))])
    shift = (profile.decimals or 0) - unread
    if "." not in text and ":" not in text and shift > 0 and len(text.lstrip("-")) > shift:
        text = text[:-shift] + "." + text[-shift:]
    return text


def _unread_cells(chars: list[CharReading], reading: _Reading) -> int:
    """Digit cells between the last digit read and the glass's right end.

    The last digit's centre normally sits under a pitch from the glass's end.
    """
    pitch = _pitch(chars)
    if pitch is None:
        return 0
    last = next(c for c in reversed(chars) if c.char.isdigit())
    glass_end = (reading.strip_width - PAD * STRIP_HEIGHT) * INPUT_HEIGHT / reading.strip_height
    return max(0, int((glass_end - (last.x0 + last.x1) / 2) / pitch - 0.2))


def _widest_step(chars: list[CharReading]) -> float | None:
    """The widest step between neighbouring digits read, in digit cells (None under three digits)."""
    pitch = _pitch(chars)
    return None if pitch is None else float(_steps(chars).max()) / pitch


def _pitch(chars: list[CharReading]) -> float | None:
    """The digit cell's width: the median step between digits read."""
    steps = _steps(chars)
    return float(np.median(steps)) if len(steps) >= 2 and np.median(steps) > 0 else None


def _steps(chars: list[CharReading]) -> np.ndarray:
    """Distances between neighbouring digits' centres (a point takes no cell)."""
    return np.diff([(c.x0 + c.x1) / 2 for c in chars if c.char.isdigit()])


def _box(char: CharReading, reading: _Reading) -> Box:
    """A character's extent in the model's input, through the strip's homography, as an image box."""
    h = reading.strip_height
    scale = h / INPUT_HEIGHT
    pts = np.float32([[char.x0 * scale, 0], [char.x1 * scale, 0], [char.x1 * scale, h], [char.x0 * scale, h]])
    mapped = cv2.perspectiveTransform(pts[None], reading.homography)[0]
    (x, y), (x2, y2) = mapped.min(0), mapped.max(0)
    return Box(int(x), int(y), int(np.ceil(x2 - x)), int(np.ceil(y2 - y)))


def _empty(reason: str, start: float, profile: DisplayProfile) -> DisplayResult:
    return DisplayResult("", None, [], 0.0, time.perf_counter() - start, None, profile.unit, reason, "unread")
