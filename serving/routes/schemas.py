"""Request and response bodies, declared once so that the OpenAPI schema documents itself."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from serving.records.model import InspectionRecord
from serving.settings import SubgroupSettings
from vision.ocr import Digit, FieldValue, Word


class ModelRef(BaseModel):
    name: str
    version: str


class Timings(BaseModel):
    """Milliseconds per stage; total runs from the image's arrival to its verdict."""

    decode: float
    preprocess: float
    queue: float
    infer: float
    total: float


class OcrStep(BaseModel):
    """The label read in the same request as the verdict (`ocr=TEMPLATE`), and stored in its record."""

    template: str
    fields: dict[str, str | None] = Field(description="Each field's validated value; null when missing or invalid")
    problems: list[str] = Field(description="Required fields missing or invalid, and why")
    text: str
    reason: str | None = Field(description="Why nothing was read (no text found, OCR unavailable); else null")
    ms: float


class InspectionResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "5f0c6f9e1a2b4c3d8e7f6a5b4c3d2e1f",
                    "verdict": "defect",
                    "score": 0.9731,
                    "threshold": 0.42,
                    "label": "defect",
                    "probabilities": {"normal": 0.0269, "defect": 0.9731},
                    "model": {"name": "lineinspect-defect", "version": "20250101-1a2b3c4d"},
                    "timings_ms": {"decode": 2.1, "preprocess": 1.3, "queue": 0.4, "infer": 4.8, "total": 8.9},
                    "ocr": {
                        "template": "default",
                        "fields": {
                            "part_number": "WU-8540-N",
                            "lot": "L220128V2",
                            "serial": None,
                            "date": "2022-01-28",
                        },
                        "problems": ["serial: '4579018923' fails its luhn check digit"],
                        "text": "P/N: WU-8540-N\nLOT: L220128V2\nS/N: 4579018923\nMFG DATE: 2022-01-28",
                        "reason": None,
                        "ms": 2474.7,
                    },
                }
            ]
        }
    )
    id: str = Field(description="Record id: GET /v1/inspections/{id}")
    verdict: Literal["normal", "defect"]
    score: float = Field(description="Probability of the defect class; defect when score >= threshold")
    threshold: float
    label: str = Field(description="The most probable class")
    probabilities: dict[str, float]
    model: ModelRef
    timings_ms: Timings
    ocr: OcrStep | None = Field(None, description="With ocr=TEMPLATE: the label read from the same image")


class ErrorDetail(BaseModel):
    code: str = Field(examples=["corrupt_image"])
    message: str = Field(examples=["JPEG image could not be decoded (corrupt or unsupported variant)"])
    id: str | None = Field(None, description="Record id, when the refused image was recorded")


class ErrorBody(BaseModel):
    error: ErrorDetail


class BatchResult(BaseModel):
    results: list[InspectionResult | ErrorBody] = Field(description="One entry per image, in the order sent")


class InspectionPage(BaseModel):
    items: list[InspectionRecord]
    next_offset: int | None = Field(description="offset of the next page; null on the last page")


class ModelInfo(BaseModel):
    name: str
    version: str
    architecture: str
    sha256: str
    path: str
    loaded_at: datetime
    threshold: float
    classes: list[str]
    defect_class: str
    input: dict


class ModelLoad(BaseModel):
    name: str
    version: str
    sha256: str
    path: str
    loaded_at: datetime


class ModelsAnswer(BaseModel):
    active: ModelInfo
    loaded: list[ModelLoad] = Field(description="Models this database has seen loaded, newest first")
    available: list[str] = Field(description="ONNX files in the model folders (model_dirs), loadable by reload")


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"path": "model-v2.onnx"}]})
    path: str = Field(description="An .onnx file in one of the model folders; relative names are looked up there")


class Readiness(BaseModel):
    ready: bool
    model: ModelRef
    records: Literal["database", "spool", "failing"] = Field(
        description="where records go: the database, the local spool while it is unavailable, or (failing) "
        "neither, so they are held in memory and retried"
    )
    spool_pending: int
    records_held: int = Field(0, description="records held in memory until the database or the spool takes them")
    database_error: str | None


class LabelAnswer(BaseModel):
    """POST /v1/ocr/label: the text, each word with its box and confidence, and the template's fields."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "text": "ACME PRECISION PARTS\nP/N: WU-8540-N\nLOT: L220128V2\nS/N: 4579018922",
                    "words": [
                        {"text": "LOT:", "confidence": 0.96, "box": {"x": 162, "y": 260, "width": 70, "height": 28},
                         "line": 2},
                        {"text": "L220128V2", "confidence": 0.93, "box": {"x": 240, "y": 258, "width": 190,
                         "height": 30}, "line": 2},
                    ],
                    "fields": {
                        "lot": {"name": "lot", "value": "L220128V2", "required": True, "raw": "L220128V2",
                                "problem": None},
                        "serial": {"name": "serial", "value": "4579018922", "required": True, "raw": "4579018922",
                                   "problem": None},
                        "date": {"name": "date", "value": None, "required": True, "raw": None,
                                 "problem": "not found"},
                    },
                    "problems": ["date: not found"],
                    "ok": False,
                    "template": "default",
                    "engine": "pytesseract",
                    "psm": 11,
                    "seconds": 2.47,
                    "reason": None,
                    "image": "prepared",
                    "min_confidence": 0.5,
                }
            ]
        }
    )  # fmt: skip
    text: str
    words: list[Word]
    fields: dict[str, FieldValue] = Field(description="Every template field: its value, or the problem with it")
    problems: list[str] = Field(description="Required fields missing or invalid: never guessed")
    ok: bool = Field(description="Text read and every required field valid")
    unsure: list[str] = Field(
        description="Required fields that validate but were read with low word confidence, or whose field carries a "
        "doubt (a letter the template calls confusable, print running on from the value)"
    )
    status: Literal["ok", "uncertain", "unread"] = Field(
        description="ok: use the value; uncertain: the fields are a best guess (see problems and unsure); "
        "unread: nothing read (reason says why)"
    )
    template: str
    engine: str
    psm: int | None = Field(description="Tesseract page-segmentation mode of the reading kept")
    seconds: float
    reason: str | None = Field(description="Why nothing was read (no text found); null when text was")
    image: Literal["prepared", "whole"] = Field(
        description="The reading kept: of the prepared page (found, straightened, binarised, scaled), or of the "
        "whole photo as it is, read too when the prepared page left a field missing or invalid"
    )
    min_confidence: float = Field(
        description="The template's: a required field read with less word confidence is listed in unsure"
    )


class DisplayAnswer(BaseModel):
    """A digital (seven-segment) display's reading."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "digital", "gauge": "fuel-pump-lcd", "text": "73.40", "value": 73.4,
                    "digits": [{"char": "7", "confidence": 1.0, "box": {"x": 206, "y": 56, "width": 29, "height": 137}},
                               {"char": "3", "confidence": 0.9999, "box": None}],
                    "confidence": 0.9998, "seconds": 0.42,
                    "display": [[101.1, 67.6], [443.9, 63.5], [445.3, 183.3], [102.5, 187.3]],
                    "unit": "L", "reason": None, "status": "ok",
                }
            ]
        }
    )  # fmt: skip
    kind: Literal["digital"] = "digital"
    gauge: str
    text: str = Field(description="As shown, e.g. -12.50, or a timer's 1:02:03")
    value: float | None = Field(
        description="null when no digits were found (see reason); a time counts in its last field's unit (1:02:03 is "
        "3723: seconds of a timer, minutes of a clock's 12:34)"
    )
    digits: list[Digit] = Field(description="Each character read, with its confidence and box")
    confidence: float
    seconds: float
    display: list[tuple[float, float]] | None = Field(description="Corners of the display found, image pixels")
    unit: str | None
    reason: str | None
    status: Literal["ok", "uncertain", "unread"] = Field(
        description="ok: use the value; uncertain: the value is a best guess (reason says what is unsure); "
        "unread: nothing read (reason says why)"
    )


class DialAnswer(BaseModel):
    """An analog dial's reading: the needle's angle through the gauge's calibration."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "analog", "gauge": "pressure-0-10bar", "value": 6.43, "angle": 38.63, "confidence": 1.0,
                    "seconds": 0.34, "center": [244.0, 221.5], "radius": 203.9, "tip": [345.8, 94.0], "unit": "bar",
                    "reason": None, "notes": [], "scale_ends": None, "status": "ok",
                }
            ]
        }
    )  # fmt: skip
    kind: Literal["analog"] = "analog"
    gauge: str
    value: float | None = Field(description="null when no needle was found or it is off the scale (see reason)")
    angle: float | None = Field(description="Degrees clockwise from 12 o'clock")
    confidence: float
    seconds: float
    center: tuple[float, float] | None
    radius: float | None
    tip: tuple[float, float] | None
    unit: str | None
    reason: str | None
    notes: list[str]
    scale_ends: tuple[float, float] | None = Field(
        None, description="Where the scale starts and ends (degrees) when the gauge's ends were found on the dial"
    )
    status: Literal["ok", "uncertain", "unread"] = Field(
        description="ok: use the value; uncertain: the value is a best guess (reason says what is unsure); "
        "unread: nothing read (reason says why)"
    )


GaugeAnswer = Annotated[DisplayAnswer | DialAnswer, Field(discriminator="kind")]


class Subgrouping(BaseModel):
    size: int | None = Field(None, description="Records per subgroup")
    minutes: float | None = Field(None, description="Or: minutes per subgroup (a time window)")


class BaselineRequest(BaseModel):
    """A period the engineer declares in control; its subgroups set the charts' centre lines and limits."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"since": "2026-11-20T06:00:00Z", "until": "2026-11-21T06:00:00Z", "subgroup": {"size": 200}}
    ]})  # fmt: skip
    since: datetime
    until: datetime
    subgroup: SubgroupSettings | None = Field(None, description="Default: monitor.subgroup of the service's settings")
    note: str | None = Field(None, max_length=2000)


class BaselineAnswer(BaseModel):
    line: str
    since: datetime
    until: datetime
    subgroup: Subgrouping
    set_at: datetime
    set_by: str | None
    note: str | None


class BaselineEstimate(BaseModel):
    """What the baseline's subgroups give: the defect rate and the mean and spread of the defect score."""

    p: float
    score_mean: float
    score_sd: float
    subgroups: int
    records: int


class ChartPoint(BaseModel):
    start: datetime
    end: datetime
    n: int
    defects: int
    value: float = Field(description="Defect rate (p-chart) or EWMA of the mean defect score")
    center: float
    lcl: float
    ucl: float
    z: float = Field(description="Standardised distance from the centre line (clipped to +-1e9)")
    rules: list[str] = Field(description="Rules that hold at this subgroup")
    in_baseline: bool


class Signal(BaseModel):
    start: datetime
    rule: str
    text: str


class ChartAnswer(BaseModel):
    kind: Literal["p", "ewma"]
    points: list[ChartPoint]
    signals: list[Signal] = Field(description="Where each out-of-control episode began")


class SpcAnswer(BaseModel):
    line: str
    baseline: BaselineAnswer
    estimate: BaselineEstimate
    evaluated_at: datetime
    p: ChartAnswer
    ewma: ChartAnswer
    out_of_control: dict[str, bool] = Field(description="Chart -> a rule holds at its newest subgroup")
    baseline_advice: list[str] = Field(
        default_factory=list, description="What is weak about the baseline for the charts, and what would do"
    )


class MetricDriftAnswer(BaseModel):
    baseline_median: float
    recent_median: float
    ratio: float
    psi: float
    ks: float
    ks_pvalue: float


class DriftSubgroup(BaseModel):
    start: datetime
    end: datetime
    n: int
    metrics: dict[str, MetricDriftAnswer]
    findings: list[str]


class CameraDriftAnswer(BaseModel):
    camera: str = Field(description="The camera tag; empty for images sent without one")
    baseline_records: int
    baseline_medians: dict[str, float]
    subgroups: list[DriftSubgroup]
    findings: dict[str, str] = Field(description="Findings at the newest subgroup -> what they mean")


class DriftAnswer(BaseModel):
    line: str
    baseline: BaselineAnswer
    evaluated_at: datetime
    cameras: list[CameraDriftAnswer]


class AlarmRuleAnswer(BaseModel):
    chart: Literal["p", "ewma", "drift"]
    camera: str = Field(description="The camera of a drift finding; empty for the line's charts")
    rule: str
    rule_text: str
    subgroup_start: datetime
    subgroup_end: datetime
    value: float
    detail: str
    raised_at: datetime


class AlarmAnswer(BaseModel):
    id: int
    line: str
    subgroup_start: datetime = Field(description="The subgroup of the rule that opened the alarm")
    raised_at: datetime
    rules: list[AlarmRuleAnswer] = Field(
        description="Every rule the event fired, by subgroup: an alarm is acknowledged once for all of them"
    )
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    note: str | None


class AlarmPage(BaseModel):
    alarms: list[AlarmAnswer]
    limit: int
    offset: int


class Acknowledgement(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"note": "die 3 replaced"}]})
    note: str = Field(min_length=1, max_length=2000, description="What was found or done")


class LineSummary(BaseModel):
    line: str
    baseline: BaselineAnswer | None
    open_alarms: int
    out_of_control: dict[str, bool]
    problem: str | None = Field(description="Why the line is not being charted (no baseline, too short), else null")
