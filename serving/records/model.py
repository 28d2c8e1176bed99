"""An inspection's record as stored, spooled, journaled and listed, and the tags its sender gives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from serving.records.tables import naive_utc


@dataclass(frozen=True)
class Tags:
    """Where an image came from, as its sender says."""

    line: str | None = None
    station: str | None = None
    camera: str | None = None
    part_id: str | None = None


class InspectionRecord(BaseModel):
    """One inspection as stored, spooled and listed: what was seen, by which model, with what result."""

    id: str
    created_at: datetime
    line: str | None = None
    station: str | None = None
    camera: str | None = None
    part_id: str | None = None
    client: str | None = None  # the API key's name
    image_sha256: str | None = None
    image_bytes: int = 0
    image_path: str | None = None  # where the image was kept for re-annotation
    model_name: str | None = None
    model_version: str | None = None
    model_sha256: str | None = None
    threshold: float | None = None
    score: float | None = None
    verdict: str | None = None  # normal | defect; None when the image was refused
    label: str | None = None
    decode_ms: float | None = None
    preprocess_ms: float | None = None
    queue_ms: float | None = None
    infer_ms: float | None = None
    total_ms: float | None = None
    error_code: str | None = None
    error: str | None = None
    ocr_template: str | None = None  # the label template read with ocr=TEMPLATE
    ocr_fields: dict[str, str | None] | None = None  # field name -> validated value, None when missing or invalid
    ocr_missing: bool | None = None  # a required field missing or invalid, or no text read at all
    ocr_problems: str | None = None  # why: "serial: not found", "no text found", ...
    ocr_ms: float | None = None
    brightness: float | None = None  # image quality (vision.quality), for the line's drift monitoring
    contrast: float | None = None
    sharpness: float | None = None

    def row(self) -> dict[str, Any]:
        return {**self.__dict__, "created_at": naive_utc(self.created_at)}
