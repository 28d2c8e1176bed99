"""OCR configuration: label templates and gauge settings, YAML files validated at load time.

Label templates live in `configs/ocr/labels/NAME.yaml`, gauges (a digital display's
profile or an analog dial's calibration) in `configs/ocr/gauges/NAME.yaml`. A name or a
path is accepted wherever one is asked for. Errors name the file and the key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, field_validator, model_validator

from annotation.config_loader import StrictModel as _Strict
from annotation.config_loader import builtin_configs, load_config, resolve_config, validate
from annotation.errors import LineInspectError
from vision.ocr.results import SURE_FIELD

CONFIG_ROOT = builtin_configs() / "ocr"
LABELS_DIR = CONFIG_ROOT / "labels"
GAUGES_DIR = CONFIG_ROOT / "gauges"


class FieldSpec(_Strict):
    """One field of a label: where it is (a regular expression) and what makes it valid.

    The pattern's named group `value` is the field; without one, the whole match is. With
    `format`, the value is assembled from the pattern's named groups instead (spaces inside
    each removed; a [bracketed] part is left out when a group in it did not match), so a
    fixed layout survives separators that Tesseract dropped or turned into spaces.
    """

    pattern: str
    required: bool = False
    type: Literal["text", "date", "integer"] = "text"
    formats: list[str] = Field(default_factory=lambda: ["%Y-%m-%d"])  # for dates, strptime formats
    check: Literal["luhn", "gs1", "mod11"] | None = None  # check digit: the value's last character
    digits_only: bool = False  # read O as 0, I/l as 1, ... then demand digits (serials, GTINs)
    compact: bool = False  # drop spaces Tesseract put inside the value (long IDs)
    confusable: str = ""  # letters the print does not tell from a digit ("O": 0): a value holding one is uncertain
    format: str | None = None  # build the value from named groups: "{number}_{copy}[_{suffix}]"
    ignore_case: bool = False  # patterns mark case-blind parts themselves: (?i:LOT)
    min: float | None = None  # integers
    max: float | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return pattern

    @model_validator(mode="after")
    def _format_uses_groups(self) -> FieldSpec:
        if self.format:
            groups = set(re.compile(self.pattern).groupindex)
            missing = set(re.findall(r"{(\w+)}", self.format)) - groups
            if missing:
                raise ValueError(f"format uses {', '.join(sorted(missing))}, which the pattern does not capture")
        return self

    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern, re.IGNORECASE if self.ignore_case else 0)


class LabelTemplate(_Strict):
    name: str
    description: str = ""
    # Tesseract traineddata names; with a second script the first re-reads the Latin words
    languages: list[str] = Field(default_factory=lambda: ["eng"])
    psm: Literal["auto"] | int = "auto"  # Tesseract page segmentation mode, or choose per image
    # capital height (pixels) the print is scaled to: thin label fonts read better larger than
    # Tesseract's usual 30, blurred photos (waybills) do not
    text_height: int = Field(default=30, ge=16, le=80)
    # a required field read with less word confidence than this is a guess: the label is uncertain
    min_confidence: float = Field(default=SURE_FIELD, ge=0, le=1)
    fields: dict[str, FieldSpec] = Field(default_factory=dict)

    @field_validator("psm")
    @classmethod
    def _known_psm(cls, psm: str | int) -> str | int:
        if psm != "auto" and psm not in (3, 4, 6, 7, 11, 12, 13):
            raise ValueError("psm must be 'auto' or one of 3, 4, 6, 7, 11, 12, 13")
        return psm


class DisplayProfile(_Strict):
    """A digital display: how to read its digits into a number."""

    kind: Literal["digital"] = "digital"
    name: str = "digital"
    unit: str | None = None
    polarity: Literal["auto", "dark", "bright"] = "auto"  # dark: LCD segments, bright: LED
    decimals: int | None = Field(None, ge=0, le=6)  # digits after an unlit or unseen decimal point
    # a timer or clock: its reading is a time of this many fields (2: M:SS or HH:MM, 3: H:MM:SS); colons unlit
    # (blinking) or unseen are put back between the last digit pairs, and a reading of other fields is uncertain
    time_fields: int | None = Field(None, ge=2, le=3)
    signed: bool = True  # False: the display cannot show a minus (a counter), so a "-" read is glare
    # where a fixed camera sees the display's glass, in the photo's pixels: a box [x, y, width, height] or four
    # corners [[x, y], ...] (any order; a slanted or skewed view); None: the reader looks for the display
    region: list[tuple[float, float]] | None = None
    # a display with readings stacked in rows (a thermo-hygrometer's temperature over its humidity): the one to read,
    # 1 = the top row; None: the window is read as one line (uncertain when it shows several rows)
    row: int | None = Field(None, ge=1, le=6)
    # the digit model: an ONNX file from `lineinspect ocr train-digits` (e.g. fine-tuned on this display's own
    # crops), relative to the gauge config's folder; None: the shipped model
    model: Path | None = None

    @model_validator(mode="after")
    def _number_or_time(self):
        if self.time_fields is not None and self.decimals is not None:
            raise ValueError("a display shows a time (time_fields) or a number with decimals, not both")
        return self

    @field_validator("region", mode="before")
    @classmethod
    def _corners(cls, region):
        """A box becomes its four corners; anything but a box or four points is refused with the shape to use."""
        if region is None:
            return None
        if isinstance(region, list | tuple) and len(region) == 4 and all(isinstance(v, int | float) for v in region):
            x, y, w, h = region
            if w <= 0 or h <= 0:
                raise ValueError("a box's width and height must be positive: [x, y, width, height]")
            return [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
        if (
            isinstance(region, list | tuple)
            and len(region) == 4
            and all(isinstance(p, list | tuple) and len(p) == 2 for p in region)
        ):
            return region
        raise ValueError("write it as a box [x, y, width, height] or four corners [[x, y], [x, y], [x, y], [x, y]]")


class CalibrationPoint(_Strict):
    angle: float = Field(ge=-360, le=360)  # degrees clockwise from 12 o'clock
    value: float


DEFAULT_SWEEP = (-135.0, 135.0)  # the common 270-degree scale: the starting guess when only values are given


class DialCalibration(_Strict):
    """An analog dial: needle angle to value, linear between the given points.

    Either `points` (two or more, in clockwise order; several for non-linear scales), or the
    four min/max keys, or only `min_value` and `max_value`: the scale's ends are then found on
    the dial from its tick marks (DEFAULT_SWEEP where none show). The scale runs clockwise from
    the first point to the last. `find_scale: true` with angles makes them a starting guess too.
    """

    kind: Literal["analog"] = "analog"
    name: str = "analog"
    unit: str | None = None
    points: list[CalibrationPoint] = Field(default_factory=list)
    min_angle: float | None = None
    max_angle: float | None = None
    min_value: float | None = None
    max_value: float | None = None
    find_scale: bool = False  # the angles are a guess: take the scale's ends from the dial's tick marks
    needle: Literal["auto", "dark", "light", "red"] = "auto"  # the pointer to read: auto takes the clearest

    @model_validator(mode="after")
    def _has_a_scale(self) -> DialCalibration:
        angles, values = (self.min_angle, self.max_angle), (self.min_value, self.max_value)
        if self.points and any(v is not None for v in angles + values):
            raise ValueError(
                "give either points or min_value/max_value (with or without min_angle/max_angle), not both"
            )
        if not self.points:
            self.points = self._shorthand_points(angles, values)
            self.min_angle = self.max_angle = self.min_value = self.max_value = None
        if len(self.points) < 2:
            raise ValueError("points: a scale needs at least two points")
        offsets = self.offsets()
        if any(b <= a for a, b in zip(offsets, offsets[1:], strict=False)) or offsets[-1] > 360:
            raise ValueError("points must go clockwise, each after the last, within one turn")
        values = [p.value for p in self.points]
        rising = all(b > a for a, b in zip(values, values[1:], strict=False))
        falling = all(b < a for a, b in zip(values, values[1:], strict=False))
        if not (rising or falling):
            raise ValueError("points: values must rise (or fall) steadily along the scale")
        return self

    def _shorthand_points(self, angles: tuple, values: tuple) -> list[CalibrationPoint]:
        """The two ends from min/max keys; without angles, the default sweep as a guess to be found."""
        if (values[0] is None) != (values[1] is None):
            given, missing = ("min_value", "max_value") if values[1] is None else ("max_value", "min_value")
            raise ValueError(f"{given} without {missing}: a scale needs the values at both its ends")
        if values[0] is None:
            raise ValueError(
                "a dial needs points, or min_value and max_value (with min_angle and max_angle, "
                "or without them to find the scale's ends on the dial)"
            )
        if all(a is None for a in angles):
            if "find_scale" in self.model_fields_set and not self.find_scale:
                raise ValueError(
                    "find_scale: false needs min_angle and max_angle: with only the values, "
                    "the scale's ends must be found on the dial"
                )
            angles = DEFAULT_SWEEP
            self.find_scale = True
        elif any(a is None for a in angles):
            given, missing = ("min_angle", "max_angle") if angles[1] is None else ("max_angle", "min_angle")
            raise ValueError(
                f"{given} without {missing}: give both angles, or neither to find the scale's ends on the dial"
            )
        return [CalibrationPoint(angle=a, value=v) for a, v in zip(angles, values, strict=True)]

    def offsets(self) -> list[float]:
        """Each point's clockwise distance from the first point, in degrees."""
        first = self.points[0].angle
        return [0.0] + [(p.angle - first) % 360 or 360.0 for p in self.points[1:]]  # same angle: a full turn

    @property
    def sweep(self) -> float:
        return self.offsets()[-1]

    @property
    def span(self) -> float:
        return abs(self.points[-1].value - self.points[0].value)


Gauge = Annotated[DisplayProfile | DialCalibration, Field(discriminator="kind")]


_GAUGE = TypeAdapter(Gauge)


def load_template(name_or_path: str | Path = "default") -> LabelTemplate:
    path = resolve_config(name_or_path, LABELS_DIR, "label template")
    return load_config(LabelTemplate, path, defaults={"name": path.stem})


def load_gauge(name_or_path: str | Path) -> DisplayProfile | DialCalibration:
    """A gauge config; a display's own digit model is found beside it and loaded now, so a missing or wrong file
    is said when the config is loaded, not at the first reading."""
    from vision.ocr.sevenseg_model import load_model

    path = resolve_config(name_or_path, GAUGES_DIR, "gauge config")
    gauge = load_config(_GAUGE, path, defaults={"name": path.stem})
    if isinstance(gauge, DisplayProfile) and gauge.model is not None:
        gauge.model = (path.parent / gauge.model).resolve()
        try:
            load_model(gauge.model)
        except LineInspectError as exc:
            raise LineInspectError(f"{path}: model: {exc}") from None
    return gauge


def dial_calibration(**keys) -> DialCalibration:
    """A calibration from command-line values, with the same checks as a file's."""
    return validate(DialCalibration, keys, "calibration")
