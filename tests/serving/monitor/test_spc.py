"""SPC on generated record streams: signals where a known shift is, and false alarms no more often than theory says."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats

from serving.monitor.spc import (
    EWMA_RULE,
    RULE_TEXT,
    RULES,
    Z_LIMIT,
    Baseline,
    Chart,
    Point,
    Subgroup,
    estimate_baseline,
    ewma_chart,
    make_subgroups,
    p_chart,
    rule_hits,
)

GOOD, BAD, SPREAD = 0.15, 0.85, 0.05  # defect scores: good parts around 0.15, defects around 0.85
T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def records(rng: np.random.Generator, p, n: int, good_shift=0.0) -> tuple[list[datetime], np.ndarray, np.ndarray]:
    """One record a second, `n` per subgroup: subgroup i at defect rate p[i], good parts' scores up by good_shift[i]."""
    shift = np.repeat(np.broadcast_to(good_shift, len(p)), n)
    p = np.repeat(p, n)
    defect = rng.random(len(p)) < p
    score = np.where(defect, BAD, GOOD + shift) + rng.normal(0, SPREAD, len(p))
    return [T0 + timedelta(seconds=i) for i in range(len(p))], defect, score


def subgroups(rng: np.random.Generator, p, n: int, good_shift=0.0) -> list[Subgroup]:
    return make_subgroups(*records(rng, p, n, good_shift), size=n)


def score_sd(p: float) -> float:
    """Standard deviation of one record's score at defect rate p (the two-component mixture of `records`)."""
    return math.sqrt(SPREAD**2 + p * (1 - p) * (BAD - GOOD) ** 2)


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return T0.replace(hour=hour, minute=minute, second=second)


def first(signals: list[tuple[int, str]], rules: tuple[str, ...] | None = None) -> int | None:
    """Index of the first signal (of one of `rules`, when given)."""
    return next((i for i, rule in signals if rules is None or rule in rules), None)


def where(hits: list[tuple[str, ...]], rule: str) -> list[int]:
    return [i for i, h in enumerate(hits) if rule in h]


def all_finite(chart: Chart) -> bool:
    return all(math.isfinite(x) for pt in chart.points for x in (pt.value, pt.center, pt.lcl, pt.ucl, pt.z))


# --- subgroups --------------------------------------------------------------------------------------------------------


def test_count_subgroups_leave_out_the_trailing_partial_group():
    times = [T0 + timedelta(minutes=i) for i in range(10)]
    defect = [False, True, False, False, True, True, False, False, True, False]
    score = np.linspace(0.1, 1.0, 10)
    groups = make_subgroups(times, defect, score, size=4)
    assert [(g.start, g.end, g.n, g.defects) for g in groups] == [
        (times[0], times[3], 4, 1),
        (times[4], times[7], 4, 2),
    ]
    assert groups[1].score_mean == pytest.approx(score[4:8].mean())
    assert groups[1].score_var == pytest.approx(score[4:8].var(ddof=1))
    assert groups[1].p == 0.5


def test_a_subgroup_of_one_record_has_variance_zero():
    groups = make_subgroups([T0, T0 + timedelta(seconds=1)], [True, False], [0.9, 0.2], size=1)
    assert [(g.n, g.defects, g.score_mean, g.score_var) for g in groups] == [(1, 1, 0.9, 0.0), (1, 0, 0.2, 0.0)]


HOURLY = [at(10, 17), at(10, 40), at(11, 5), at(13, 30), at(13, 59), at(14, 10)]  # nothing from 12:00 to 13:00


def test_time_subgroups_sit_on_the_hour_skip_empty_windows_and_leave_out_the_open_one():
    groups = make_subgroups(HOURLY, [True, False, False, True, True, False], np.arange(6.0), minutes=60)
    assert [(g.start, g.end, g.n, g.defects) for g in groups] == [
        (at(10, 0), at(11, 0), 2, 1),
        (at(11, 0), at(12, 0), 1, 0),
        (at(13, 0), at(14, 0), 2, 2),
    ]
    assert [g.score_mean for g in groups] == [0.5, 2.0, 3.5]


@pytest.mark.parametrize(("now", "windows"), [(at(14, 59, 59), 3), (at(15, 0), 4), (at(16, 30), 4)])
def test_the_last_window_counts_once_now_reaches_its_end(now, windows):
    groups = make_subgroups(HOURLY, [False] * 6, np.zeros(6), minutes=60, now=now)
    assert len(groups) == windows
    assert groups[-1].end <= now


def test_time_windows_floor_to_their_length_since_the_epoch():
    times = [at(10, 17), at(10, 29), at(10, 31), at(10, 50)]
    groups = make_subgroups(times, [False] * 4, np.zeros(4), minutes=15)
    assert [(g.start, g.n) for g in groups] == [(at(10, 15), 2), (at(10, 30), 1)]


def test_naive_times_are_windowed_like_utc():
    naive = [t.replace(tzinfo=None) for t in HOURLY]
    groups = make_subgroups(naive, [False] * 6, np.zeros(6), minutes=60)
    assert [g.start for g in groups] == [datetime(2026, 3, 2, h) for h in (10, 11, 13)]


def test_a_given_origin_sets_the_windows_and_drops_records_before_it():
    groups = make_subgroups(HOURLY, [False] * 6, np.arange(6.0), minutes=30, origin=at(10, 30), now=at(14, 0))
    assert [(g.start, g.n, g.score_mean) for g in groups] == [(at(10, 30), 1, 1.0), (at(11, 0), 1, 2.0),
                                                              (at(13, 30), 2, 3.5)]  # fmt: skip


@pytest.mark.parametrize("grouping", [{}, {"size": 10, "minutes": 5.0}])
def test_subgroups_need_exactly_one_of_size_and_minutes(grouping):
    with pytest.raises(ValueError, match="exactly one of size"):
        make_subgroups(HOURLY, [False] * 6, np.zeros(6), **grouping)


def test_no_records_no_subgroups():
    assert make_subgroups([], [], [], size=5) == [] and make_subgroups([], [], [], minutes=5) == []


# --- baseline ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1])
def test_a_baseline_needs_two_subgroups(count):
    groups = [Subgroup(T0, T0, 10, 1, 0.2, 0.01)] * count
    with pytest.raises(ValueError, match="at least 2 complete subgroups"):
        estimate_baseline(groups)


def test_baseline_pools_defect_rate_mean_and_within_subgroup_spread():
    rng = np.random.default_rng(1)
    times, defect, score = records(rng, [0.05] * 4, 300)
    score[600:] += 0.3  # a step between subgroups: not part of the within-subgroup spread
    baseline = estimate_baseline(make_subgroups(times, defect, score, size=300))
    within = [score[i : i + 300].var(ddof=1) for i in range(0, 1200, 300)]
    assert baseline.p == pytest.approx(defect.mean()) and baseline.records == 1200 and baseline.subgroups == 4
    assert baseline.score_mean == pytest.approx(score.mean())
    assert baseline.score_sd == pytest.approx(math.sqrt(np.mean(within)))
    assert baseline.score_sd < score.std()


def test_a_single_defect_against_a_zero_defect_baseline_is_beyond_3sigma():
    baseline = estimate_baseline([Subgroup(T0, T0, 100, 0, 0.1, 0.001)] * 5)
    chart = p_chart([Subgroup(T0, T0, 100, d, 0.1, 0.001) for d in (0, 1, 0)], baseline)
    assert [pt.rules for pt in chart.points] == [(), ("beyond_3sigma",), ()]
    assert [pt.z for pt in chart.points] == [0.0, Z_LIMIT, 0.0]
    assert chart.points[1].lcl == chart.points[1].ucl == 0.0
    assert all_finite(chart)


def test_constant_scores_stay_on_the_ewma_centre_until_they_change():
    rng = np.random.default_rng(2)
    times, defect, _ = records(rng, [0.05] * 8, 3)
    score = np.full(len(times), 0.1)  # 0.1 is not exact in binary: 0.1 + 0.1 + 0.1 = 0.30000000000000004
    score[-3:] = 0.11
    groups = make_subgroups(times, defect, score, size=3)
    baseline = estimate_baseline(groups[:4])
    chart = ewma_chart(groups, baseline)
    assert (baseline.score_mean, baseline.score_sd) == (0.1, 0.0)
    assert [pt.z for pt in chart.points[:7]] == [0.0] * 7 and chart.points[7].z == Z_LIMIT
    assert chart.signals() == [(7, EWMA_RULE)]
    assert all_finite(chart)


# --- the rules, on hand-made z ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "z", "held_at"),
    [
        ("beyond_3sigma", [0, 3.0, -3.01, 2.99, np.inf, -np.inf, Z_LIMIT], [2, 4, 5, 6]),
        ("2_of_3_beyond_2sigma", [0, 0, 2.5, 0, 2.5, 0], [4]),
        ("2_of_3_beyond_2sigma", [0, 0, 2.5, 2.5, 0], [3]),  # at 4 two of three are beyond, but not point 4
        ("2_of_3_beyond_2sigma", [0, 0, -2.5, -1, -np.inf], [4]),
        ("2_of_3_beyond_2sigma", [0, 0, 2.5, 0, -2.5, 2.5], []),  # beyond on both sides, never 2 on one
        ("4_of_5_beyond_1sigma", [0, 0, 0, 1.5, 1.5, 0, 1.5, 1.5], [7]),  # at 6 only 3 of 5
        ("4_of_5_beyond_1sigma", [0, 0, 0, 1.5, -1.5, 1.5, 1.5, 1.5, 1.5], [7, 8]),  # the -1.5 is on the other side
        ("4_of_5_beyond_1sigma", [0, 0, 1.5, -1.5, 1.5, -1.5, 1.5], []),
        ("4_of_5_beyond_1sigma", [1.5, 1.5, 1.5, 1.5, 0.5], []),  # 4 of 5 beyond, but not the point completing it
        ("8_same_side", [-0.1] + [0.1] * 8, [8]),
        ("8_same_side", [0.1] + [-0.1] * 9, [8, 9]),
        ("8_same_side", [0.1] * 4 + [0.0] + [0.1] * 7, []),  # on the centre line is on neither side
        ("8_same_side", [0.1] * 4 + [-0.1] + [0.1] * 7, []),
        ("6_trending", [1.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5], [6]),  # at 5 the window starts with the fall from 1.0
        ("6_trending", [0.5, 0.4, 0.3, 0.2, 0.1, 0.0, -0.1], [5, 6]),
        ("6_trending", [0.0, 0.1, 0.2, 0.2, 0.3, 0.4, 0.5], []),  # equal is not rising
        ("6_trending", [0.0, 0.1, 0.2, 0.15, 0.3, 0.4, 0.5], []),
    ],
)
def test_a_rule_holds_exactly_where_its_pattern_completes(rule, z, held_at):
    assert where(rule_hits(np.array(z), [rule]), rule) == held_at
    assert where(rule_hits(np.array(z)), rule) == held_at  # the other rules do not change it


@pytest.mark.parametrize(
    ("rule", "z"),
    [("2_of_3_beyond_2sigma", [2.5, 2.5]), ("4_of_5_beyond_1sigma", [1.5] * 4), ("8_same_side", [0.5] * 7),
     ("6_trending", [0.0, 0.1, 0.2, 0.3, 0.4])],
)  # fmt: skip
def test_window_rules_need_their_whole_window(rule, z):
    assert where(rule_hits(np.array(z)), rule) == []
    assert where(rule_hits(np.array([*z, 0.5 + max(z)])), rule) == [len(z)]  # one point more completes it


def test_rules_come_in_rules_order_and_only_those_asked_for():
    z = np.array([0.5, 1.0, 1.5, 2.0, 2.5, 3.5])  # at the last point: beyond 3, 2 of 3, 4 of 5, trending
    assert rule_hits(z)[-1] == ("beyond_3sigma", "2_of_3_beyond_2sigma", "4_of_5_beyond_1sigma", "6_trending")
    assert rule_hits(z, ["6_trending", "beyond_3sigma"])[-1] == ("beyond_3sigma", "6_trending")
    assert rule_hits(z, [])[-1] == ()


def test_an_unknown_rule_is_an_error_that_lists_the_rules():
    with pytest.raises(ValueError, match="beyond_3sigma"):
        rule_hits(np.zeros(3), ["9_in_a_row"])


def test_every_rule_has_a_sentence():
    assert set(RULE_TEXT) == {*RULES, EWMA_RULE}


def test_signals_mark_the_start_of_each_episode():
    held = [(), ("beyond_3sigma",), ("beyond_3sigma",), (), ("beyond_3sigma",), ("beyond_3sigma", "8_same_side")]
    points = [Point(0.0, 0.0, 0.0, 0.0, 0.0, h) for h in held]
    chart = Chart("p", [Subgroup(T0, T0, 1, 0, 0.0, 0.0)] * len(points), points)
    assert chart.signals() == [(1, "beyond_3sigma"), (4, "beyond_3sigma"), (5, "8_same_side")]


# --- charts -----------------------------------------------------------------------------------------------------------


def test_p_chart_limits_follow_each_subgroup_s_size():
    baseline = Baseline(p=0.04, score_mean=0.2, score_sd=0.1, subgroups=10, records=10_000)
    chart = p_chart([Subgroup(T0, T0, n, 0, 0.2, 0.01) for n in (100, 400, 1_000_000)], baseline)
    small, large, huge = chart.points
    assert small.ucl - 0.04 == pytest.approx(2 * (large.ucl - 0.04))
    assert large.ucl == pytest.approx(0.04 + 3 * math.sqrt(0.04 * 0.96 / 400))
    assert small.lcl == 0.0 and large.lcl == pytest.approx(0.04 - 3 * math.sqrt(0.04 * 0.96 / 400))
    assert huge.z == pytest.approx(-0.04 / math.sqrt(0.04 * 0.96 / 1_000_000)) and "beyond_3sigma" in huge.rules


def test_ewma_limits_are_the_textbook_exact_limits_for_a_constant_subgroup_size():
    baseline = Baseline(p=0.04, score_mean=0.2, score_sd=0.1, subgroups=10, records=10_000)
    chart = ewma_chart([Subgroup(T0, T0, 25, 1, 0.2, 0.01)] * 30, baseline, lam=0.3, sigmas=2.5)
    for i, pt in enumerate(chart.points, start=1):
        width = 2.5 * 0.1 / 5 * math.sqrt(0.3 / 1.7 * (1 - 0.7 ** (2 * i)))
        assert (pt.lcl, pt.ucl) == pytest.approx((0.2 - width, 0.2 + width))


def test_ewma_follows_its_recursion():
    baseline = Baseline(p=0.04, score_mean=0.2, score_sd=0.1, subgroups=10, records=10_000)
    chart = ewma_chart([Subgroup(T0, T0, 25, 1, m, 0.01) for m in (0.3, 0.1, 0.25)], baseline, lam=0.5)
    assert [pt.value for pt in chart.points] == pytest.approx([0.25, 0.175, 0.2125])


def test_a_defect_rate_jump_signals_beyond_3sigma_at_the_jump():
    # 10 subgroups in control, then p 0.04 -> 0.10 at subgroup k = 10. With n = 1000 the UCL is 5.9%, which a
    # subgroup at 10% stays under with probability ~5e-6. Over random seeds the five rules together false-alarm
    # somewhere in the 10 in-control subgroups ~13% of the time (measured over 300 seeds); this seed has none.
    rng = np.random.default_rng(7)
    baseline = estimate_baseline(subgroups(rng, [0.04] * 50, 1000))
    k = 10
    chart = p_chart(subgroups(rng, [0.04] * k + [0.10] * 5, 1000), baseline)
    assert first(chart.signals()) == k
    assert (k, "beyond_3sigma") in chart.signals()
    assert all("beyond_3sigma" in pt.rules for pt in chart.points[k:])


def test_a_slow_rise_in_defect_rate_trips_the_run_rules_after_it_starts():
    # p rises by 0.002 a subgroup (a third of the chart's sigma at n = 1000) from subgroup k = 10. Over 300 random
    # seeds 8_same_side or 6_trending first signals within 15 subgroups of the start 94% of the time, and falsely
    # before it 5%; this seed is one of the usual ones.
    rng = np.random.default_rng(11)
    baseline = estimate_baseline(subgroups(rng, [0.04] * 50, 1000))
    k = 10
    chart = p_chart(subgroups(rng, np.r_[[0.04] * k, 0.04 + 0.002 * np.arange(1, 26)], 1000), baseline)
    runs = ("8_same_side", "6_trending")
    assert not any(set(runs) & set(pt.rules) for pt in chart.points[:k])
    assert first(chart.signals(), runs) in range(k, k + 16)


def test_ewma_catches_a_small_score_shift_before_the_p_chart():
    # Good parts' scores rise by one standard error of a subgroup mean (0.05 of one record's spread, invisible record
    # by record) from subgroup k = 5; the defect rate does not change, so the p-chart's signals are false alarms
    # (its five rules together: about one per 50 subgroups in control). The EWMA (lam 0.2, L 3) needs 8 subgroups
    # on the median to see a 1-sigma shift. Over 300 random seeds: EWMA within 30 subgroups 95%, before the p-chart
    # 86%, both 84%; this seed is one of the usual ones. (A 0.5-sigma shift takes the EWMA ~28 subgroups on the
    # median: a coin toss against the p-chart's false alarms, so no test could promise it.)
    n, p, k = 500, 0.04, 5
    rng = np.random.default_rng(3)
    baseline = estimate_baseline(subgroups(rng, [p] * 200, n))
    shift = score_sd(p) / math.sqrt(n) / (1 - p)  # moves the mean score by one standard error of a subgroup mean
    groups = subgroups(rng, [p] * (k + 40), n, np.r_[[0.0] * k, [shift] * 40])
    ewma = first(ewma_chart(groups, baseline).signals())
    assert ewma in range(k, k + 31)
    assert (first(p_chart(groups, baseline).signals()) or math.inf) > ewma


# --- false alarms -----------------------------------------------------------------------------------------------------


def normal_rates() -> dict[str, float]:
    """Per-point probability that each rule holds, for independent N(0, 1) points.

    With q_k = P(z > k) on one side: beyond_3sigma 2·q_3; 2_of_3 this point beyond 2 sigma and at least one of the 2
    before it on the same side, 2·q_2·(1 − (1 − q_2)²); 4_of_5 this point beyond 1 sigma and at least 3 of the 4
    before it, 2·q_1·(4q_1³(1 − q_1) + q_1⁴); 8_same_side 2·0.5⁸; 6_trending: 6 independent values come in one of
    6! orders equally likely, 2 of them monotone, 2/720. (The often quoted 0.0030 and 0.0055 for 2_of_3 and 4_of_5
    count any window with the pattern; the rule here also needs the newest point beyond, giving 0.0020 and 0.0045.)
    """
    q3, q2, q1 = stats.norm.sf([3, 2, 1])
    return {
        "beyond_3sigma": 2 * q3,
        "2_of_3_beyond_2sigma": 2 * q2 * (1 - (1 - q2) ** 2),
        "4_of_5_beyond_1sigma": 2 * q1 * (4 * q1**3 * (1 - q1) + q1**4),
        "8_same_side": 2 * 0.5**8,
        "6_trending": 2 / 720,
    }


def rates(hits: list[tuple[str, ...]]) -> dict[str, float]:
    return {rule: sum(rule in h for h in hits) / len(hits) for rule in RULES}


# Hits of a window rule cluster (a run of 9 on one side holds 8_same_side twice), which inflates the variance of a
# hit rate up to ~3x over the binomial; 5 binomial standard errors are therefore ~3 true ones.
TOLERANCE_SE = 5


def test_rules_on_normal_noise_hold_at_their_theoretical_rates():
    z = np.random.default_rng(5).standard_normal(1_000_000)
    observed, expected = rates(rule_hits(z)), normal_rates()
    for rule in RULES:
        se = math.sqrt(expected[rule] / len(z))
        assert abs(observed[rule] - expected[rule]) <= TOLERANCE_SE * se, (rule, observed[rule], expected[rule])


def binomial_rates(n: int, p: float, center: float) -> dict[str, float]:
    """`normal_rates` for a p-chart whose subgroups are Binomial(n, p) around a centre p̄ (the estimated baseline):
    the same formulas on the binomial's exact tail probabilities. 6_trending is bounded by 2/720 (ties only lower
    it)."""
    sigma = math.sqrt(center * (1 - center) / n)

    def beyond(k: float) -> tuple[float, float]:  # P(z > k), P(z < -k)
        return stats.binom.sf(math.floor(n * (center + k * sigma)), n, p), stats.binom.cdf(
            math.ceil(n * (center - k * sigma)) - 1, n, p
        )

    return {
        "beyond_3sigma": sum(beyond(3)),
        "2_of_3_beyond_2sigma": sum(q * (1 - (1 - q) ** 2) for q in beyond(2)),
        "4_of_5_beyond_1sigma": sum(q * (4 * q**3 * (1 - q) + q**4) for q in beyond(1)),
        "8_same_side": sum(q**8 for q in beyond(0)),
        "6_trending": 2 / 720,
    }


def in_control(rng: np.random.Generator, count: int, n: int, p: float, mu: float = 0.2, sd: float = 0.15):
    """Subgroups straight from their distributions (too many records to generate one by one)."""
    defects = rng.binomial(n, p, count)
    means = rng.normal(mu, sd / math.sqrt(n), count)
    variances = sd**2 * rng.chisquare(n - 1, count) / (n - 1)
    return [Subgroup(T0, T0, n, int(d), float(m), float(v)) for d, m, v in zip(defects, means, variances, strict=True)]


def test_p_chart_false_alarms_no_more_often_than_the_binomial_gives():
    # A realistic p-chart is binomial, not normal: at n = 2000, p = 0.05 its discreteness and skew move the rates
    # from normal theory (beyond_3sigma 0.0025 not 0.0027, 4_of_5 0.0052 not 0.0045, 8_same_side 0.0080 not 0.0078
    # and 6_trending below 2/720 through ties), so the bound is the binomial's exact rate for the estimated centre,
    # plus the tolerance above. The baseline has 10^7 records: p̄ is off by ~0.014 of a point's sigma.
    n, p = 2000, 0.05
    rng = np.random.default_rng(8)
    baseline = estimate_baseline(in_control(rng, 5000, n, p))
    chart = p_chart(in_control(rng, 20_000, n, p), baseline)
    observed, expected = rates([pt.rules for pt in chart.points]), binomial_rates(n, p, baseline.p)
    normal = normal_rates()
    for rule in RULES:
        assert expected[rule] <= 1.2 * normal[rule]  # the looser bound is not loose by much
        se = math.sqrt(expected[rule] / len(chart.points))
        assert observed[rule] <= expected[rule] + TOLERANCE_SE * se, (rule, observed[rule], expected[rule])


def test_ewma_in_control_alarms_about_once_per_510_subgroups():
    # In steady state the EWMA (lam 0.2, L 3) is normal, so a point is beyond the limits with probability 0.0027,
    # but such points come in runs; an alarm (a run's start) comes once per ~510 subgroups (simulated over 10^8
    # steps; the zero-state ARL0 of this chart is ~560). Alarms are rare separate events: bound by 3 Poisson SEs.
    rng = np.random.default_rng(9)
    baseline = estimate_baseline(in_control(rng, 5000, 500, 0.04))
    chart = ewma_chart(in_control(rng, 20_000, 500, 0.04), baseline)
    rate, expected = len(chart.signals()) / len(chart.points), 1 / 510
    assert rate <= expected + 3 * math.sqrt(expected / len(chart.points)), rate
