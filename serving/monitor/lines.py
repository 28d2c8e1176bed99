"""A line's state against its baseline: the p-chart and EWMA chart of the line, each camera's input drift,
and the alarms their signals raise."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from annotation.errors import LineInspectError
from serving.monitor.drift import FINDINGS, DriftResult, assess
from serving.monitor.spc import (
    RULE_TEXT,
    Baseline,
    Chart,
    Subgroup,
    estimate_baseline,
    ewma_chart,
    make_subgroups,
    p_chart,
)
from serving.records.alarms import AlarmRule, add_alarms
from serving.records.database import Database
from serving.records.lines import QUALITY, BaselinePeriod, LineRecords, line_records
from serving.settings import MonitorSettings
from serving.times import stamp


class BaselineTooShort(LineInspectError):
    """The baseline period holds too few complete subgroups to estimate limits from."""


@dataclass(frozen=True)
class CameraDrift:
    """One camera's subgroups after the baseline, each compared with the camera's baseline images."""

    camera: str
    baseline_records: int
    baseline_medians: dict[str, float]
    groups: list[Subgroup]
    results: list[DriftResult]

    def signals(self) -> list[tuple[int, str]]:
        """(index, finding) where a finding appears that the previous subgroup did not have."""
        previous: tuple[str, ...] = ()
        found = []
        for i, result in enumerate(self.results):
            found += [(i, f) for f in result.findings if f not in previous]
            previous = result.findings
        return found


@dataclass(frozen=True)
class LineState:
    line: str
    period: BaselinePeriod
    baseline: Baseline
    p: Chart
    ewma: Chart
    cameras: list[CameraDrift]
    evaluated_at: datetime
    pending: int = 0  # records after the last complete subgroup (subgroups by count)

    def fired(self) -> list[AlarmRule]:
        """Every signal after the baseline period (inside it the process is in control by definition)."""
        raised = []
        for chart in (self.p, self.ewma):
            for i, rule in chart.signals():
                group, point = chart.groups[i], chart.points[i]
                if group.start >= self.period.until:
                    raised.append(self._rule(chart.kind, "", rule, group, point.value, _chart_detail(chart, i, rule)))
        for cam in self.cameras:
            for i, finding in cam.signals():
                group, result = cam.groups[i], cam.results[i]
                raised.append(self._rule("drift", cam.camera, finding, group, *_drift_detail(cam, result, finding)))
        return raised

    def subgroups_between(self, rule: AlarmRule, start: datetime) -> int:
        """How far apart two signals are: the line's subgroups that start from `start` up to the rule's subgroup
        (a camera's drift subgroup counts by its start among the line's)."""
        starts = [g.start for g in self.p.groups]
        return bisect.bisect_left(starts, rule.subgroup_start) - bisect.bisect_left(starts, start)

    def out_of_control(self) -> dict[str, bool]:
        """Whether a rule holds at each chart's newest subgroup (and any camera's newest drift finding)."""
        state = {chart.kind: bool(chart.points and chart.points[-1].rules) for chart in (self.p, self.ewma)}
        state["drift"] = any(cam.results and cam.results[-1].findings for cam in self.cameras)
        return state

    def _rule(self, chart: str, camera: str, rule: str, group: Subgroup, value: float, detail: str) -> AlarmRule:
        return AlarmRule(
            line=self.line,
            chart=chart,
            camera=camera,
            rule=rule,
            subgroup_start=group.start,
            subgroup_end=group.end,
            value=float(value),
            detail=detail,
            raised_at=self.evaluated_at,
        )


ALARM_WINDOW = 8
"""Subgroups within which signals are one event: a rule (of either chart, or any camera's drift) that fires at most
this many subgroups after the newest rule of its line's open alarm joins that alarm. A step in the defect rate fires
beyond 3 sigma at once and 8 in a row on one side 7 subgroups later, the longest Western Electric pattern; each rule
that joins extends the alarm, so a shift that lasts is one alarm. Drift joins too: a rate shift moves the scores, which
a camera's drift check reports as a score shift, and a camera going dark moves the scores the EWMA charts."""


def store_alarms(db: Database, state: LineState) -> tuple[int, int]:
    """Store the state's new signals, grouped into alarms by event; returns (rules stored, alarms opened)."""
    return add_alarms(db, state.fired(), state.subgroups_between, ALARM_WINDOW)


DriftCache = dict[tuple, DriftResult]  # (camera, baseline, subgroup) -> its result: a subgroup once judged stays so


def evaluate(
    db: Database, period: BaselinePeriod, settings: MonitorSettings, now: datetime | None = None,
    cache: DriftCache | None = None,
) -> LineState:  # fmt: skip
    """Charts and drift of `period.line` from the start of its baseline up to `now`. With a `cache` kept between
    calls, only subgroups new since the last call are compared with the baseline (the cache keeps just the
    subgroups of this call)."""
    now = now or datetime.now(UTC)
    records = line_records(db, period.line, period.since, now)
    groups = _subgroups(records.times, records.defect, records.score, period, now)
    in_baseline = [g for g in groups if g.end <= period.until]
    if len(in_baseline) < 2:
        raise BaselineTooShort(
            f"line {period.line}: the baseline {stamp(period.since)} to {stamp(period.until)} UTC "
            f"holds {len(in_baseline)} complete subgroups of {grouping(period)}; it needs at least 2 "
            f"(choose a longer period or smaller subgroups)"
        )
    baseline = estimate_baseline(in_baseline)
    known, used = dict(cache or {}), {}
    state = LineState(
        line=period.line,
        period=period,
        baseline=baseline,
        p=p_chart(groups, baseline, settings.rules),
        ewma=ewma_chart(groups, baseline, settings.ewma_lambda, settings.ewma_sigmas),
        cameras=[
            _camera_drift(records, camera, period, settings, now, known, used) for camera in sorted(set(records.camera))
        ],
        evaluated_at=now,
        pending=len(records.times) - len(groups) * period.subgroup_size if period.subgroup_size else 0,
    )
    if cache is not None:
        cache.clear()
        cache.update(used)
    return state


def _camera_drift(
    records: LineRecords, camera: str, period: BaselinePeriod, settings: MonitorSettings, now: datetime,
    known: DriftCache, used: DriftCache,
) -> CameraDrift:  # fmt: skip
    mine = np.array([c == camera for c in records.camera])
    times = [t for t, m in zip(records.times, mine, strict=True) if m]
    values = {q: records.quality[q][mine] for q in QUALITY} | {"score": records.score[mine]}
    split = bisect.bisect_left(times, period.until)
    baseline = {name: v[:split] for name, v in values.items()}
    after = times[split:]
    groups = _subgroups(after, records.defect[mine][split:], values["score"][split:], period, now)
    results = []
    identity = (camera, period.since, period.until, period.subgroup_size, period.subgroup_minutes, split)
    for group, (start, stop) in zip(groups, _spans(groups, after, period), strict=True):
        key = (*identity, group.start, group.end, group.n)
        if key not in known:
            known[key] = assess(
                baseline, {name: v[split + start : split + stop] for name, v in values.items()}, settings
            )
        results.append(used.setdefault(key, known[key]))
    medians = {name: float(np.nanmedian(v)) for name, v in baseline.items() if np.isfinite(v).any()}
    return CameraDrift(camera, split, medians, groups, results)


def _subgroups(times, defect, score, period: BaselinePeriod, now: datetime) -> list[Subgroup]:
    if period.subgroup_size:
        return make_subgroups(times, defect, score, size=period.subgroup_size)
    return make_subgroups(times, defect, score, minutes=period.subgroup_minutes, origin=period.since, now=now)


def _spans(groups: list[Subgroup], times: list[datetime], period: BaselinePeriod) -> list[tuple[int, int]]:
    """Each subgroup's record indices [start, stop) in `times`."""
    if period.subgroup_size:
        size = period.subgroup_size
        return [(k * size, (k + 1) * size) for k in range(len(groups))]
    return [(bisect.bisect_left(times, g.start), bisect.bisect_left(times, g.end)) for g in groups]


def grouping(period: BaselinePeriod) -> str:
    """How the period's records are grouped, in words."""
    if period.subgroup_size:
        return f"{period.subgroup_size} parts"
    return f"{timedelta(minutes=period.subgroup_minutes)} (h:mm:ss)"


def _chart_detail(chart: Chart, i: int, rule: str) -> str:
    group, point = chart.groups[i], chart.points[i]
    if chart.kind == "p":
        return (
            f"defect rate {point.value:.2%} ({group.defects} of {group.n}); centre {point.center:.2%}, "
            f"limits {point.lcl:.2%} to {point.ucl:.2%}: {RULE_TEXT[rule]}"
        )
    return (
        f"EWMA of the mean defect score {point.value:.4f}; centre {point.center:.4f}, "
        f"limits {point.lcl:.4f} to {point.ucl:.4f}: {RULE_TEXT[rule]}"
    )


METRIC_OF = {"dark": "brightness", "bright": "brightness", "blurred": "sharpness", "low_contrast": "contrast"}


def _drift_detail(cam: CameraDrift, result: DriftResult, finding: str) -> tuple[float, str]:
    name = METRIC_OF.get(finding, "score")
    m = result.metrics[name]
    detail = (
        f"camera {cam.camera or '(none)'}: {FINDINGS[finding]}: {name} median {m.recent_median:.4g} against "
        f"{m.baseline_median:.4g} in the baseline, PSI {m.psi:.2f}, KS {m.ks:.2f} over {result.n} images"
    )
    return m.psi, detail
