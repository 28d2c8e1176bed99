"""Input drift on generated image measures and scores: each camera fault named for what it is, and quiet otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from serving.monitor.drift import FINDINGS, METRICS, assess, psi
from serving.settings import MonitorSettings

SETTINGS = MonitorSettings()


def sample(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """One value per image: gray level, gray spread, variance of the Laplacian, defect score."""
    return {
        "brightness": rng.normal(120, 12, n),
        "contrast": rng.normal(45, 5, n),
        "sharpness": rng.lognormal(np.log(300), 0.3, n),
        "score": rng.beta(2, 12, n),
    }


@pytest.fixture(scope="module")
def baseline() -> dict[str, np.ndarray]:
    return sample(np.random.default_rng(0), 2000)


def test_psi_of_a_sample_against_itself_is_zero():
    x = np.random.default_rng(1).normal(size=1000)
    assert psi(x, x) == 0.0


def test_psi_is_small_for_one_distribution_and_large_for_two():
    rng = np.random.default_rng(2)
    expected = rng.normal(size=5000)
    # Two samples of one distribution: PSI ~ chi2(9) · (1/5000 + 1/1000), about 0.01.
    assert psi(expected, rng.normal(size=1000)) < 0.05
    assert psi(expected, rng.normal(1.0, 1.0, size=1000)) > 0.5  # a one-sigma shift
    assert psi(expected, rng.normal(0.0, 3.0, size=1000)) > 0.5  # the same centre, three times the spread


def test_psi_merges_tied_edges_and_stays_finite():
    expected = np.r_[np.zeros(900), np.linspace(0.1, 1, 100)]  # 90% of the scores exactly 0
    assert psi(expected, expected) == 0.0
    assert 1 < psi(expected, np.full(50, 0.5)) < 20


@pytest.mark.parametrize(("mass", "others", "moved"), [(0.0, (0.0, 1.0), 0.001), (255.0, (200.0, 255.0), 254.0)])
def test_a_point_mass_gets_a_bin_of_its_own_at_either_end(mass, others, moved):
    rng = np.random.default_rng(15)
    expected = np.r_[np.full(950, mass), rng.uniform(*others, 50)]  # scores stuck at 0, or saturated pixels
    assert psi(expected, np.r_[np.full(190, mass), rng.uniform(*others, 10)]) < 0.01
    assert psi(expected, np.r_[np.full(190, moved), rng.uniform(*others, 10)]) > 5  # just off the mass


def test_psi_needs_values_in_both_samples():
    with pytest.raises(ValueError, match="both samples"):
        psi(np.ones(10), np.array([]))


@pytest.mark.parametrize(
    ("metric", "factor", "finding"),
    [("brightness", 0.5, "dark"), ("brightness", 1.5, "bright"), ("sharpness", 0.3, "blurred"),
     ("contrast", 0.5, "low_contrast")],
)  # fmt: skip
def test_a_camera_fault_is_named_and_nothing_else(baseline, metric, factor, finding):
    recent = sample(np.random.default_rng(3), 200)
    recent[metric] = recent[metric] * factor
    result = assess(baseline, recent, SETTINGS)
    assert result.findings == (finding,)
    assert result.metrics[metric].ratio == pytest.approx(factor, rel=0.1)
    assert result.metrics[metric].ks > 0.5 and result.metrics[metric].ks_pvalue < 1e-6


def test_scores_distributed_unlike_the_baseline_are_a_score_shift(baseline):
    recent = sample(np.random.default_rng(4), 200)
    recent["score"] = np.random.default_rng(5).beta(4, 8, 200)  # mean 0.33 against 0.14
    assert assess(baseline, recent, SETTINGS).findings == ("score_shift",)


def test_a_changed_distribution_within_the_ratio_is_no_finding(baseline):
    recent = sample(np.random.default_rng(6), 200)
    recent["brightness"] = recent["brightness"] * 0.85  # 1.5 sigma darker: a new distribution, not yet "dark"
    result = assess(baseline, recent, SETTINGS)
    assert result.metrics["brightness"].psi >= SETTINGS.psi_alarm
    assert result.findings == ()


def test_several_findings_come_in_findings_order(baseline):
    recent = sample(np.random.default_rng(7), 200)
    recent["score"], recent["sharpness"] = recent["score"] + 0.3, recent["sharpness"] / 5
    recent["brightness"] = np.full(200, 30.0)
    assert assess(baseline, recent, SETTINGS).findings == ("dark", "blurred", "score_shift")
    assert list(FINDINGS) == ["dark", "bright", "blurred", "low_contrast", "score_shift"]


def test_in_control_samples_raise_no_findings(baseline):
    # Between two samples of one distribution the PSI is about chi2(bins − 1) · (1/200 + 1/2000): 0.04 on average,
    # and 0.25 lies ~10 of its standard deviations above; the median ratios stay within a few percent of 1. So a
    # finding by chance has probability ~1e-6 per sample; the bound allows 1% of 200 trials.
    rng = np.random.default_rng(8)
    found = sum(bool(assess(baseline, sample(rng, 200), SETTINGS).findings) for _ in range(200))
    assert found <= 2


def test_small_in_control_samples_rarely_raise_a_score_shift(baseline):
    # At min_drift_records (30) fixed 10-bin PSI averages 9/30 = 0.3 between samples of one distribution, so two
    # thirds of the in-control samples would cross 0.25. With 2 bins (one per 25 records) the PSI is ~chi2(1)/30,
    # past 0.25 with probability ~0.7%; the bound allows 3% of 200 trials.
    rng = np.random.default_rng(9)
    n = SETTINGS.min_drift_records
    found = sum(bool(assess(baseline, sample(rng, n), SETTINGS).findings) for _ in range(200))
    assert psi(baseline["score"], sample(rng, n)["score"], bins=10) > 0.1  # what fixed bins would give
    assert found <= 6


def test_too_few_recent_records_give_no_findings_but_their_measures(baseline):
    recent = sample(np.random.default_rng(10), SETTINGS.min_drift_records - 1)
    recent["brightness"] = recent["brightness"] * 0.5
    result = assess(baseline, recent, SETTINGS)
    assert result.findings == () and result.n == SETTINGS.min_drift_records - 1
    assert result.metrics["brightness"].ratio == pytest.approx(0.5, rel=0.1)


def test_records_without_a_measure_are_left_out_of_it(baseline):
    recent = sample(np.random.default_rng(11), 200)
    recent["brightness"] = recent["brightness"] * 0.5
    measured = {name: values.copy() for name, values in recent.items()}
    recent["brightness"] = np.r_[recent["brightness"], [np.nan] * 100]
    recent["score"] = np.r_[recent["score"], sample(np.random.default_rng(12), 100)["score"]]
    with_gaps = {**baseline, "sharpness": np.r_[baseline["sharpness"], np.nan]}
    result = assess(with_gaps, recent, SETTINGS)
    assert result.n == 300 and result.findings == ("dark",)
    assert result.metrics["brightness"] == assess(baseline, measured, SETTINGS).metrics["brightness"]


def test_a_measure_missing_from_either_side_is_not_compared(baseline):
    recent = sample(np.random.default_rng(13), 200)
    del recent["sharpness"]
    no_contrast = {**baseline, "contrast": np.full(2000, np.nan)}
    assert set(assess(no_contrast, recent, SETTINGS).metrics) == set(METRICS) - {"sharpness", "contrast"}
    assert assess(baseline, {}, SETTINGS).n == 0


def test_median_ratio_stays_finite_when_the_baseline_median_is_zero():
    zeros, rng = np.zeros(100), np.random.default_rng(14)
    assert assess({"score": zeros}, {"score": zeros}, SETTINGS).metrics["score"].ratio == 1.0
    shifted = assess({"score": zeros}, {"score": rng.uniform(0.5, 1, 100)}, SETTINGS)
    assert shifted.metrics["score"].ratio == 1e9 and shifted.findings == ("score_shift",)
