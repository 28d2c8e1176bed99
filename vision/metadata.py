"""The model file describes itself: everything serving needs, stored in the ONNX metadata.

Reading needs only onnxruntime (the serving path); writing uses the onnx package.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from annotation.errors import LineInspectError
from vision.preprocess import PreprocessSpec

METADATA_KEY = "lineinspect"
FORMAT_VERSION = 1


class InputSpec(BaseModel):
    """The preprocessing contract, as stored; `spec()` turns it into the callable form."""

    model_config = ConfigDict(extra="forbid")
    height: int
    width: int
    color: str
    resize: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def of(cls, spec: PreprocessSpec) -> InputSpec:
        return cls(
            height=spec.height, width=spec.width, color=spec.color, resize=spec.resize, mean=spec.mean, std=spec.std
        )

    def spec(self) -> PreprocessSpec:
        return PreprocessSpec(
            height=self.height,
            width=self.width,
            color=self.color,  # type: ignore[arg-type]
            resize=self.resize,  # type: ignore[arg-type]
            mean=self.mean,
            std=self.std,
        )


class TrainingData(BaseModel):
    fingerprint: str  # sha256 over the (content hash, label) pairs trained on
    sources: list[str]
    counts: dict[str, dict[str, int]]  # split -> class -> count


class ModelMetadata(BaseModel):
    """Everything a consumer of model.onnx needs; no side files."""

    format_version: int = FORMAT_VERSION
    name: str
    version: str
    created_at: str
    architecture: str
    # classifier: P(defect) from a supervised head; anomaly: from the distance of patch features to good parts
    method: str = "classifier"
    classes: list[str]
    defect_class: str
    input: InputSpec
    input_name: str = "input"
    output_name: str = "probabilities"  # softmax over `classes`, shape [batch, len(classes)]
    # class-activation map of `defect_class` (vision.training.cam), or for anomaly models the patch anomaly map
    # (vision.training.anomaly), [batch, h, w] at the feature maps' resolution; None for models exported before heatmaps
    heatmap_output: str | None = None
    threshold: float = Field(ge=0.0, le=1.0)  # defect when P(defect_class) >= threshold
    operating_point: dict  # vision.calibrate.OperatingPoint.to_dict()
    training_data: TrainingData
    metrics: dict = Field(default_factory=dict)  # held-out metrics at the threshold
    parity: dict = Field(default_factory=dict)  # the export's PyTorch-vs-ONNX Runtime check

    @property
    def defect_index(self) -> int:
        return self.classes.index(self.defect_class)


def read_metadata(path: Path) -> ModelMetadata:
    """Metadata of an ONNX model file, with a clear error when it is not one of ours."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise LineInspectError(f"model file not found: {path}")
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise LineInspectError(f"{path} is not a loadable ONNX model: {exc}") from None
    return metadata_from_map(session.get_modelmeta().custom_metadata_map, source=str(path))


def metadata_from_map(props: dict[str, str], source: str) -> ModelMetadata:
    raw = props.get(METADATA_KEY)
    if raw is None:
        raise LineInspectError(f"{source} has no lineinspect metadata: export it with `lineinspect export`")
    try:
        meta = ModelMetadata.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        raise LineInspectError(f"{source} has invalid lineinspect metadata: {exc}") from None
    if meta.format_version > FORMAT_VERSION:
        raise LineInspectError(
            f"{source} uses metadata format {meta.format_version}; this lineinspect reads up to {FORMAT_VERSION}"
        )
    return meta


def write_metadata(path: Path, meta: ModelMetadata) -> None:
    """Store `meta` in the ONNX file at `path` (in place)."""
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, meta.model_dump_json()
    model.doc_string = f"lineinspect {meta.name} {meta.version}: {meta.architecture}, classes {meta.classes}"
    onnx.save(model, str(path))
