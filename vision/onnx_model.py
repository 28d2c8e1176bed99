"""Run a lineinspect ONNX model with ONNX Runtime: no torch, the model file is the whole contract."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from annotation.errors import LineInspectError
from vision.metadata import ModelMetadata, metadata_from_map
from vision.preprocess import PreprocessSpec


def default_providers() -> list[str]:
    """CUDA when this onnxruntime build and machine have it, else CPU."""
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


class OnnxClassifier:
    """A loaded model: metadata, preprocessing spec and an inference session."""

    def __init__(self, path: Path, providers: list[str] | None = None, threads: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise LineInspectError(f"model file not found: {self.path}")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        # idle threads sleep instead of spinning: spinning burns the cores that image decoding needs
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers or default_providers())
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise LineInspectError(f"{self.path} is not a loadable ONNX model: {exc}") from None
        self.meta: ModelMetadata = metadata_from_map(
            self.session.get_modelmeta().custom_metadata_map, source=str(self.path)
        )
        self.spec: PreprocessSpec = self.meta.input.spec()

    @property
    def threshold(self) -> float:
        return self.meta.threshold

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities [N, classes] for a preprocessed batch [N, 3, H, W]."""
        return self.session.run([self.meta.output_name], {self.meta.input_name: np.asarray(batch, np.float32)})[0]

    def predict_with_heatmaps(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities [N, classes] and defect heatmaps [N, h, w] (see `vision.training.cam`) from one run."""
        if self.meta.heatmap_output is None:
            raise LineInspectError(
                f"{self.path} has no heatmap output (exported before heatmaps): "
                "re-export it with `lineinspect export RUN --out MODEL` to get heatmaps"
            )
        names = [self.meta.output_name, self.meta.heatmap_output]
        probabilities, maps = self.session.run(names, {self.meta.input_name: batch.astype(np.float32)})
        return probabilities, maps
