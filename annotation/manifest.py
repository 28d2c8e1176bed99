"""The manifest: labelled images resolved to local files, plus what went wrong on the way.

A manifest is the one data type that crosses from `annotation/` into `vision/`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


class Severity(StrEnum):
    ERROR = "error"  # the record is unusable; `dataset check` exits non-zero
    WARNING = "warning"  # the record was used or deliberately ignored; worth knowing


@dataclass(frozen=True)
class Problem:
    """One thing found while importing an export, tied to the task it concerns."""

    kind: str  # machine-readable: "missing_image", "unknown_label", "tie", ...
    severity: Severity
    message: str  # human-readable, says what to do
    task_id: int | str | None = None
    reference: str | None = None  # the image reference as written in the export


@dataclass(frozen=True)
class ManifestItem:
    """One labelled image, ready to train or evaluate on."""

    path: Path  # resolved local file
    label: str  # a class name of the model (after label mapping)
    task_id: int | str | None
    reference: str  # the image reference as written in the export
    sha256: str  # content hash of the file; groups content duplicates
    source_label: str | None = None  # label as the annotators wrote it, before mapping


@dataclass
class Manifest:
    items: list[ManifestItem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)  # ordered class names of the model
    sources: list[str] = field(default_factory=list)  # the export file(s) it came from

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    def counts(self) -> dict[str, int]:
        c = Counter(item.label for item in self.items)
        return {name: c.get(name, 0) for name in self.classes}

    def fingerprint(self) -> str:
        """A stable hash of what the model learns from: (content hash, label) pairs."""
        pairs = sorted((item.sha256, item.label) for item in self.items)
        return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()

    def to_json(self) -> dict:
        return {
            "sources": self.sources,
            "classes": self.classes,
            "items": [{**asdict(i), "path": str(i.path)} for i in self.items],
            "problems": [{**asdict(p), "severity": p.severity.value} for p in self.problems],
        }


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
