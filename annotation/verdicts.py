"""The model's two classes and the one verdict rule, shared by training, calibration, serving and Label Studio."""

from __future__ import annotations

NORMAL, DEFECT = "normal", "defect"
CLASSES = (NORMAL, DEFECT)  # the model's classes, in this order


def is_defect(score, threshold):
    """A part is defect when its defect score reaches the threshold; works on NumPy arrays as on numbers."""
    return score >= threshold


def verdict(score: float, threshold: float) -> str:
    return DEFECT if is_defect(score, threshold) else NORMAL
