"""Request and response bodies, declared once so that the OpenAPI schema documents itself."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from serving.storage import InspectionRecord


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
        description="where records go: the database, the local spool while it is unavailable, or nowhere"
    )
    spool_pending: int
    database_error: str | None
