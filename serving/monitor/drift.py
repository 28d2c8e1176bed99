"""Input drift: whether a camera's recent images and defect scores still look like its baseline's.

Brightness (mean gray level), contrast (gray standard deviation) and sharpness (variance of the Laplacian) are
measured elsewhere; here they are numbers compared as distributions (PSI, Kolmogorov–Smirnov) and by median.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats

from serving.settings import MonitorSettings

METRICS = ("brightness", "contrast", "sharpness", "score")
FINDINGS = {
    "dark": "images darker than in the baseline",
    "bright": "images brighter than in the baseline",
    "blurred": "images less sharp than in the baseline (out of focus?)",
    "low_contrast": "images with less contrast than in the baseline",
    "score_shift": "defect scores distributed unlike the baseline "
    "(the camera may be seeing something the model was not trained on)",
}
_FLOOR = 1e-4  # smallest bin proportion in the PSI, so an empty bin costs much but not infinitely
_RATIO_LIMIT = 1e9  # the median ratio when only the baseline's median is 0
# A recent sample gets one PSI bin per this many records (2 to 10): the PSI of two samples of one distribution is
# about (bins − 1)/n, so 10 bins on 30 records would average 0.3 and cross the usual 0.25 alarm by chance alone.
_RECORDS_PER_BIN = 25
# Each finding: the metric it is about, and the direction its median ratio must have moved in.
_DIRECTIONS: tuple[tuple[str, str, Callable[[float, MonitorSettings], bool]], ...] = (
    ("dark", "brightness", lambda ratio, s: ratio < s.dark_ratio),
    ("bright", "brightness", lambda ratio, s: ratio > s.bright_ratio),
    ("blurred", "sharpness", lambda ratio, s: ratio < s.blur_ratio),
    ("low_contrast", "contrast", lambda ratio, s: ratio < s.low_contrast_ratio),
    ("score_shift", "score", lambda ratio, s: True),
)


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of `actual` against `expected`.

    Bins sit at the expected sample's quantiles (repeated edges merged, the outer bins open to ±inf); an edge value
    the expected sample holds more than once (a point mass, such as scores stuck at 0 or saturated pixels) gets a bin
    of its own, so moving off it shows whichever side it lies on. Proportions are floored at 1e-4.
    """
    expected, actual = np.sort(np.asarray(expected, dtype=float)), np.asarray(actual, dtype=float)
    if not len(expected) or not len(actual):
        raise ValueError("the PSI needs values in both samples")
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    held = np.searchsorted(expected, edges, side="right") - np.searchsorted(expected, edges, side="left")
    ties = edges[held > 1]
    e, a = _proportions(expected, edges, ties), _proportions(actual, edges, ties)
    return float(np.sum((a - e) * np.log(a / e)))


def _proportions(x: np.ndarray, edges: np.ndarray, ties: np.ndarray) -> np.ndarray:
    """Bin 2i holds (edge i−1, edge i], bin 2i+1 the value of edge i when it is a tie (else it stays empty)."""
    index = 2 * np.searchsorted(edges, x, side="left") + np.isin(x, ties)
    return np.maximum(np.bincount(index, minlength=2 * len(edges) + 1) / len(x), _FLOOR)


@dataclass(frozen=True)
class MetricDrift:
    name: str
    baseline_median: float
    recent_median: float
    ratio: float  # recent_median / baseline_median: 1.0 when both are 0, ±1e9 when only the baseline's is
    psi: float
    ks: float  # two-sample Kolmogorov–Smirnov statistic
    ks_pvalue: float


@dataclass(frozen=True)
class DriftResult:
    n: int  # records in the recent sample
    metrics: dict[str, MetricDrift]  # every name in METRICS with values in both samples
    findings: tuple[str, ...]  # in FINDINGS order


def assess(
    baseline: Mapping[str, np.ndarray], recent: Mapping[str, np.ndarray], settings: MonitorSettings
) -> DriftResult:
    """Compare a recent sample with the baseline, metric by metric, and name what changed.

    Each input maps metric names to one value per record; non-finite values (NaN: a record without quality
    measures) are dropped per metric. A finding needs the distribution to have changed (PSI >= psi_alarm) and,
    but for score_shift, its median to have moved past the ratio in `settings` (dark, bright, blurred,
    low_contrast); a metric with fewer than min_drift_records recent values gives none.
    """
    metrics, judged = {}, set()
    for name in METRICS:
        if name not in baseline or name not in recent:
            continue
        b, r = _finite(baseline[name]), _finite(recent[name])
        if len(b) and len(r):
            metrics[name] = _compare(name, b, r)
            if len(r) >= settings.min_drift_records:
                judged.add(name)
    findings = tuple(
        finding
        for finding, name, moved in _DIRECTIONS
        if name in judged and metrics[name].psi >= settings.psi_alarm and moved(metrics[name].ratio, settings)
    )
    n = max((len(v) for v in recent.values()), default=0)
    return DriftResult(n, metrics, findings)


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


def _compare(name: str, baseline: np.ndarray, recent: np.ndarray) -> MetricDrift:
    bins = int(np.clip(len(recent) // _RECORDS_PER_BIN, 2, 10))
    b_median, r_median = float(np.median(baseline)), float(np.median(recent))
    if b_median:
        ratio = r_median / b_median
    else:
        ratio = float(np.sign(r_median)) * _RATIO_LIMIT if r_median else 1.0
    ks = stats.ks_2samp(baseline, recent)
    return MetricDrift(
        name, b_median, r_median, ratio, psi(baseline, recent, bins), float(ks.statistic), float(ks.pvalue)
    )
