"""`lineinspect inspect --heatmaps DIR`: where the model looked, as a colour overlay on each original image.

The model's heatmap output (a class-activation map, `vision.training.cam`, or for anomaly models the patch anomaly
map, `vision.training.anomaly`; positive is evidence of a defect in both) is a map at feature-map resolution over the
model input. It is upsampled to the input, the letterbox bars are cut off (a stretch is undone by resizing
to the original's shape), the positive evidence is scaled to its peak, coloured (JET: red is where the
defect evidence is strongest) and blended over the original. Each overlay is a PNG written to a
temporary name and renamed, so a file under its final name is whole. A chunk's overlays are drawn in
threads while the next chunk is inferred; a resumed run first writes those that rows journalled by
the interrupted run lack (it was killed before they were done, or ran without --heatmaps).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from annotation.errors import LineInspectError
from vision.inference import infer
from vision.onnx_model import OnnxClassifier
from vision.predict import load_input
from vision.preprocess import PreprocessSpec, content_box

WHICH = ("defects", "all")
ALPHA = 0.45  # weight of the colour map in the blend
THREADS = 4  # decode, blend and PNG-encode a chunk's overlays in parallel (OpenCV releases the GIL)
# JET as a 256-entry table: cv2.applyColorMap rebuilds it on every call (about 10 ms)
_JET = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_JET)


def heatmap_file(folder: Path, row_index: int, image_path: str) -> Path:
    """Where the overlay of row `row_index` (0-based, in output order) of a run is written."""
    return Path(folder) / f"{row_index:06d}-{Path(image_path).stem}.png"


def on_image(heatmap: np.ndarray, height: int, width: int, spec: PreprocessSpec) -> np.ndarray:
    """A model heatmap [h, w] as weights in 0..1 over an original image of `height` x `width`."""
    full = cv2.resize(heatmap.astype(np.float32), (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
    top, left, nh, nw = content_box(height, width, spec)
    full = cv2.resize(full[top : top + nh, left : left + nw], (width, height), interpolation=cv2.INTER_LINEAR)
    full = np.maximum(full, 0)
    peak = float(full.max())
    return full / peak if peak > 0 else full


def overlay(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The BGR `image` with `weights` (0..1, same height and width) blended over it in the JET colour map."""
    levels = np.rint(weights * 255).astype(np.uint8)
    colours = cv2.LUT(cv2.cvtColor(levels, cv2.COLOR_GRAY2BGR), _JET)
    return cv2.addWeighted(image, 1 - ALPHA, colours, ALPHA, 0)


def write_overlay(out: Path, image_path: str, heatmap: np.ndarray, spec: PreprocessSpec) -> None:
    """Decode the original (EXIF-oriented, as preprocessing decodes it) and write its overlay PNG atomically."""
    image = cv2.imdecode(np.fromfile(image_path, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise LineInspectError(f"cannot decode {image_path} again to draw its heatmap")
    ok, png = cv2.imencode(".png", overlay(image, on_image(heatmap, *image.shape[:2], spec)))
    if not ok:
        raise LineInspectError(f"OpenCV could not encode the heatmap of {image_path}")
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(png.tobytes())
    os.replace(tmp, out)


class HeatmapWriter:
    """Writes a run's overlays into `folder`: for rows with a defect verdict, or for every readable image."""

    def __init__(self, folder: Path, classifier: OnnxClassifier, which: str = "defects") -> None:
        if which not in WHICH:
            raise LineInspectError(f"--heatmaps-for must be defects or all, not {which!r}")
        if classifier.meta.heatmap_output is None:
            raise LineInspectError(
                f"{classifier.path} has no heatmap output (it was exported before heatmaps): re-export its run "
                "with `lineinspect export RUN --out MODEL`, or inspect without --heatmaps"
            )
        self.folder, self.classifier, self.which = Path(folder), classifier, which
        self.folder.mkdir(parents=True, exist_ok=True)
        self.written = 0
        self._pool = ThreadPoolExecutor(THREADS)
        self._pending: list[Future[None]] = []

    def wanted(self, row: dict) -> bool:
        return row["error"] is None and (self.which == "all" or row["verdict"] == "defect")

    def write(self, first_row: int, rows: list[dict], maps: np.ndarray) -> None:
        """Start the overlays of one chunk's rows, numbered from `first_row` (`maps`: one per readable row, in
        order), once the previous chunk's are written: at most one chunk is in flight."""
        readable = [(first_row + i, row) for i, row in enumerate(rows) if row["error"] is None]
        jobs = [
            (heatmap_file(self.folder, index, row["path"]), row["path"], heatmap)
            for (index, row), heatmap in zip(readable, maps, strict=True)
            if self.wanted(row)
        ]
        previous, self._pending = self._pending, self._submit(jobs)
        self._wait(previous)

    def close(self) -> None:
        """Wait for the overlays still being written."""
        pending, self._pending = self._pending, []
        self._wait(pending)
        self._pool.shutdown()

    def backfill(self, rows_file: Path, batch_size: int) -> None:
        """Write the overlays missing for the rows an interrupted run journalled (it may have run without
        --heatmaps, or with another --heatmaps-for)."""
        with open(rows_file, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f]
        missing = [
            (heatmap_file(self.folder, i, row["path"]), row["path"])
            for i, row in enumerate(rows)
            if self.wanted(row) and not heatmap_file(self.folder, i, row["path"]).is_file()
        ]
        spec = self.classifier.spec
        for start in range(0, len(missing), batch_size):
            loaded = [(out, path, load_input(Path(path), spec)[0]) for out, path in missing[start : start + batch_size]]
            loaded = [job for job in loaded if job[2] is not None]  # gone since: its row stands, without overlay
            if loaded:
                scored = infer(self.classifier, np.stack([x for _, _, x in loaded]), heatmaps=True)
                jobs = [(out, path, result.heatmap) for (out, path, _), result in zip(loaded, scored, strict=True)]
                self._wait(self._submit(jobs))

    def _submit(self, jobs: list[tuple[Path, str, np.ndarray]]) -> list[Future[None]]:
        return [self._pool.submit(write_overlay, *job, self.classifier.spec) for job in jobs]

    def _wait(self, futures: list[Future[None]]) -> None:
        for future in futures:
            future.result()
        self.written += len(futures)
