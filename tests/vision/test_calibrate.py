"""Threshold calibration for a stated miss rate, checked on score sets with known answers."""

import json
import math

import numpy as np
import pytest
from scipy.stats import binom

from annotation.errors import LineInspectError
from vision.calibrate import calibrate, clopper_pearson_upper, min_defects_needed, operating_point


def _separated(n_defect: int, n_normal: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Defects score in [0.6, 1], normals in [0, 0.4]."""
    rng = np.random.default_rng(seed)
    scores = np.r_[rng.uniform(0.6, 1.0, n_defect), rng.uniform(0.0, 0.4, n_normal)]
    return scores, np.r_[np.ones(n_defect, bool), np.zeros(n_normal, bool)]


def _overlapping(n_defect: int, n_normal: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = np.r_[rng.beta(5, 2, n_defect), rng.beta(2, 5, n_normal)]
    return scores, np.r_[np.ones(n_defect, bool), np.zeros(n_normal, bool)]


def _allowed_misses(n: int, miss_rate: float, confidence: float = 0.95) -> int:
    """Most misses k with P(X <= k | n, miss_rate) <= 1 - confidence: the Clopper-Pearson test via the binomial."""
    return max(k for k in range(n) if binom.cdf(k, n, miss_rate) <= 1 - confidence)


def test_upper_bound_with_no_miss_in_59_is_just_under_5_percent():
    assert clopper_pearson_upper(0, 59) == pytest.approx(0.0495, abs=5e-5)
    assert clopper_pearson_upper(0, 59) <= 0.05


def test_upper_bound_with_no_miss_in_58_is_over_5_percent():
    assert clopper_pearson_upper(0, 58) > 0.05


def test_upper_bound_with_no_miss_matches_closed_form():
    assert clopper_pearson_upper(0, 40, 0.9) == pytest.approx(1 - 0.1 ** (1 / 40))


def test_upper_bound_leaves_exactly_the_tail_probability_below_it():
    k, n = 3, 25
    p = clopper_pearson_upper(k, n, 0.95)
    tail = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))
    assert tail == pytest.approx(0.05)


def test_upper_bound_is_one_without_data_or_when_all_missed():
    assert clopper_pearson_upper(0, 0) == 1.0
    assert clopper_pearson_upper(7, 7) == 1.0


def test_upper_bound_rejects_more_events_than_trials():
    with pytest.raises(LineInspectError, match="k <= n"):
        clopper_pearson_upper(5, 3)


def test_min_defects_needed_for_5_percent_is_59():
    assert min_defects_needed(0.05) == 59


def test_min_defects_needed_for_1_percent_is_299():
    assert min_defects_needed(0.01) == 299


def test_perfectly_separated_just_enough_defects_gives_lowest_defect_score():
    scores, is_defect = _separated(59, 200)
    point = calibrate(scores, is_defect, miss_rate=0.05)
    assert point.threshold == scores[is_defect].min()
    assert point.misses == 0 and point.false_rejects == 0
    assert point.supported


def test_many_defects_allow_misses_and_threshold_is_the_k_plus_first_lowest_defect_score():
    scores, is_defect = _separated(1000, 500)
    k = _allowed_misses(1000, 0.01)
    assert k > 0
    point = calibrate(scores, is_defect, miss_rate=0.01)
    assert point.threshold == np.sort(scores[is_defect])[k]
    assert point.misses == k
    assert point.miss_rate_upper <= 0.01


def test_one_more_miss_would_break_the_bound():
    scores, is_defect = _overlapping(1000, 500)
    point = calibrate(scores, is_defect, miss_rate=0.01)
    assert clopper_pearson_upper(point.misses + 1, point.n_defect) > 0.01


def test_tied_defect_scores_at_the_threshold_are_all_caught():
    scores, is_defect = _separated(1000, 0)
    k = _allowed_misses(1000, 0.01)
    order = np.argsort(scores)
    scores[order[k - 1 : k + 2]] = scores[order[k]]  # the k-th, (k+1)-th and (k+2)-th lowest tie
    point = calibrate(scores, is_defect, miss_rate=0.01)
    assert point.threshold == scores[order[k]]
    assert point.misses == k - 1  # only defects strictly below the tied score are missed


def test_too_few_defects_is_unsupported_and_catches_every_defect():
    scores, is_defect = _separated(40, 100)
    point = calibrate(scores, is_defect, miss_rate=0.05)
    assert not point.supported
    assert point.threshold == scores[is_defect].min()
    assert point.misses == 0


def test_unsupported_note_says_how_many_defects_are_needed():
    scores, is_defect = _separated(40, 100)
    note = calibrate(scores, is_defect, miss_rate=0.05).note
    assert "40 held-out defects" in note and "7.2%" in note and "at least 59 defects" in note


def test_false_reject_rate_counts_normals_at_or_above_the_threshold():
    scores = [0.9, 0.8, 0.7, 0.1, 0.2, 0.7, 0.75, 0.95]
    is_defect = [1, 1, 1, 0, 0, 0, 0, 0]
    point = operating_point(scores, is_defect, threshold=0.7)
    assert point.false_rejects == 3  # 0.7 (tie), 0.75, 0.95
    assert point.false_reject_rate == pytest.approx(3 / 5)
    assert point.false_reject_rate_upper == pytest.approx(clopper_pearson_upper(3, 5))


def test_fixed_threshold_counts_misses_strictly_below_it():
    point = operating_point([0.3, 0.5, 0.5, 0.9, 0.1], [1, 1, 1, 1, 0], threshold=0.5)
    assert point.misses == 1
    assert point.miss_rate == pytest.approx(0.25)
    assert point.target_miss_rate is None


def test_looser_target_never_gives_a_lower_threshold():
    scores, is_defect = _overlapping(2000, 2000, seed=3)
    thresholds = [calibrate(scores, is_defect, miss_rate=r).threshold for r in (0.001, 0.002, 0.005, 0.01, 0.05, 0.2)]
    assert thresholds == sorted(thresholds)


def test_to_dict_is_json_ready():
    scores, is_defect = _overlapping(300, 300)
    data = calibrate(scores, is_defect, miss_rate=0.05).to_dict()
    assert json.loads(json.dumps(data))["target_miss_rate"] == 0.05


def test_no_defects_cannot_be_calibrated():
    with pytest.raises(LineInspectError, match="cannot calibrate a miss rate without defect examples"):
        calibrate([0.1, 0.2], [0, 0], miss_rate=0.05)


def test_mismatched_lengths_are_refused():
    with pytest.raises(LineInspectError, match="3 scores but 2 labels"):
        calibrate([0.1, 0.2, 0.3], [0, 1], miss_rate=0.05)


@pytest.mark.parametrize("bad", [float("nan"), 1.2, -0.1])
def test_scores_outside_zero_one_are_refused(bad):
    with pytest.raises(LineInspectError, match="finite defect probabilities"):
        calibrate([0.5, bad], [1, 0], miss_rate=0.05)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1])
def test_miss_rate_must_be_strictly_between_zero_and_one(bad):
    with pytest.raises(LineInspectError, match="miss rate"):
        calibrate([0.5, 0.1], [1, 0], miss_rate=bad)


@pytest.mark.parametrize("bad", [0.0, 1.0])
def test_confidence_must_be_strictly_between_zero_and_one(bad):
    with pytest.raises(LineInspectError, match="confidence"):
        calibrate([0.5, 0.1], [1, 0], miss_rate=0.05, confidence=bad)


def test_labels_other_than_zero_one_are_refused():
    with pytest.raises(LineInspectError, match="0/1"):
        calibrate([0.5, 0.1], [2, 0], miss_rate=0.05)
