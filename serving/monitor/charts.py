"""The monitor's charts as SVG pictures (matplotlib, no pyplot state), for the dashboard and the HTML report."""

from __future__ import annotations

from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from serving.monitor.lines import CameraDrift
from serving.monitor.spc import Chart
from serving.pictures import svg
from serving.records.lines import BaselinePeriod
from serving.settings import MonitorSettings

DATA, CENTRE, LIMIT, SIGNAL, BASELINE = "#1f4e79", "#2e7d32", "#8a8a8a", "#d32f2f", "#e3ecf7"
METRIC_COLOURS = {"brightness": "#f9a825", "contrast": "#6a1b9a", "sharpness": "#00838f", "score": DATA}


def spc_svg(chart: Chart, period: BaselinePeriod, title: str) -> str:
    """A control chart: points, centre line, limits, the baseline period shaded, points where a rule holds in red."""
    fig = Figure(figsize=(9, 3), dpi=96)
    ax = fig.add_subplot()
    times = [g.start for g in chart.groups]
    points = chart.points
    ax.axvspan(period.since, period.until, color=BASELINE, label="baseline")
    ax.plot(times, [p.ucl for p in points], color=LIMIT, drawstyle="steps-mid", linestyle="--", label="limits")
    ax.plot(times, [p.lcl for p in points], color=LIMIT, drawstyle="steps-mid", linestyle="--")
    ax.plot(times, [p.center for p in points], color=CENTRE, linewidth=1.2, label="centre")
    ax.plot(times, [p.value for p in points], color=DATA, marker="o", markersize=3, linewidth=1.2)
    hits = [(t, p.value) for t, p in zip(times, points, strict=True) if p.rules]
    if hits:
        ax.scatter(*zip(*hits, strict=True), s=64, color=SIGNAL, zorder=3, label="rule broken")
    _style(ax, title, "defect rate" if chart.kind == "p" else "EWMA of mean score")
    if chart.kind == "p":
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}" if v >= 0.1 or v == 0 else f"{v:.1%}")
    return svg(fig)


def drift_svg(cam: CameraDrift, settings: MonitorSettings, title: str) -> str:
    """One camera after its baseline: medians relative to the baseline (top) and PSI (bottom), findings in red."""
    fig = Figure(figsize=(9, 4.2), dpi=96)
    top, bottom = fig.subplots(2, 1, sharex=True)
    times = [g.start for g in cam.groups]
    for name in ("brightness", "contrast", "sharpness"):
        ratios = [r.metrics[name].ratio if name in r.metrics else float("nan") for r in cam.results]
        top.plot(times, ratios, color=METRIC_COLOURS[name], marker="o", markersize=3, label=name)
    for level in (settings.dark_ratio, settings.bright_ratio, settings.blur_ratio):
        top.axhline(level, color=LIMIT, linestyle="--", linewidth=0.8)
    top.axhline(1.0, color=CENTRE, linewidth=1)
    for name, colour in METRIC_COLOURS.items():
        psis = [r.metrics[name].psi if name in r.metrics else float("nan") for r in cam.results]
        bottom.plot(times, psis, color=colour, marker="o", markersize=3, label=name)
    bottom.axhline(settings.psi_alarm, color=LIMIT, linestyle="--", linewidth=0.8)
    flagged = [t for t, r in zip(times, cam.results, strict=True) if r.findings]
    for ax in (top, bottom):
        for t in flagged:
            ax.axvline(t, color=SIGNAL, alpha=0.35, linewidth=3)
    _style(top, title, "median / baseline")
    _style(bottom, None, "PSI")
    return svg(fig)


def _style(ax, title: str | None, ylabel: str) -> None:
    if title:
        ax.set_title(title, loc="left", fontsize=11)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.25)
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.legend(loc="upper left", fontsize=7, frameon=False, ncols=4)
