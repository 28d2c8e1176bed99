"""Evaluation metrics against hand-computed answers, and plots that load as real images."""

import json

import numpy as np
import pytest
from PIL import Image

from annotation.errors import LineInspectError
from vision.metrics import evaluate_scores, write_plots

# Called defect at 0.5: [0, 1, 0 | 1, 0, 1, 1] -> tn=2 fp=1 fn=1 tp=3
IS_DEFECT = [0, 0, 0, 1, 1, 1, 1]
SCORES = [0.1, 0.6, 0.2, 0.9, 0.4, 0.7, 0.5]


def _mixed(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return np.r_[np.ones(50, bool), np.zeros(300, bool)], np.r_[rng.beta(5, 2, 50), rng.beta(2, 6, 300)]


def test_confusion_matrix_matches_hand_count():
    result = evaluate_scores(IS_DEFECT, SCORES, 0.5)
    assert result["confusion_matrix"] == {"labels": ["normal", "defect"], "matrix": [[2, 1], [1, 3]]}


def test_per_class_precision_recall_match_hand_count():
    per_class = evaluate_scores(IS_DEFECT, SCORES, 0.5)["per_class"]
    assert per_class["defect"] == pytest.approx({"precision": 3 / 4, "recall": 3 / 4, "f1": 3 / 4, "support": 4})
    assert per_class["normal"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})


def test_rates_and_counts_match_hand_count():
    result = evaluate_scores(IS_DEFECT, SCORES, 0.5)
    assert (result["n"], result["n_defect"], result["n_normal"]) == (7, 4, 3)
    assert result["accuracy"] == pytest.approx(5 / 7)
    assert result["miss_rate"] == pytest.approx(1 / 4)
    assert result["false_reject_rate"] == pytest.approx(1 / 3)


def test_score_equal_to_threshold_is_called_defect():
    result = evaluate_scores([1, 0], [0.5, 0.5], 0.5)
    assert result["confusion_matrix"]["matrix"] == [[0, 1], [0, 1]]


def test_separated_scores_give_auc_and_ap_of_one():
    result = evaluate_scores([0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.8, 0.9], 0.5)
    assert result["roc_auc"] == 1.0
    assert result["average_precision"] == 1.0


def test_single_class_gives_none_auc_with_reason():
    result = evaluate_scores([0, 0, 0], [0.1, 0.6, 0.2], 0.5)
    assert result["roc_auc"] is None and result["average_precision"] is None
    assert any("only 3 normal parts" in note for note in result["notes"])
    assert result["miss_rate"] is None


def test_result_is_json_serialisable_even_for_one_class():
    for is_defect in ([0, 0, 1, 1], [1, 1, 1, 1]):
        result = evaluate_scores(is_defect, [0.1, 0.6, 0.2, 0.9], 0.5)
        back = json.loads(json.dumps(result, allow_nan=False))  # NaN or a NumPy type would raise here
        assert back["n"] == 4 and back["accuracy"] == pytest.approx(result["accuracy"])
        assert (back["roc_auc"] is None) == (sum(is_defect) == 4)  # one class: no ROC-AUC, said as null


def test_out_of_range_threshold_is_refused():
    with pytest.raises(LineInspectError, match="threshold"):
        evaluate_scores(IS_DEFECT, SCORES, 1.5)


def test_plots_are_written_as_readable_pngs(tmp_path):
    is_defect, scores = _mixed()
    paths = write_plots(is_defect, scores, 0.5, tmp_path / "plots", title="test model")
    assert set(paths) == {"roc", "pr", "confusion_matrix", "score_histogram"}
    for path in paths.values():
        assert path.name.endswith(".png") and path.stat().st_size > 10_000
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert 500 <= image.width <= 800 and 400 <= image.height <= 700
            assert np.asarray(image.convert("L")).std() > 5  # not a blank canvas


def test_single_class_plots_are_written_without_crashing(tmp_path):
    paths = write_plots([1, 1, 1], [0.2, 0.7, 0.9], 0.5, tmp_path)
    assert {"confusion_matrix", "score_histogram"} <= set(paths)
    for path in paths.values():
        assert path.exists() and path.stat().st_size > 1_000
        with Image.open(path) as image:
            assert image.format == "PNG" and np.asarray(image.convert("L")).std() > 5  # drawn, not blank
