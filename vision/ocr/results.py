"""What the OCR readers return: typed, JSON-ready, and never an exception for a bad picture.

Every result carries a `status` and a `reason`:
- `ok`: the value can be used as it is; `reason` is None.
- `uncertain`: the value is the reader's best guess, not to be trusted without a look;
  `reason` says what the reader is unsure of ("a digit is unclear (confidence 0.62)").
- `unread`: nothing was read; the value is empty and `reason` is one sentence a line
  engineer can act on ("no display found", "needle not found").
So a caller never has to tell a crash from a blank reading, nor a guess from a reading.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

STATUSES = ("ok", "uncertain", "unread")
SURE_FIELD = 0.5  # default: a required field read with less word confidence than this leaves a label uncertain


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in the pixels of the image as given (x, y: top-left corner)."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Word:
    text: str
    confidence: float  # 0..1, Tesseract's word confidence / 100
    box: Box
    line: int  # index of the text line the word belongs to, in reading order


@dataclass(frozen=True)
class FieldValue:
    """One template field: the validated value, or why there is none."""

    name: str
    value: str | None
    required: bool
    raw: str | None = None  # the text matched before normalisation (also kept when invalid)
    problem: str | None = None  # "not found" or what the validation rejected
    confidence: float | None = None  # the least confidence of the words the value was read from
    doubt: str | None = None  # why a valid value may still be misread (a confusable letter, print running on from it)


@dataclass
class LabelResult:
    text: str
    words: list[Word]
    fields: dict[str, FieldValue]
    template: str | None
    engine: str
    psm: int | None
    seconds: float
    reason: str | None = None
    image: str = "prepared"  # the reading kept: of the prepared page, or of the "whole" photo as it is
    min_confidence: float = SURE_FIELD  # the template's: a required field read less surely is a guess

    @property
    def problems(self) -> list[str]:
        """Required fields that are missing or invalid: what a line must not pass silently."""
        return [f"{f.name}: {f.problem}" for f in self.fields.values() if f.required and f.problem]

    @property
    def unsure(self) -> list[str]:
        """Required fields that validate but whose words the engine was not sure of, or that carry a doubt."""
        given = [f for f in self.fields.values() if f.required and f.value is not None]
        low = [
            f"{f.name}: read {f.raw!r} with confidence {f.confidence:.2f}"
            for f in given
            if f.confidence is not None and f.confidence < self.min_confidence
        ]
        return low + [f"{f.name}: {f.doubt}" for f in given if f.doubt]

    @property
    def ok(self) -> bool:
        return self.reason is None and not self.problems

    @property
    def status(self) -> str:
        """ok (every required field validates and was read surely), uncertain, or unread (no text)."""
        if self.reason is not None:
            return "unread"
        return "uncertain" if self.problems or self.unsure else "ok"

    def to_dict(self) -> dict:
        out = asdict(self)
        out["problems"] = self.problems
        out["unsure"] = self.unsure
        out["ok"] = self.ok
        out["status"] = self.status
        return out


@dataclass(frozen=True)
class Digit:
    char: str  # "0".."9", "-", "."
    confidence: float
    box: Box | None = None


@dataclass
class DisplayResult:
    """A seven-segment readout: `text` as shown ("-12.50", "1:02:03"), `value` as a number (a time's in its last
    field's unit: 3723.0)."""

    text: str
    value: float | None
    digits: list[Digit]
    confidence: float
    seconds: float
    display: list[tuple[float, float]] | None = None  # corners of the display found, image pixels
    unit: str | None = None
    reason: str | None = None
    status: str = "ok"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DialResult:
    """An analog gauge: the value the needle points at, through a calibration.

    `angle` is in degrees clockwise from 12 o'clock, in (-180, 180]. `scale_ends` is (start, end)
    as found on the dial's tick marks when the calibration asked for it (`find_scale`); None when
    the calibration's own angles were used (the notes say why).
    """

    value: float | None
    angle: float | None
    confidence: float
    seconds: float
    center: tuple[float, float] | None = None
    radius: float | None = None
    tip: tuple[float, float] | None = None
    unit: str | None = None
    reason: str | None = None
    notes: list[str] = field(default_factory=list)
    scale_ends: tuple[float, float] | None = None
    status: str = "ok"

    def to_dict(self) -> dict:
        return asdict(self)
