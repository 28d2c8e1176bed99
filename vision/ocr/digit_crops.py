"""Real seven-segment digit crops (../shared/data/sevenseg-digits): the train / holdout split and
the strip the reader would cut around one crop. Torch-free: the bench uses it as well as training.

The split is fixed once: in each class folder, files sorted by name, the odd positions (1, 3, 5, ...)
may train the line model and the even positions (0, 2, 4, ...) are held out for measuring only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from annotation.errors import LineInspectError
from vision.ocr.displays import PAD

SPLIT_RULE = "per class folder, files sorted by name: odd positions train, even positions are held out"
EMPTY_CLASS = "11"  # a digit position showing nothing


def crop_label(folder_name: str) -> str:
    """The folder is the label: 00..09 are the digits, 11 an empty position (reads as nothing)."""
    return "" if folder_name == EMPTY_CLASS else str(int(folder_name))


def real_crops(root: Path, part: Literal["train", "holdout"]) -> list[tuple[Path, str]]:
    """(crop, label) of one part of the split, class folders in name order; `root` is the
    sevenseg-digits folder."""
    if part not in ("train", "holdout"):
        raise LineInspectError(f"part must be 'train' or 'holdout', not {part!r}")
    folders = sorted(p for p in Path(root).iterdir() if p.is_dir() and p.name.isdigit()) if Path(root).is_dir() else []
    if not folders:
        raise LineInspectError(f"{root}: no digit class folders (00..09, 11) found")
    first = 1 if part == "train" else 0
    return [(path, crop_label(f.name)) for f in folders for path in sorted(f.glob("*.jpg"))[first::2]]


def padded_strip(image: np.ndarray) -> np.ndarray:
    """A crop (or a row of crops) with the margin the reader leaves around a display window
    (PAD of its height, replicated border)."""
    margin = round(PAD * image.shape[0])
    return cv2.copyMakeBorder(image, margin, margin, margin, margin, cv2.BORDER_REPLICATE)
