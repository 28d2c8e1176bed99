"""Line monitoring: baselines, SPC charts, camera drift and alarms (JSON), and the dashboard page."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from serving.monitor.drift import FINDINGS
from serving.monitor.lines import BaselineTooShort, LineState
from serving.monitor.spc import RULE_TEXT, Chart, baseline_advice
from serving.records.alarms import (
    Alarm,
    AlarmNotFound,
    AlreadyAcknowledged,
    acknowledge,
    list_alarms,
    open_alarm_counts,
)
from serving.records.lines import BaselinePeriod, get_baselines, lines_seen, set_baseline
from serving.records.tables import aware
from serving.routes.deps import Client, client_name, service
from serving.routes.errors import ApiError
from serving.routes.schemas import (
    Acknowledgement,
    AlarmAnswer,
    AlarmPage,
    AlarmRuleAnswer,
    BaselineAnswer,
    BaselineEstimate,
    BaselineRequest,
    CameraDriftAnswer,
    ChartAnswer,
    ChartPoint,
    DriftAnswer,
    DriftSubgroup,
    ErrorBody,
    LineSummary,
    MetricDriftAnswer,
    Signal,
    SpcAnswer,
    Subgrouping,
)

router = APIRouter(tags=["monitoring"], dependencies=[Depends(client_name)])
NO_LINE = {404: {"model": ErrorBody}, 409: {"model": ErrorBody}, 503: {"model": ErrorBody}}
RULES_TEXT = {**RULE_TEXT, **FINDINGS}


async def _db(request: Request, query, *args):
    svc = service(request)
    return await asyncio.to_thread(query, svc.db, *args)


async def _state(request: Request, line: str) -> LineState:
    """The line evaluated now, on every record answered so far."""
    svc = service(request)
    period = await _period(request, line)
    try:
        return await svc.watcher.evaluate_line(period)  # flushes the record writer first
    except BaselineTooShort as exc:
        raise ApiError(409, "baseline_too_short", str(exc)) from None


async def _period(request: Request, line: str) -> BaselinePeriod:
    periods = await _db(request, get_baselines, line)
    if not periods:
        raise ApiError(
            409, "no_baseline",
            f"line {line!r} has no baseline: choose a period when it ran in control and "
            f"PUT /v1/lines/{line}/baseline (or `lineinspect monitor baseline`)",
        )  # fmt: skip
    return periods[0]


@router.get("/v1/lines", response_model=list[LineSummary], responses={503: {"model": ErrorBody}})
async def list_lines(request: Request) -> list[LineSummary]:
    """Every line the records name, with its baseline, open alarms and whether it is in control now."""
    svc = service(request)
    seen, periods, counts = await asyncio.gather(
        _db(request, lines_seen), _db(request, get_baselines), _db(request, open_alarm_counts)
    )
    by_line = {p.line: p for p in periods}
    summaries = []
    for line in sorted(set(seen) | set(by_line)):
        state = svc.watcher.states.get(line)
        problem = svc.watcher.problems.get(line) or (None if line in by_line else "no baseline set")
        summaries.append(
            LineSummary(
                line=line,
                baseline=baseline_answer(by_line[line]) if line in by_line else None,
                open_alarms=counts.get(line, 0),
                out_of_control=state.out_of_control() if state else {},
                problem=problem,
            )
        )
    return summaries


@router.get("/v1/lines/{line}/baseline", response_model=BaselineAnswer, responses=NO_LINE)
async def get_baseline(request: Request, line: str) -> BaselineAnswer:
    return baseline_answer(await _period(request, line))


@router.put("/v1/lines/{line}/baseline", response_model=SpcAnswer, responses={422: {"model": ErrorBody}, **NO_LINE})
async def put_baseline(request: Request, line: str, body: BaselineRequest, client: Client) -> SpcAnswer:
    """Set the line's baseline; refused (422) unless it holds at least two complete subgroups. Answers the
    charts the new baseline gives."""
    svc = service(request)
    since, until = aware(body.since), aware(body.until)
    if since >= until:
        raise ApiError(422, "invalid_baseline", "since must be before until")
    grouping = body.subgroup or svc.settings.monitor.subgroup
    period = BaselinePeriod(line, since, until, grouping.size, grouping.minutes, datetime.now(UTC), client, body.note)
    try:
        state = await svc.watcher.evaluate_line(period)
    except BaselineTooShort as exc:
        raise ApiError(422, "baseline_too_short", str(exc)) from None
    await _db(request, set_baseline, period)
    await svc.watcher.refresh_alarm_gauges()
    return spc_answer(state)


@router.get("/v1/lines/{line}/spc", response_model=SpcAnswer, responses=NO_LINE)
async def line_spc(
    request: Request,
    line: str,
    since: Annotated[datetime | None, Query(description="Only subgroups starting at or after this time")] = None,
) -> SpcAnswer:
    """The line's p-chart (defect rate) and EWMA chart (mean defect score) against its baseline, with the
    Western Electric rules that hold at each subgroup."""
    state = await _state(request, line)
    await service(request).watcher.refresh_alarm_gauges()
    return spc_answer(state, aware(since) if since else None)


@router.get("/v1/lines/{line}/drift", response_model=DriftAnswer, responses=NO_LINE)
async def line_drift(request: Request, line: str) -> DriftAnswer:
    """Each camera's image brightness, contrast, sharpness and defect scores per subgroup after the baseline,
    compared with its baseline images (PSI, KS), and what changed."""
    state = await _state(request, line)
    await service(request).watcher.refresh_alarm_gauges()
    return drift_answer(state)


@router.get("/v1/alarms", response_model=AlarmPage, responses={503: {"model": ErrorBody}})
async def alarms(
    request: Request,
    line: str | None = None,
    open: Annotated[bool, Query(description="Only alarms not yet acknowledged")] = False,  # noqa: A002
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**12)] = 0,
) -> AlarmPage:
    """Alarms raised by the line monitor, newest first: one per event, listing the rules it fired."""
    found = await _db(request, list_alarms, line, open, limit, offset)
    return AlarmPage(alarms=[alarm_answer(a) for a in found], limit=limit, offset=offset)


@router.post(
    "/v1/alarms/{alarm_id}/ack",
    response_model=AlarmAnswer,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def ack_alarm(request: Request, alarm_id: int, body: Acknowledgement, client: Client) -> AlarmAnswer:
    """Acknowledge an alarm, and so every rule it lists, with a note: it stops counting as open; it is never
    deleted."""
    try:
        alarm = await _db(request, acknowledge, alarm_id, client, body.note)
    except AlarmNotFound as exc:
        raise ApiError(404, "alarm_not_found", str(exc)) from None
    except AlreadyAcknowledged as exc:
        raise ApiError(409, "already_acknowledged", str(exc)) from None
    await service(request).watcher.refresh_alarm_gauges()
    return alarm_answer(alarm)


def baseline_answer(period: BaselinePeriod) -> BaselineAnswer:
    return BaselineAnswer(
        line=period.line,
        since=period.since,
        until=period.until,
        subgroup=Subgrouping(size=period.subgroup_size, minutes=period.subgroup_minutes),
        set_at=period.set_at,
        set_by=period.set_by,
        note=period.note,
    )


def spc_answer(state: LineState, since: datetime | None = None) -> SpcAnswer:
    return SpcAnswer(
        line=state.line,
        baseline=baseline_answer(state.period),
        estimate=BaselineEstimate(**state.baseline.__dict__),
        evaluated_at=state.evaluated_at,
        p=chart_answer(state.p, state, since),
        ewma=chart_answer(state.ewma, state, since),
        out_of_control=state.out_of_control(),
        baseline_advice=baseline_advice(state.baseline),
    )


def chart_answer(chart: Chart, state: LineState, since: datetime | None) -> ChartAnswer:
    shown = [i for i, g in enumerate(chart.groups) if since is None or g.start >= since]
    points = [
        ChartPoint(
            start=chart.groups[i].start,
            end=chart.groups[i].end,
            n=chart.groups[i].n,
            defects=chart.groups[i].defects,
            value=p.value,
            center=p.center,
            lcl=p.lcl,
            ucl=p.ucl,
            z=p.z,
            rules=list(p.rules),
            in_baseline=chart.groups[i].end <= state.period.until,
        )
        for i in shown
        for p in [chart.points[i]]
    ]
    signals = [
        Signal(start=chart.groups[i].start, rule=rule, text=RULES_TEXT[rule])
        for i, rule in chart.signals()
        if since is None or chart.groups[i].start >= since
    ]
    return ChartAnswer(kind=chart.kind, points=points, signals=signals)


def drift_answer(state: LineState) -> DriftAnswer:
    cameras = []
    for cam in state.cameras:
        subgroups = [
            DriftSubgroup(
                start=g.start,
                end=g.end,
                n=r.n,
                metrics={
                    name: MetricDriftAnswer(**{k: v for k, v in m.__dict__.items() if k != "name"})
                    for name, m in r.metrics.items()
                },
                findings=list(r.findings),
            )  # fmt: skip
            for g, r in zip(cam.groups, cam.results, strict=True)
        ]
        now = cam.results[-1].findings if cam.results else ()
        cameras.append(
            CameraDriftAnswer(
                camera=cam.camera,
                baseline_records=cam.baseline_records,
                baseline_medians=cam.baseline_medians,
                subgroups=subgroups,
                findings={f: FINDINGS[f] for f in now},
            )
        )
    return DriftAnswer(
        line=state.line, baseline=baseline_answer(state.period), evaluated_at=state.evaluated_at, cameras=cameras
    )


def alarm_answer(alarm: Alarm) -> AlarmAnswer:
    rules = [AlarmRuleAnswer(**r.__dict__, rule_text=RULES_TEXT.get(r.rule, r.rule)) for r in alarm.rules]
    return AlarmAnswer(**{**alarm.__dict__, "rules": rules})
