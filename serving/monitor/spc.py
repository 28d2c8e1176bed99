"""Statistical process control on inspection records: subgroups, a baseline, p and EWMA charts, Western Electric rules.

Every number a chart holds is finite: z is clipped to ±Z_LIMIT (a point off the centre of a chart whose sigma is 0,
such as any defect against a zero-defect baseline, gets ±Z_LIMIT), so charts serialise to JSON as they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from serving.settings import RULES

EWMA_RULE = "ewma_beyond_limits"
RULE_TEXT = {
    "beyond_3sigma": "a point beyond the 3-sigma limits",
    "2_of_3_beyond_2sigma": "2 of 3 points in a row beyond 2 sigma on one side",
    "4_of_5_beyond_1sigma": "4 of 5 points in a row beyond 1 sigma on one side",
    "8_same_side": "8 points in a row on one side of the centre line",
    "6_trending": "6 points in a row steadily rising or falling",
    EWMA_RULE: "the EWMA of the mean defect score beyond its limits",
}
Z_LIMIT = 1e9  # |z| at most: what a point off the centre gets when sigma is 0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Window rules: (points in the window, how many of them beyond the limit on one side, the limit in sigma).
_WINDOWS = {"2_of_3_beyond_2sigma": (3, 2, 2.0), "4_of_5_beyond_1sigma": (5, 4, 1.0), "8_same_side": (8, 8, 0.0)}
_TRENDING = 6
_HITS = [tuple(r for b, r in enumerate(RULES) if code >> b & 1) for code in range(1 << len(RULES))]  # by bit code


@dataclass(frozen=True)
class Subgroup:
    start: datetime  # count subgroups: time of the first record; time subgroups: window start
    end: datetime  # count subgroups: time of the last record; time subgroups: window end
    n: int
    defects: int
    score_mean: float
    score_var: float  # sample variance (ddof=1) of the scores, 0 when n == 1

    @property
    def p(self) -> float:
        return self.defects / self.n


def make_subgroups(
    times: Sequence[datetime],
    defect: Sequence[bool] | np.ndarray,
    score: Sequence[float] | np.ndarray,
    *,
    size: int | None = None,
    minutes: float | None = None,
    origin: datetime | None = None,
    now: datetime | None = None,
) -> list[Subgroup]:
    """Complete subgroups in time order, from records already sorted by time (not checked).

    By count (`size`): consecutive `size` records from the first; a trailing partial group is left out.
    By time (`minutes`): windows [origin + k·w, origin + (k+1)·w). `origin` defaults to the first record's time floored
    to the window length since the Unix epoch, so hourly windows sit on the (UTC) hour; records before it are left
    out. Only windows that end at or before `now` (default: the last record's time) are complete; empty windows are
    skipped. ValueError unless exactly one of `size` and `minutes` is given.
    """
    if (size is None) == (minutes is None):
        raise ValueError("give exactly one of size (records per subgroup) and minutes (a time window)")
    defect = np.asarray(defect, dtype=bool)
    score = np.asarray(score, dtype=float)
    if not len(times) == len(defect) == len(score):
        raise ValueError(f"times, defect and score differ in length: {len(times)}, {len(defect)}, {len(score)}")
    if not np.isfinite(score).all():
        raise ValueError("scores must be finite numbers")
    if not len(times):
        return []
    if size is not None:
        if size < 1:
            raise ValueError(f"subgroup size must be at least 1, got {size}")
        starts = np.arange(len(times) // size) * size
        groups = _summarise(defect, score, starts, len(starts) * size)
        return [Subgroup(times[a], times[a + size - 1], *g) for a, g in zip(starts.tolist(), groups, strict=True)]
    if minutes <= 0:
        raise ValueError(f"subgroup minutes must be positive, got {minutes}")
    window = timedelta(minutes=minutes)
    origin = _floor(times[0], window) if origin is None else origin
    keys = np.array([(t - origin) // window for t in times], dtype=np.int64)
    complete = ((times[-1] if now is None else now) - origin) // window  # windows 0 .. complete-1 have ended
    first, stop = np.searchsorted(keys, [0, complete])
    keys = keys[first:stop]
    starts = np.flatnonzero(np.diff(keys, prepend=-1))  # keys are >= 0 here
    groups = _summarise(defect[first:stop], score[first:stop], starts, len(keys))
    return [
        Subgroup(origin + k * window, origin + (k + 1) * window, *g)
        for k, g in zip(keys[starts].tolist(), groups, strict=True)
    ]


def _floor(t: datetime, window: timedelta) -> datetime:
    epoch = _EPOCH if t.tzinfo else _EPOCH.replace(tzinfo=None)
    return epoch + (t - epoch) // window * window


def _summarise(
    defect: np.ndarray, score: np.ndarray, starts: np.ndarray, stop: int
) -> list[tuple[int, int, float, float]]:
    """(n, defects, mean, variance) of the groups [starts[i], starts[i+1]) of the first `stop` records.

    Scores are taken relative to each group's first score, so a group of equal scores has exactly that mean and
    variance 0 (no rounding that a chart with sigma 0 would blow up into an alarm).
    """
    if not len(starts):
        return []
    n = np.diff(np.r_[starts, stop])
    defects = np.add.reduceat(defect[:stop].astype(np.int64), starts)
    shift = np.repeat(score[starts], n)
    d = score[:stop] - shift
    d_mean = np.add.reduceat(d, starts) / n
    squares = np.add.reduceat((d - np.repeat(d_mean, n)) ** 2, starts)
    var = np.divide(squares, n - 1, out=np.zeros(len(n)), where=n > 1)
    return list(zip(n.tolist(), defects.tolist(), (score[starts] + d_mean).tolist(), var.tolist(), strict=True))


@dataclass(frozen=True)
class Baseline:
    p: float  # pooled defect rate: sum(defects) / sum(n)
    score_mean: float  # mean of all the records' scores
    score_sd: float  # pooled within-subgroup standard deviation of individual scores
    subgroups: int
    records: int


def estimate_baseline(groups: Sequence[Subgroup]) -> Baseline:
    """The in-control parameters, from the subgroups of the baseline period.

    The score spread is pooled within subgroups, so a shift between subgroups inside the baseline does not widen the
    limits; when every subgroup holds one record it is the spread between them instead.
    """
    if len(groups) < 2:
        raise ValueError(
            f"a baseline needs at least 2 complete subgroups, got {len(groups)}: "
            "choose a longer baseline period or smaller subgroups"
        )
    n = np.array([g.n for g in groups], dtype=float)
    means = np.array([g.score_mean for g in groups])
    var = np.array([g.score_var for g in groups])
    dof = np.sum(n - 1)
    sd = np.sqrt(np.sum((n - 1) * var) / dof) if dof else np.std(means, ddof=1)
    mean = means[0] + np.sum(n * (means - means[0])) / n.sum()  # exact when all the means are equal
    records = int(n.sum())
    return Baseline(sum(g.defects for g in groups) / records, float(mean), float(sd), len(groups), records)


MIN_NP = 5  # n·p̄ below this: the p-chart's normal approximation fails (a textbook rule of thumb)
MIN_SUBGROUPS = 20  # limits from fewer subgroups are rough (20-25 is the usual minimum)


def baseline_advice(b: Baseline) -> list[str]:
    """What is weak about a baseline for the charts, each with what would do."""
    advice = []
    n = b.records / b.subgroups
    if b.p == 0:
        advice.append(
            "the baseline holds no defects: the p-chart's limits are 0, so any defect is a signal; "
            "choose a period with the line's usual defects"
        )
    elif n * b.p < MIN_NP:
        advice.append(
            f"subgroups of {n:.0f} parts at a defect rate of {b.p:.2%} give n·p̄ = {n * b.p:.1f}: below {MIN_NP} "
            f"the p-chart's limits misbehave (the lower limit sits at 0 and a single defect can look like a "
            f"signal); subgroups of at least {math.ceil(MIN_NP / b.p)} parts would do"
        )
    if b.subgroups < MIN_SUBGROUPS:
        advice.append(
            f"{b.subgroups} subgroups: limits from fewer than {MIN_SUBGROUPS} are rough; a baseline of at least "
            f"{MIN_SUBGROUPS} subgroups would do"
        )
    return advice


@dataclass(frozen=True)
class Point:
    value: float  # the subgroup's defect rate (p-chart) or EWMA value (EWMA chart)
    center: float
    lcl: float
    ucl: float
    z: float  # (value - center) / sigma of this point, clipped to ±Z_LIMIT (±Z_LIMIT when sigma is 0, 0 on centre)
    rules: tuple[str, ...]  # the rules that hold at this point (their pattern completed here), in RULES order


@dataclass(frozen=True)
class Chart:
    kind: str  # "p" or "ewma"
    groups: list[Subgroup]
    points: list[Point]  # one per group

    def signals(self) -> list[tuple[int, str]]:
        """(index, rule) where a rule holds that did not at the point before: the start of each out-of-control
        episode, which is when an alarm is raised. By index, then rule order."""
        found = []
        previous: tuple[str, ...] = ()
        for i, point in enumerate(self.points):
            found += [(i, rule) for rule in point.rules if rule not in previous]
            previous = point.rules
        return found


def p_chart(groups: Sequence[Subgroup], baseline: Baseline, rules: Sequence[str] = RULES) -> Chart:
    """Centre p̄, limits p̄ ± 3·sqrt(p̄(1−p̄)/n_i) for each subgroup's own n, LCL clipped at 0 and UCL at 1."""
    n = np.array([g.n for g in groups], dtype=float)
    value = np.array([g.p for g in groups], dtype=float)
    center = baseline.p
    sigma = np.sqrt(center * (1 - center) / n)
    z = _standardise(value, center, sigma)
    lcl, ucl = np.clip(center - 3 * sigma, 0, 1), np.clip(center + 3 * sigma, 0, 1)
    return Chart("p", list(groups), _points(value, center, lcl, ucl, z, rule_hits(z, rules)))


def ewma_chart(groups: Sequence[Subgroup], baseline: Baseline, lam: float = 0.2, sigmas: float = 3.0) -> Chart:
    """EWMA of the subgroups' mean scores from z_0 = baseline.score_mean, with exact time-varying limits.

    The variance follows V_i = lam²·sd²/n_i + (1−lam)²·V_{i−1}, V_0 = 0: with a constant n this is the textbook
    (sd/sqrt(n))²·lam/(2−lam)·(1−(1−lam)^(2i)), and it stays exact when n varies (time windows). The only rule is
    EWMA_RULE: the value beyond mu0 ± sigmas·sqrt(V_i).
    """
    if not 0 < lam <= 1:
        raise ValueError(f"the EWMA weight must be in (0, 1], got {lam}")
    center = baseline.score_mean
    value, variance = np.zeros(len(groups)), np.zeros(len(groups))
    e, v = center, 0.0
    for i, g in enumerate(groups):
        e += lam * (g.score_mean - e)  # not lam·x + (1−lam)·e: this form stays exactly on the centre when x is
        v = lam**2 * baseline.score_sd**2 / g.n + (1 - lam) ** 2 * v
        value[i], variance[i] = e, v
    sigma = np.sqrt(variance)
    z = _standardise(value, center, sigma)
    hits = [(EWMA_RULE,) if beyond else () for beyond in (np.abs(z) > sigmas).tolist()]
    limit = sigmas * sigma
    return Chart("ewma", list(groups), _points(value, center, center - limit, center + limit, z, hits))


def _standardise(value: np.ndarray, center: float, sigma: np.ndarray) -> np.ndarray:
    diff = value - center
    z = np.divide(diff, sigma, out=np.sign(diff) * Z_LIMIT, where=sigma > 0)
    return np.clip(z, -Z_LIMIT, Z_LIMIT)


def _points(
    value: np.ndarray, center: float, lcl: np.ndarray, ucl: np.ndarray, z: np.ndarray, hits: list[tuple[str, ...]]
) -> list[Point]:
    columns = (value.tolist(), lcl.tolist(), ucl.tolist(), z.tolist(), hits)
    return [Point(v, float(center), lo, hi, zi, h) for v, lo, hi, zi, h in zip(*columns, strict=True)]


def rule_hits(z: np.ndarray, rules: Sequence[str] = RULES) -> list[tuple[str, ...]]:
    """The Western Electric rules that hold at each point of standardised values, in RULES order.

    A rule holds at the point that completes its pattern, and only once its whole window exists (never at the first
    w−1 points): beyond_3sigma |z| > 3; 2_of_3_beyond_2sigma this point and the 2 before hold at least 2 beyond 2
    sigma on one side, this point among them; 4_of_5_beyond_1sigma likewise with 4 of 5 beyond 1 sigma; 8_same_side
    this point and the 7 before all above or all below 0; 6_trending this point and the 5 before strictly rising or
    strictly falling. ±inf counts as beyond any limit.
    """
    unknown = sorted(set(rules) - set(RULES))
    if unknown:
        raise ValueError(f"unknown rules {unknown}; the rules are {list(RULES)}")
    z = np.asarray(z, dtype=float)
    held = np.zeros((len(RULES), len(z)), dtype=bool)
    for row, rule in enumerate(RULES):
        if rule not in rules:
            continue
        if rule == "beyond_3sigma":
            held[row] = np.abs(z) > 3
        elif rule == "6_trending":
            step = np.diff(z)
            w = _TRENDING - 1
            held[row, w:] = (_window_sum(step > 0, w) == w) | (_window_sum(step < 0, w) == w)
        else:
            w, k, limit = _WINDOWS[rule]
            for side in (1, -1):
                beyond = side * z > limit
                held[row, w - 1 :] |= beyond[w - 1 :] & (_window_sum(beyond, w) >= k)
    codes = (1 << np.arange(len(RULES))) @ held
    return [_HITS[c] for c in codes.tolist()]


def _window_sum(flags: np.ndarray, w: int) -> np.ndarray:
    """How many flags are set in each window of `w` in a row, for the windows ending at index w-1 onwards."""
    total = np.r_[0, np.cumsum(flags, dtype=np.int64)]
    return total[w:] - total[:-w] if len(flags) >= w else np.zeros(0, dtype=np.int64)
