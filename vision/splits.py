"""Stratified train/val/holdout splits that keep content duplicates on one side."""

from __future__ import annotations

import random
from collections import defaultdict

from annotation.manifest import ManifestItem

SPLITS = ("train", "val", "holdout")


def split_items(
    items: list[ManifestItem], val_fraction: float, holdout_fraction: float, seed: int
) -> dict[str, list[ManifestItem]]:
    """Assign whole content groups (same sha256) to one split, per class, in seeded random order.

    Each class is split by the same fractions (stratified); items keep their
    manifest order within a split so a split is reproducible from the seed.
    """
    groups: dict[str, list[ManifestItem]] = defaultdict(list)
    for item in items:
        groups[item.sha256].append(item)
    by_class: dict[str, list[str]] = defaultdict(list)
    for sha, members in groups.items():
        by_class[members[0].label].append(sha)

    rng = random.Random(seed)
    assignment: dict[str, str] = {}
    for label in sorted(by_class):
        shas = sorted(by_class[label])
        rng.shuffle(shas)
        n_holdout = _share(len(shas), holdout_fraction)
        n_val = _share(len(shas), val_fraction)
        for i, sha in enumerate(shas):
            assignment[sha] = "holdout" if i < n_holdout else "val" if i < n_holdout + n_val else "train"
    out: dict[str, list[ManifestItem]] = {name: [] for name in SPLITS}
    for item in items:
        out[assignment[item.sha256]].append(item)
    return out


def _share(n: int, fraction: float) -> int:
    """At least one group per evaluation split when a class has three or more groups."""
    k = round(n * fraction)
    return max(k, 1) if n >= 3 else k
