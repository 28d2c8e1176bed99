"""`lineinspect monitor`: set a line's baseline, list and acknowledge alarms, and write the HTML report, straight
from the service's database (the service need not be running)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from annotation.errors import LineInspectError
from serving.cli.options import DatabaseConfig, DatabaseOverrides, Moment, cli_settings, console, open_database, utc
from serving.times import stamp

if TYPE_CHECKING:
    from serving.records.alarms import Alarm, AlarmRule

monitor_app = typer.Typer(help="Line monitoring: SPC charts, camera drift and alarms.", no_args_is_help=True)
Line = Annotated[str, typer.Option(help="The line, as cameras tag it.")]


@monitor_app.command("baseline")
def baseline(
    line: Line,
    since: Annotated[datetime, Moment],
    until: Annotated[datetime, Moment],
    size: Annotated[int | None, typer.Option(min=2, help="Records per subgroup.")] = None,
    minutes: Annotated[float | None, typer.Option(min=0.01, help="Or: minutes per subgroup.")] = None,
    note: Annotated[str | None, typer.Option(help="Why this period is the baseline.")] = None,
    config: DatabaseConfig = None,
    set_: DatabaseOverrides = None,
) -> None:
    """Declare the period when the line ran in control: its subgroups set the charts' centre lines and limits."""
    from serving.monitor.lines import evaluate, grouping
    from serving.monitor.spc import baseline_advice
    from serving.records.lines import BaselinePeriod, set_baseline

    settings = cli_settings(config, set_)
    if size is not None and minutes is not None:
        raise LineInspectError("give --size or --minutes, not both")
    if size is None and minutes is None:
        size, minutes = settings.monitor.subgroup.size, settings.monitor.subgroup.minutes
    since, until = utc(since), utc(until)
    if since >= until:
        raise LineInspectError("--since must be before --until")
    period = BaselinePeriod(line, since, until, size, minutes, datetime.now(UTC), "cli", note)
    db = open_database(config, set_)
    state = evaluate(db, period, settings.monitor)  # refuses a period too short to estimate limits from
    set_baseline(db, period)
    b = state.baseline
    console.print(
        f"line {line}: baseline of {b.records} parts in {b.subgroups} subgroups of {grouping(period)}: "
        f"defect rate {b.p:.2%}, mean score {b.score_mean:.4f} (sd {b.score_sd:.4f})"
    )
    for advice in baseline_advice(b):
        console.print(f"[bold yellow]warning:[/] {advice}")


@monitor_app.command("alarms")
def alarms(
    line: Annotated[str | None, typer.Option(help="Only this line.")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only alarms not yet acknowledged.")] = False,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    config: DatabaseConfig = None,
    set_: DatabaseOverrides = None,
) -> None:
    """The alarms raised, newest first: one per event, each rule it fired on a row of its own."""
    from serving.records.alarms import list_alarms

    # the short columns never wrap; what happened (rule, detail, acknowledgement) wraps, so the table fits 80 columns
    short = [Column(name, no_wrap=True) for name in ("id", "line", "subgroup (UTC)", "chart")]
    table = Table(*short, Column("what", ratio=1, overflow="fold"), box=box.SIMPLE_HEAD)
    for a in list_alarms(open_database(config, set_), line, open_only, limit):
        for i, rule in enumerate(a.rules):
            head = (str(a.id), a.line) if i == 0 else ("", "")
            table.add_row(*head, stamp(rule.subgroup_start), _chart(rule), escape(rule.detail))  # it names the rule
        table.add_row("", "", "", "", _state(a), end_section=True)
    Console().print(table)


def _chart(rule: AlarmRule) -> str:
    return f"{rule.chart}/{rule.camera}" if rule.camera else rule.chart


def _state(alarm: Alarm) -> str:
    if alarm.acknowledged_at is None:
        return "[bold red]open[/bold red]"
    by = f" by {alarm.acknowledged_by}" if alarm.acknowledged_by else ""
    return f"[dim]acknowledged {stamp(alarm.acknowledged_at)}{by}: {escape(alarm.note or '')}[/dim]"


@monitor_app.command("ack")
def ack(
    alarm_id: Annotated[int, typer.Argument(help="The alarm's id (see `lineinspect monitor alarms`).")],
    note: Annotated[str, typer.Option(help="What was found or done.")],
    by: Annotated[str | None, typer.Option(help="Who acknowledges.")] = None,
    config: DatabaseConfig = None,
    set_: DatabaseOverrides = None,
) -> None:
    """Acknowledge an alarm, and so every rule it lists, with a note; it stays on record."""
    from serving.records.alarms import acknowledge

    if not note.strip():
        raise LineInspectError("--note must say what was found or done")
    alarm = acknowledge(open_database(config, set_), alarm_id, by, note)
    rules = ", ".join(f"{_chart(r)} {r.rule}" for r in alarm.rules)
    console.print(f"alarm {alarm.id} (line {alarm.line}: {rules}) acknowledged")


@monitor_app.command("report")
def report(
    line: Line,
    out: Annotated[Path, typer.Option(help="The HTML file to write (self-contained).")],
    since: Annotated[datetime | None, Moment] = None,
    until: Annotated[datetime | None, Moment] = None,
    config: DatabaseConfig = None,
    set_: DatabaseOverrides = None,
) -> None:
    """Write the line's control charts, camera drift and alarms from SINCE (default: the baseline's start) to
    UNTIL (default: now) as one HTML page with the charts as pictures."""
    from serving.monitor.lines import evaluate
    from serving.monitor.pages import line_view, report_page
    from serving.records.alarms import list_alarms
    from serving.records.lines import get_baselines

    settings = cli_settings(config, set_)
    db = open_database(config, set_)
    periods = get_baselines(db, line)
    if not periods:
        raise LineInspectError(f"line {line!r} has no baseline: set one with `lineinspect monitor baseline`")
    now = datetime.now(UTC)
    until = utc(until) or now
    since = utc(since) or periods[0].since
    if since >= until:
        raise LineInspectError("--since must be before --until")
    state = evaluate(db, periods[0], settings.monitor, until)
    raised = [a for a in list_alarms(db, line, limit=10_000) if since <= a.subgroup_start < until]
    view = line_view(line, state, None, sum(a.acknowledged_at is None for a in raised), settings.monitor, since)
    html = report_page([view], raised, since, until, now)
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        raise LineInspectError(f"cannot write {out}: {exc.strerror}") from None
    console.print(f"wrote {out}: {len(state.p.groups)} subgroups, {len(raised)} alarms in the period")
