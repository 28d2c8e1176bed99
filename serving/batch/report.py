"""The batch run as one HTML page people read: counts, score histogram, defect rate over time, the
highest-scoring defects and the most uncertain images (with their heatmaps), and the evaluation when
the inputs carried labels. Self-contained: pictures are embedded, nothing is fetched."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
from jinja2 import Environment, FileSystemLoader, select_autoescape
from matplotlib.figure import Figure

from annotation.errors import LineInspectError
from serving.pictures import data_uri, svg
from serving.times import stamp
from vision.metadata import ModelMetadata

TEMPLATES = Environment(
    loader=FileSystemLoader([Path(__file__).parent / "templates", Path(__file__).parents[1] / "monitor" / "templates"]),
    autoescape=select_autoescape(["html"]),
)
TEMPLATES.filters["stamp"] = stamp
GRID = 24  # images in each grid
THUMB = 224  # longest side of a grid picture, pixels
MAX_ERRORS_SHOWN = 100
# 20261125_063015, 2026-11-25T06-30-15, 2026-11-25 06:30:15 ... anywhere in the file name
NAME_TIME = re.compile(r"(20\d\d)[-_]?([01]\d)[-_]?([0-3]\d)[T_ -]?([0-2]\d)[-_:]?([0-5]\d)[-_:]?([0-5]\d)")


@dataclass(frozen=True)
class Tile:
    """One image in a grid: its picture, its heatmap when there is one, and what the model said."""

    path: str
    score: float
    verdict: str
    true_label: str | None
    image: str  # data: URI
    heatmap: str | None


def write_report(
    rows: list[dict], meta: ModelMetadata, out: Path, seconds: float, heatmaps: Path | None = None
) -> Path:
    """Write the page for a finished run's rows (in input order) to `out`, atomically."""
    scored = [(i, r) for i, r in enumerate(rows) if r["error"] is None]
    scores = np.array([r["score"] for _, r in scored], dtype=float)
    defects = [(i, r) for i, r in scored if r["verdict"] == "defect"]
    uncertain = sorted(scored, key=lambda ir: abs(ir[1]["score"] - meta.threshold))[:GRID]
    highest = sorted(defects, key=lambda ir: -ir[1]["score"])[:GRID]
    html = TEMPLATES.get_template("report.html").render(
        meta=meta,
        now=datetime.now(UTC),
        seconds=seconds,
        images=len(rows),
        scored=len(scored),
        defects=len(defects),
        errors=[r for r in rows if r["error"] is not None],
        max_errors=MAX_ERRORS_SHOWN,
        histogram=_histogram_svg(scores, meta.threshold) if len(scores) else None,
        over_time=_over_time_svg(scored),
        highest=[_tile(i, r, heatmaps) for i, r in highest],
        uncertain=[_tile(i, r, heatmaps) for i, r in uncertain],
        evaluation=_evaluation(scored, meta),
    )
    tmp = out.with_name(out.name + ".tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LineInspectError(f"cannot write the report {out}: {exc.strerror}") from None
    return out


def image_time(path: str) -> datetime | None:
    """When an image was taken: a date and time in its file name, else the file's modification time."""
    if match := NAME_TIME.search(Path(path).name):
        try:
            return datetime(*map(int, match.groups()), tzinfo=UTC)
        except ValueError:  # 20261399_... is not a date
            pass
    try:
        return datetime.fromtimestamp(os.stat(path).st_mtime, UTC)
    except OSError:
        return None


def _tile(index: int, row: dict, heatmaps: Path | None) -> Tile:
    heatmap = None
    if heatmaps is not None:
        from serving.batch.heatmaps import heatmap_file

        candidate = heatmap_file(heatmaps, index, row["path"])
        heatmap = _thumbnail(candidate) if candidate.is_file() else None
    return Tile(row["path"], row["score"], row["verdict"], row["true_label"], _thumbnail(Path(row["path"])), heatmap)


def _thumbnail(path: Path) -> str:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:  # moved or changed since the run
        return ""
    scale = THUMB / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return data_uri(data.tobytes(), "image/jpeg") if ok else ""


def _histogram_svg(scores: np.ndarray, threshold: float) -> str:
    fig = Figure(figsize=(8, 3), dpi=96)
    ax = fig.add_subplot()
    ax.hist(scores, bins=50, range=(0, 1), color="#1f4e79")
    ax.axvline(threshold, color="#d32f2f", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set_yscale("log")
    ax.set_xlabel("defect score")
    ax.set_ylabel("images")
    ax.legend(frameon=False)
    ax.set_title("Score distribution", loc="left")
    return svg(fig)


def _over_time_svg(scored: list[tuple[int, dict]]) -> str | None:
    """Defect rate per hour (or per 5 minutes, or per day, by the span); None unless it spans several."""
    times = [image_time(r["path"]) for _, r in scored]
    known = [(t, r["verdict"] == "defect") for t, (_, r) in zip(times, scored, strict=True) if t is not None]
    if len(known) < 2:
        return None
    span = max(t for t, _ in known) - min(t for t, _ in known)
    width = timedelta(minutes=5) if span <= timedelta(hours=2) else timedelta(hours=1)
    width = timedelta(days=1) if span > timedelta(days=3) else width
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    bins: dict[datetime, list[bool]] = {}
    for t, defect in known:
        bins.setdefault(epoch + (t - epoch) // width * width, []).append(defect)
    if len(bins) < 2:
        return None
    starts = sorted(bins)
    fig = Figure(figsize=(8, 3), dpi=96)
    ax = fig.add_subplot()
    ax.plot(starts, [np.mean(bins[s]) for s in starts], color="#1f4e79", marker="o", markersize=3)
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_ylabel("defect rate")
    ax.set_title(f"Defect rate per {_duration(width)} (image times from file names or file dates)", loc="left")
    ax.grid(alpha=0.25)
    fig.autofmt_xdate()
    return svg(fig)


def _evaluation(scored: list[tuple[int, dict]], meta: ModelMetadata) -> dict | None:
    """Metrics and plots against the labels the inputs carried (a Label Studio export), if any did."""
    labelled = [r for _, r in scored if r["true_label"] is not None]
    if not labelled:
        return None
    from vision.metrics import evaluate_scores, write_plots

    y = np.array([r["true_label"] == meta.defect_class for r in labelled])
    s = np.array([r["score"] for r in labelled], dtype=float)
    metrics = evaluate_scores(y, s, meta.threshold)
    with tempfile.TemporaryDirectory(prefix="lineinspect-report-") as tmp:
        paths = write_plots(y, s, meta.threshold, Path(tmp))
        plots = {name: data_uri(p.read_bytes(), "image/png") for name, p in paths.items()}
    return {"metrics": metrics, "plots": plots, "unlabelled": len(scored) - len(labelled)}


def _duration(width: timedelta) -> str:
    return {timedelta(minutes=5): "5 minutes", timedelta(hours=1): "hour", timedelta(days=1): "day"}[width]
