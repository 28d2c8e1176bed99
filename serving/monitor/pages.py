"""HTML for people: the dashboard page and its live panel, and the self-contained report (Jinja2 templates)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from serving.monitor.charts import drift_svg, spc_svg
from serving.monitor.drift import FINDINGS
from serving.monitor.lines import CameraDrift, LineState, grouping
from serving.monitor.spc import RULE_TEXT, Chart, baseline_advice
from serving.records.alarms import Alarm
from serving.settings import MonitorSettings
from serving.times import stamp

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)
TEMPLATES.filters["stamp"] = stamp
RULES_TEXT = {**RULE_TEXT, **FINDINGS}


@dataclass(frozen=True)
class CameraView:
    svg: str
    findings: list[str]
    unjudged: str | None = None  # why the newest subgroup was not judged, in place of "no drift"


@dataclass(frozen=True)
class LineView:
    """What a page shows of one line: its state drawn, or why it is not charted."""

    line: str
    state: LineState | None
    problem: str | None
    open_alarms: int
    out_of_control: bool = False
    grouping: str = ""
    p_svg: str = ""
    ewma_svg: str = ""
    cameras: list[CameraView] = dataclasses.field(default_factory=list)
    advice: list[str] = dataclasses.field(default_factory=list)  # what is weak about the baseline


def _unjudged(n: int, settings: MonitorSettings) -> str | None:
    if n >= settings.min_drift_records:
        return None
    return (
        f"Drift not evaluated at the newest subgroup: {n} records < {settings.min_drift_records} "
        "(monitor.min_drift_records); larger subgroups are judged."
    )


def line_view(
    line: str, state: LineState | None, problem: str | None, open_alarms: int, settings: MonitorSettings,
    since: datetime | None = None,
) -> LineView:  # fmt: skip
    """Draw a line's charts (subgroups from `since` on, when given)."""
    if state is None:
        return LineView(line, None, problem or "no baseline set", open_alarms)
    p, ewma = _from(state.p, since), _from(state.ewma, since)
    cameras = [
        CameraView(
            drift_svg(cam, settings, f"Line {line}, camera {cam.camera or '(none)'}: image quality and scores"),
            [FINDINGS[f] for f in cam.results[-1].findings],
            _unjudged(cam.results[-1].n, settings),
        )
        for cam in (_camera_from(c, since) for c in state.cameras)
        if cam.results
    ]
    return LineView(
        line=line,
        state=state,
        advice=baseline_advice(state.baseline),
        problem=None,
        open_alarms=open_alarms,
        out_of_control=any(state.out_of_control().values()),
        grouping=grouping(state.period),
        p_svg=spc_svg(p, state.period, f"Line {line}: defect rate (p-chart)"),
        ewma_svg=spc_svg(ewma, state.period, f"Line {line}: mean defect score (EWMA chart)"),
        cameras=cameras,
    )


def dashboard_page(refresh_seconds: float) -> str:
    return TEMPLATES.get_template("dashboard.html").render(refresh_seconds=refresh_seconds)


def dashboard_panel(lines: list[LineView], open_alarms: list[Alarm], now: datetime) -> str:
    return TEMPLATES.get_template("panel.html").render(
        lines=lines, open_alarms=open_alarms, open_count=len(open_alarms), now=now, rule_text=RULES_TEXT
    )


def report_page(lines: list[LineView], alarms: list[Alarm], since: datetime, until: datetime, now: datetime) -> str:
    return TEMPLATES.get_template("report.html").render(
        lines=lines, alarms=alarms, since=since, until=until, now=now, rule_text=RULES_TEXT
    )


def _from(chart: Chart, since: datetime | None) -> Chart:
    if since is None:
        return chart
    keep = [i for i, g in enumerate(chart.groups) if g.start >= since]
    return dataclasses.replace(chart, groups=[chart.groups[i] for i in keep], points=[chart.points[i] for i in keep])


def _camera_from(cam: CameraDrift, since: datetime | None) -> CameraDrift:
    if since is None:
        return cam
    keep = [i for i, g in enumerate(cam.groups) if g.start >= since]
    return dataclasses.replace(cam, groups=[cam.groups[i] for i in keep], results=[cam.results[i] for i in keep])
