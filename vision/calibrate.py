"""Choosing the decision threshold for a stated miss rate.

Plants state what fraction of defective parts may escape. A part is called defect when
`score >= threshold`. On held-out data we pick the highest threshold (fewest good parts
rejected) whose one-sided Clopper-Pearson upper bound on the miss rate is within the
target, so the promise holds with the stated confidence and not just on this sample.
Nothing here imports torch: serving reads and reports these operating points too.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy.stats import beta

from annotation import verdicts
from annotation.errors import LineInspectError


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold and what it costs on held-out data: missed defects and rejected good parts."""

    threshold: float
    target_miss_rate: float | None  # None when the threshold was fixed, not calibrated
    confidence: float
    n_defect: int
    n_normal: int
    misses: int  # defects with score < threshold
    false_rejects: int  # normals with score >= threshold
    miss_rate: float | None  # None when there are no defects to measure it on
    miss_rate_upper: float
    false_reject_rate: float | None  # None when there are no normals to measure it on
    false_reject_rate_upper: float
    supported: bool  # False when too few held-out defects support the target (fixed threshold: no defects)
    note: str
    # set when the threshold was chosen for a false-reject rate on good parts only (no held-out defects)
    target_false_reject_rate: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready form, as stored in the model metadata."""
        return asdict(self)


def clopper_pearson_upper(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided upper confidence bound on a rate after observing `k` events in `n` trials."""
    _check_confidence(confidence)
    if not 0 <= k <= n:
        raise LineInspectError(f"need 0 <= k <= n for a confidence bound, got k={k}, n={n}")
    if k == n:  # also covers n == 0: nothing observed rules nothing out
        return 1.0
    return float(beta.ppf(confidence, k + 1, n - k))


def min_defects_needed(miss_rate: float, confidence: float = 0.95) -> int:
    """Fewest held-out defects that, all caught, bound the miss rate at or below `miss_rate`."""
    _check_miss_rate(miss_rate)
    _check_confidence(confidence)
    # With no miss the bound is 1 - (1 - confidence) ** (1 / n); solve for n, then settle float rounding.
    n = max(1, math.ceil(math.log(1 - confidence) / math.log(1 - miss_rate)))
    while n > 1 and clopper_pearson_upper(0, n - 1, confidence) <= miss_rate:
        n -= 1
    while clopper_pearson_upper(0, n, confidence) > miss_rate:
        n += 1
    return n


def check_scores(
    scores: Sequence[float] | np.ndarray, is_defect: Sequence[bool] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Scores as floats in [0, 1] and labels as booleans, or a LineInspectError saying what is wrong."""
    try:
        s = np.asarray(scores, dtype=float)
    except (TypeError, ValueError):
        raise LineInspectError("scores must be numbers (the model's defect probabilities)") from None
    y = np.asarray(is_defect)
    if s.ndim != 1 or y.ndim != 1:
        raise LineInspectError("scores and is_defect must be flat lists, one entry per part")
    if len(s) != len(y):
        raise LineInspectError(f"got {len(s)} scores but {len(y)} labels; they must pair up one per part")
    if len(s) == 0:
        raise LineInspectError("no held-out examples were given")
    if not np.all(np.isfinite(s)) or np.any((s < 0) | (s > 1)):
        raise LineInspectError("scores must be finite defect probabilities in [0, 1]")
    if y.dtype != bool:
        if y.dtype.kind not in "iuf" or not np.all((y == 0) | (y == 1)):
            raise LineInspectError("is_defect must hold booleans or 0/1 (1 = defect)")
        y = y.astype(bool)
    return s, y


def operating_point(
    scores: Sequence[float] | np.ndarray,
    is_defect: Sequence[bool] | np.ndarray,
    threshold: float,
    confidence: float = 0.95,
) -> OperatingPoint:
    """Describe what a fixed threshold does on held-out data."""
    s, y = check_scores(scores, is_defect)
    check_threshold(threshold)
    _check_confidence(confidence)
    point = _measure(s, y, float(threshold), confidence, target=None, supported=bool(y.any()))
    return _with_note(point, _describe(point))


def calibrate(
    scores: Sequence[float] | np.ndarray,
    is_defect: Sequence[bool] | np.ndarray,
    miss_rate: float,
    confidence: float = 0.95,
) -> OperatingPoint:
    """The highest threshold whose miss-rate upper bound on held-out data is within `miss_rate`."""
    s, y = check_scores(scores, is_defect)
    _check_miss_rate(miss_rate)
    _check_confidence(confidence)
    defects = np.sort(s[y])
    if len(defects) == 0:
        raise LineInspectError(
            "cannot calibrate a miss rate without defect examples: add labelled defects to the held-out set"
        )
    allowed = _max_allowed_misses(len(defects), miss_rate, confidence)
    if allowed is None:
        point = _measure(s, y, float(defects[0]), confidence, target=miss_rate, supported=False)
        return _with_note(point, _unsupported_note(len(defects), miss_rate, confidence))
    # Thresholds are defect scores; at defects[allowed] at most `allowed` defects score strictly below,
    # and any higher defect score would miss one more, so this is the highest that meets the bound.
    point = _measure(s, y, float(defects[allowed]), confidence, target=miss_rate, supported=True)
    return _with_note(point, _describe(point))


def calibrate_false_rejects(
    scores: Sequence[float] | np.ndarray,
    is_defect: Sequence[bool] | np.ndarray,
    false_reject_rate: float,
    confidence: float = 0.95,
) -> OperatingPoint:
    """With good parts only: the lowest threshold (most defects caught) whose false-reject-rate upper bound
    on held-out good parts is within `false_reject_rate`. Nothing is promised about misses."""
    s, y = check_scores(scores, is_defect)
    _check_miss_rate(false_reject_rate, "false-reject rate")
    _check_confidence(confidence)
    goods = np.sort(s[~y])[::-1]
    if len(goods) == 0:
        raise LineInspectError("cannot calibrate a false-reject rate without good parts in the held-out set")
    allowed = _max_allowed_misses(len(goods), false_reject_rate, confidence)
    # `allowed` good parts may score at or above the threshold: it sits just above the next good score
    threshold = min(1.0, float(np.nextafter(goods[0 if allowed is None else allowed], np.inf)))
    point = _measure(s, y, threshold, confidence, target=None, supported=allowed is not None)
    point = replace(point, target_false_reject_rate=float(false_reject_rate))
    if allowed is None:
        needed = min_defects_needed(false_reject_rate, confidence)
        note = (
            f"Chosen on good parts only. With {len(goods)} held-out good parts the {_pct(confidence)} bound on the "
            f"false-reject rate cannot go below {_pct(clopper_pearson_upper(0, len(goods), confidence))}; at least "
            f"{needed} are needed to support {_pct(false_reject_rate)}, so the threshold sits above every held-out "
            "good part. "
        )
    else:
        note = f"Chosen on good parts only for a {_pct(false_reject_rate)} false-reject rate. "
    return _with_note(point, note + _describe(point))


def check_threshold(threshold: float) -> None:
    """A threshold must be a probability, like the scores it is compared with."""
    if not isinstance(threshold, numbers.Real) or not 0.0 <= threshold <= 1.0:
        raise LineInspectError(f"threshold must be a number in [0, 1], got {threshold!r}")


def _max_allowed_misses(n_defect: int, miss_rate: float, confidence: float) -> int | None:
    """Most misses out of `n_defect` whose upper bound stays within `miss_rate`; None if even zero is too many."""
    k = np.arange(n_defect)  # k == n_defect always has bound 1.0, never within a target below 1
    within = np.nonzero(beta.ppf(confidence, k + 1, n_defect - k) <= miss_rate)[0]
    return int(within[-1]) if len(within) else None


def _measure(
    s: np.ndarray, y: np.ndarray, threshold: float, confidence: float, target: float | None, supported: bool
) -> OperatingPoint:
    n_defect, n_normal = int(y.sum()), int((~y).sum())
    misses = int(np.sum(y & (s < threshold)))
    false_rejects = int(np.sum(~y & verdicts.is_defect(s, threshold)))
    return OperatingPoint(
        threshold=threshold,
        target_miss_rate=None if target is None else float(target),
        confidence=float(confidence),
        n_defect=n_defect,
        n_normal=n_normal,
        misses=misses,
        false_rejects=false_rejects,
        miss_rate=_rate(misses, n_defect),
        miss_rate_upper=clopper_pearson_upper(misses, n_defect, confidence),
        false_reject_rate=_rate(false_rejects, n_normal),
        false_reject_rate_upper=clopper_pearson_upper(false_rejects, n_normal, confidence),
        supported=supported,
        note="",
    )


def _with_note(point: OperatingPoint, note: str) -> OperatingPoint:
    return replace(point, note=note)


def _describe(p: OperatingPoint) -> str:
    conf = _pct(p.confidence)
    if p.n_defect:
        target = f", target {_pct(p.target_miss_rate)}" if p.target_miss_rate is not None else ""
        missed = (
            f"misses {p.misses} of {p.n_defect} held-out defects "
            f"({conf} bound on the miss rate {_pct(p.miss_rate_upper)}{target})"
        )
    else:
        missed = "cannot be judged on misses (no held-out defects)"
    if p.n_normal:
        rejected = (
            f"rejects {p.false_rejects} of {p.n_normal} good parts "
            f"({_pct(p.false_reject_rate)}, {conf} bound {_pct(p.false_reject_rate_upper)})"
        )
    else:
        rejected = "has no good parts to measure false rejects on"
    return f"Threshold {p.threshold:.4g} {missed} and {rejected}."


def _unsupported_note(n_defect: int, miss_rate: float, confidence: float) -> str:
    floor = clopper_pearson_upper(0, n_defect, confidence)
    needed = min_defects_needed(miss_rate, confidence)
    return (
        f"With {n_defect} held-out defects the {_pct(confidence)} bound on the miss rate "
        f"cannot go below {_pct(floor)}; "
        f"at least {needed} defects (with no miss) are needed to support a {_pct(miss_rate)} miss rate, "
        "so the threshold was set to catch every held-out defect."
    )


def _rate(k: int, n: int) -> float | None:
    return k / n if n else None


def _pct(x: float) -> str:
    """Percent as people write it: 5%, 7.2%, 0.78%."""
    p = x * 100
    return f"{p:.1f}".rstrip("0").rstrip(".") + "%" if p >= 1 else f"{p:.2g}%"


def _check_miss_rate(miss_rate: float, what: str = "miss rate") -> None:
    if not isinstance(miss_rate, numbers.Real) or not 0.0 < miss_rate < 1.0:
        raise LineInspectError(f"{what} must be a fraction strictly between 0 and 1 (0.01 = 1%), got {miss_rate!r}")


def _check_confidence(confidence: float) -> None:
    if not isinstance(confidence, numbers.Real) or not 0.0 < confidence < 1.0:
        raise LineInspectError(f"confidence must be strictly between 0 and 1 (0.95 = 95%), got {confidence!r}")
