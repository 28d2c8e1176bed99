"""Evaluation metrics and plots for the binary normal/defect classifier.

A part is called defect when `score >= threshold`, the same rule as calibration and serving.
Metrics come from scikit-learn; the dict is JSON-ready so it can go into reports and the
model metadata. Plots are drawn on Agg figures that never touch pyplot's global state.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    precision_recall_curve,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from annotation import verdicts
from annotation.errors import LineInspectError
from annotation.verdicts import CLASSES
from vision.calibrate import check_scores, check_threshold

FIGSIZE = (6.0, 5.0)
DPI = 110
COLORS = {"normal": "tab:blue", "defect": "tab:red"}
TITLES = {
    "roc": "ROC curve",
    "pr": "Precision-recall curve",
    "confusion_matrix": "Confusion matrix",
    "score_histogram": "Score distribution",
}


def what_to_try(pretrained: bool, method: str) -> str:
    """What to change when a model cannot be told from chance."""
    tips = [] if pretrained else ["pretrained features (model.pretrained: auto)"]
    tips += ["a larger input so small defects keep their pixels (input.height/width)", "more labelled images"]
    tips.append("method: classifier when defects are labelled" if method == "anomaly" else "method: anomaly")
    return "try " + ", ".join(tips[:-1]) + " or " + tips[-1]


RESAMPLED_VALUES = 4_000_000  # scores drawn at once by the bootstrap (about 100 MB with their ranks)


def roc_auc_interval(
    is_defect: Sequence[bool] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the ROC-AUC, resampling defects and normals separately (so every
    resample has both); None when one class is absent."""
    y, s = np.asarray(is_defect, dtype=bool), np.asarray(scores, dtype=float)
    pos, neg = s[y], s[~y]
    if not len(pos) or not len(neg):
        return None
    rng = np.random.default_rng(seed)
    aucs = np.empty(resamples)
    step = max(1, RESAMPLED_VALUES // len(s))  # resamples at a time: memory stays bounded for large sets
    for start in range(0, resamples, step):
        k = min(step, resamples - start)
        p = pos[rng.integers(0, len(pos), (k, len(pos)))]
        n = neg[rng.integers(0, len(neg), (k, len(neg)))]
        ranks = rankdata(np.concatenate([p, n], axis=1), axis=1)  # ties share their mean rank: they count one half
        aucs[start : start + k] = (ranks[:, : len(pos)].sum(axis=1) - len(pos) * (len(pos) + 1) / 2) / (
            len(pos) * len(neg)
        )
    tail = (1 - confidence) / 2
    return float(np.quantile(aucs, tail)), float(np.quantile(aucs, 1 - tail))


def interval_text(interval: Sequence[float] | None) -> str:
    """ " (95% CI 0.912-0.981)", or "" when there is no interval: how every command shows one."""
    return f" (95% CI {interval[0]:.3f}-{interval[1]:.3f})" if interval else ""


def chance_verdict(interval: Sequence[float] | None, where: str) -> str | None:
    """A sentence when a ROC-AUC interval cannot be told from chance (it reaches 0.5), else None."""
    if interval is None or interval[0] > 0.5:
        return None
    return (
        f"the model cannot be told from chance on the {where} images: ROC-AUC 95% interval "
        f"{interval[0]:.3f}-{interval[1]:.3f} includes 0.5"
    )


def evaluate_scores(
    is_defect: Sequence[bool] | np.ndarray, scores: Sequence[float] | np.ndarray, threshold: float
) -> dict:
    """Held-out metrics at `threshold`; undefined values are None with the reason in `notes`."""
    s, y = check_scores(scores, is_defect)
    check_threshold(threshold)
    pred = verdicts.is_defect(s, threshold)
    (tn, fp), (fn, tp) = confusion_matrix(y, pred, labels=[False, True]).tolist()
    precision, recall, f1, support = precision_recall_fscore_support(
        y, pred, labels=[False, True], zero_division=np.nan
    )
    notes = []
    both = _both_classes(y)
    if not both:
        notes.append(f"ROC AUC and average precision are undefined: {_one_class_reason(y)}")
    return {
        "n": len(y),
        "n_defect": tp + fn,
        "n_normal": tn + fp,
        "roc_auc": float(roc_auc_score(y, s)) if both else None,
        "roc_auc_ci": list(roc_auc_interval(y, s)) if both else None,  # 95% bootstrap interval
        "average_precision": float(average_precision_score(y, s)) if both else None,
        "accuracy": float(accuracy_score(y, pred)),
        "per_class": {
            name: {
                "precision": _none_if_nan(precision[i]),
                "recall": _none_if_nan(recall[i]),
                "f1": _none_if_nan(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(CLASSES)
        },
        "confusion_matrix": {"labels": list(CLASSES), "matrix": [[tn, fp], [fn, tp]]},
        "miss_rate": fn / (fn + tp) if fn + tp else None,
        "false_reject_rate": fp / (fp + tn) if fp + tn else None,
        "threshold": float(threshold),
        "notes": notes,
    }


def write_plots(
    is_defect: Sequence[bool] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    threshold: float,
    out_dir: Path,
    title: str = "",
) -> dict[str, Path]:
    """Write roc.png, pr.png, confusion_matrix.png and score_histogram.png; returns name -> path.

    With one class only, roc.png and pr.png say why there is no curve instead of failing.
    """
    s, y = check_scores(scores, is_defect)
    check_threshold(threshold)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LineInspectError(f"cannot create the plot folder {out_dir}: {exc}") from None
    drawers = {"roc": _draw_roc, "pr": _draw_pr, "confusion_matrix": _draw_confusion, "score_histogram": _draw_hist}
    paths = {}
    for name, draw in drawers.items():
        fig, ax = _figure()
        ax.set_title(f"{title} — {TITLES[name]}" if title else TITLES[name])
        draw(ax, y, s, threshold)
        paths[name] = out_dir / f"{name}.png"
        fig.savefig(paths[name], dpi=DPI)
    return paths


def _figure():
    """An Agg figure outside pyplot: no global backend switch, nothing left open after saving."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _draw_roc(ax, y: np.ndarray, s: np.ndarray, threshold: float) -> None:
    if not _both_classes(y):
        _say(ax, f"No ROC curve: {_one_class_reason(y)}")
        return
    fpr, tpr, _ = roc_curve(y, s)
    ax.plot(fpr, tpr, color="tab:purple", lw=2, label=f"model (AUC = {roc_auc_score(y, s):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="chance")
    op_fpr, op_tpr = np.mean(verdicts.is_defect(s[~y], threshold)), np.mean(verdicts.is_defect(s[y], threshold))
    ax.plot(op_fpr, op_tpr, "o", color="black", ms=8, label=f"threshold {threshold:.3g}")
    ax.set(xlabel="False-reject rate (good parts called defect)", ylabel="Defects caught (1 - miss rate)")
    _unit_axes(ax)
    ax.legend(loc="lower right")


def _draw_pr(ax, y: np.ndarray, s: np.ndarray, threshold: float) -> None:
    if not _both_classes(y):
        _say(ax, f"No precision-recall curve: {_one_class_reason(y)}")
        return
    precision, recall, _ = precision_recall_curve(y, s)
    ap = average_precision_score(y, s)
    ax.step(recall, precision, where="post", color="tab:purple", lw=2, label=f"model (AP = {ap:.3f})")
    ax.axhline(y.mean(), color="grey", ls="--", lw=1, label=f"chance (defect share {y.mean():.1%})")
    pred = verdicts.is_defect(s, threshold)
    if pred.any():
        op = (np.mean(pred[y]), np.mean(y[pred]))
        ax.plot(*op, "o", color="black", ms=8, label=f"threshold {threshold:.3g}")
    else:
        ax.plot([], [], " ", label=f"threshold {threshold:.3g}: no part called defect")
    ax.set(xlabel="Recall (defects caught)", ylabel="Precision (rejected parts truly defective)")
    _unit_axes(ax)
    ax.legend(loc="lower left")


def _draw_confusion(ax, y: np.ndarray, s: np.ndarray, threshold: float) -> None:
    counts = confusion_matrix(y, verdicts.is_defect(s, threshold), labels=[False, True])
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(counts):
        text = f"{count}\n({share[i, j]:.1%})" if totals[i, 0] else f"{count}"
        ax.text(j, i, text, ha="center", va="center", fontsize=14, color="white" if share[i, j] > 0.6 else "black")
    ticks = [0, 1]
    ax.set_xticks(ticks, [f"called {c}" for c in CLASSES])
    ax.set_yticks(ticks, [f"{c}\n({int(totals[i, 0])} parts)" for i, c in enumerate(CLASSES)])
    ax.set(xlabel=f"Predicted (defect when score ≥ {threshold:.3g})\n% of each true class (row)", ylabel="True class")


def _draw_hist(ax, y: np.ndarray, s: np.ndarray, threshold: float) -> None:
    bins = np.linspace(0, 1, 41)
    for name, mask in (("normal", ~y), ("defect", y)):
        if mask.any():
            ax.hist(s[mask], bins=bins, alpha=0.5, color=COLORS[name], label=f"{name} ({int(mask.sum())})")
    ax.axvline(threshold, color="black", ls="--", lw=1.5, label=f"threshold {threshold:.3g}")
    misses, n_defect = int(np.sum(y & (s < threshold))), int(y.sum())
    false_rejects, n_normal = int(np.sum(~y & verdicts.is_defect(s, threshold))), int((~y).sum())
    ax.text(
        0.5,
        0.97,
        f"missed defects (score < threshold): {misses} of {n_defect}\n"
        f"false rejects (score ≥ threshold): {false_rejects} of {n_normal}",
        transform=ax.transAxes,
        ha="center",
        va="top",
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85},
    )
    ax.set(xlabel="Defect score", ylabel="Parts", xlim=(0, 1))
    ax.set_ylim(top=ax.get_ylim()[1] * 1.3)  # headroom for the counts box
    ax.legend(loc="center right")


def _both_classes(y: np.ndarray) -> bool:
    return bool(y.any() and (~y).any())


def _one_class_reason(y: np.ndarray) -> str:
    present = "defect" if y.any() else "normal"
    return f"both normal and defect parts are needed, but the data has only {len(y)} {present} parts"


def _say(ax, message: str) -> None:
    ax.text(0.5, 0.5, message.replace(", but", ",\nbut"), ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_axis_off()


def _unit_axes(ax) -> None:
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)


def _none_if_nan(x: float) -> float | None:
    return None if np.isnan(x) else float(x)
