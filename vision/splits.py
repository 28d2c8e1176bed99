"""Stratified train/val/holdout splits that keep content duplicates on one side."""

from __future__ import annotations

import math
import random
from collections import defaultdict

from annotation.manifest import ManifestItem

SPLITS = ("train", "val", "holdout")
# Fewest images of a class in the validation split for early stopping and the kept epoch to mean something: with
# 20 of each, a ROC-AUC near 0.9 is known to about +-0.1 (95%); with fewer, epochs are told apart by noise.
MIN_VAL_PER_CLASS = 20


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


def split_warnings(
    splits: dict[str, list[ManifestItem]],
    method: str,
    val_fraction: float,
    holdout_fraction: float,
    holdout_defects_needed: int | None,
) -> list[str]:
    """What the splits are too small for, each with the number of labelled images that would do.

    `holdout_defects_needed`: the held-out defects a threshold for the recipe's miss rate needs (None: no
    miss-rate rule). The anomaly method needs good parts in validation only; its defects are optional."""
    warnings = []
    checked = ("normal",) if method == "anomaly" else ("normal", "defect")
    for label in checked:
        n = sum(i.label == label for i in splits["val"])
        if n < MIN_VAL_PER_CLASS:
            in_all = math.ceil(MIN_VAL_PER_CLASS / val_fraction)
            warnings.append(
                f"the validation split holds {n} {label} image{'s' * (n != 1)}: too few to tell epochs apart for "
                f"early stopping and the kept epoch; {MIN_VAL_PER_CLASS} would do, about {in_all} labelled "
                f"{label} images in all at data.val_fraction {val_fraction:g}"
            )
    defects = sum(i.label == "defect" for i in splits["holdout"])
    if holdout_defects_needed and (method != "anomaly" or defects) and defects < holdout_defects_needed:
        warnings.append(
            f"the holdout split holds {defects} defect{'s' * (defects != 1)}: too few to calibrate a threshold "
            f"for the miss rate asked (it needs {holdout_defects_needed}), so export will catch every holdout "
            f"defect and false rejects pay for it; about {math.ceil(holdout_defects_needed / holdout_fraction)} "
            f"labelled defects in all at data.holdout_fraction {holdout_fraction:g} would do"
        )
    return warnings
