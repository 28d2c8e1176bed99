"""/dashboard: each line's charts and the open alarms, redrawn live in the browser (Basic Auth: the key as password)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from serving.monitor.pages import dashboard_page, dashboard_panel, line_view
from serving.records.alarms import list_alarms, open_alarm_counts
from serving.records.lines import get_baselines, lines_seen
from serving.routes.deps import Viewer, service

router = APIRouter(tags=["monitoring"])
MAX_ALARMS_SHOWN = 200


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, _: Viewer) -> HTMLResponse:
    """The page; its script fetches /dashboard/panel every `monitor.dashboard_refresh_seconds`."""
    return HTMLResponse(dashboard_page(service(request).settings.monitor.dashboard_refresh_seconds))


@router.get("/dashboard/panel", response_class=HTMLResponse)
async def panel(request: Request, _: Viewer) -> HTMLResponse:
    """Every line evaluated now and drawn, with the open alarms (an HTML fragment)."""
    svc = service(request)
    await svc.watcher.evaluate_all()  # flushes the record writer first
    await svc.watcher.refresh_alarm_gauges()
    seen, counts, open_alarms, periods = await asyncio.gather(
        asyncio.to_thread(lines_seen, svc.db),
        asyncio.to_thread(open_alarm_counts, svc.db),
        asyncio.to_thread(list_alarms, svc.db, None, True, MAX_ALARMS_SHOWN),
        asyncio.to_thread(get_baselines, svc.db),
    )
    names = sorted(set(seen) | {p.line for p in periods})
    states, problems, settings = svc.watcher.states, svc.watcher.problems, svc.settings.monitor

    def draw() -> str:
        views = [line_view(line, states.get(line), problems.get(line), counts.get(line, 0), settings) for line in names]
        return dashboard_panel(views, open_alarms, datetime.now(UTC))

    return HTMLResponse(await asyncio.to_thread(draw))
