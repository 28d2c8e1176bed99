"""The service's line watcher: every line with a baseline is evaluated in the background, whether anyone
looks or not, its alarms stored and its state published as Prometheus gauges.

Evaluation runs every `monitor.interval_seconds`, and also as soon as a subgroup completes: when the parts
recorded for a line fill its subgroup (subgroups by count) or when a line's time window ends (subgroups by
time), so an alarm comes within one subgroup of a shift, not a timer's period later."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from serving.metrics import Metrics
from serving.monitor.lines import BaselineTooShort, DriftCache, LineState, evaluate, store_alarms
from serving.records.alarms import open_alarm_counts, open_rule_counts
from serving.records.database import Database
from serving.records.lines import BaselinePeriod, get_baselines
from serving.settings import MonitorSettings

log = logging.getLogger("lineinspect.monitor")

WINDOW_GRACE_SECONDS = 1.0  # after a time window ends, for the parts of its last moments to be recorded


class LineWatcher:
    def __init__(
        self, db: Database, settings: MonitorSettings, metrics: Metrics, flush: Callable[[], object] | None = None
    ) -> None:
        """`flush` (waits for the record writer) runs before every evaluation, so the parts just recorded count."""
        self.db, self.settings, self.metrics, self._flush = db, settings, metrics, flush
        self._wake = asyncio.Event()  # a subgroup completed: evaluate now
        self._recorded: dict[str, int] = {}  # parts recorded per line since the last evaluation
        self.states: dict[str, LineState] = {}  # the newest evaluation of each line
        self.problems: dict[str, str] = {}  # line -> why it could not be evaluated
        self._drift: dict[str, DriftCache] = {}  # line -> its subgroups' drift already judged
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()  # one evaluation at a time

    def start(self) -> None:
        if self.settings.enabled:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="lineinspect-monitor")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def evaluate_all(self) -> None:
        """Evaluate every line with a baseline now, store new alarms, refresh the gauges."""
        async with self._lock:
            self._wake.clear()
            self._recorded.clear()
            await self._flushed()
            await asyncio.to_thread(self._evaluate_all)

    def part_recorded(self, line: str | None) -> None:
        """Count a part recorded for `line`; the part that completes its subgroup wakes the evaluation."""
        state = self.states.get(line or "")
        if state is None or not state.period.subgroup_size:
            return
        self._recorded[state.line] = self._recorded.get(state.line, 0) + 1
        if state.pending + self._recorded[state.line] >= state.period.subgroup_size:
            self._wake.set()

    def _seconds_to_wait(self, now: datetime) -> float:
        """Until the next round: the interval, or sooner when a line's time window ends first."""
        wait = self.settings.interval_seconds
        for state in self.states.values():
            minutes = state.period.subgroup_minutes
            if minutes:
                window = minutes * 60
                elapsed = (now - state.period.since).total_seconds()
                wait = min(wait, (math.floor(elapsed / window) + 1) * window - elapsed + WINDOW_GRACE_SECONDS)
        return max(wait, 0.0)

    async def evaluate_line(self, period: BaselinePeriod) -> LineState:
        """One line, now (for the API); its alarms are stored as in the background."""
        async with self._lock:
            await self._flushed()
            return await asyncio.to_thread(self._evaluate, period, datetime.now(UTC))

    async def _flushed(self) -> None:
        if self._flush:
            await asyncio.to_thread(self._flush)

    async def refresh_alarm_gauges(self) -> None:
        alarms, rules = await asyncio.gather(
            asyncio.to_thread(open_alarm_counts, self.db), asyncio.to_thread(open_rule_counts, self.db)
        )
        self.metrics.alarms_open.clear()
        for line, n in alarms.items():
            self.metrics.alarms_open.labels(line).set(n)
        self.metrics.alarm_rules_open.clear()
        for (line, chart, rule), n in rules.items():
            self.metrics.alarm_rules_open.labels(line, chart, rule).set(n)

    async def _run(self) -> None:
        while True:
            try:
                await self.evaluate_all()
                await self.refresh_alarm_gauges()
            except SQLAlchemyError as exc:  # the database is away: try again next round
                log.warning("line monitoring skipped a round: %s", str(exc).splitlines()[0])
            except Exception:  # a fault here must not end monitoring for good: said, then tried again
                log.exception("line monitoring failed this round")
            try:
                await asyncio.wait_for(self._wake.wait(), self._seconds_to_wait(datetime.now(UTC)))
            except TimeoutError:
                pass

    def _evaluate_all(self) -> None:
        now = datetime.now(UTC)
        periods = get_baselines(self.db)
        for line in set(self.states) - {p.line for p in periods}:  # a baseline removed
            del self.states[line]
            self._drift.pop(line, None)
        for period in periods:
            try:
                self._evaluate(period, now)
            except BaselineTooShort as exc:
                self.problems[period.line] = str(exc)
            except SQLAlchemyError:
                raise
            except Exception as exc:  # one line's fault leaves the others evaluated
                log.exception("line %s could not be evaluated", period.line)
                self.problems[period.line] = f"evaluation failed ({exc.__class__.__name__}: {exc}); see the log"
        self.metrics.monitor_evaluated.set(now.timestamp())

    def _evaluate(self, period: BaselinePeriod, now: datetime) -> LineState:
        state = evaluate(self.db, period, self.settings, now, self._drift.setdefault(period.line, {}))
        rules, opened = store_alarms(self.db, state)
        if rules:
            log.warning(
                "line %s: %d rules fired, %d new alarms (GET /v1/alarms?line=%s&open=true)",
                period.line, rules, opened, period.line,
            )  # fmt: skip
        self.states[period.line] = state
        self.problems.pop(period.line, None)
        for chart, out in state.out_of_control().items():
            self.metrics.out_of_control.labels(period.line, chart).set(int(out))
        return state
