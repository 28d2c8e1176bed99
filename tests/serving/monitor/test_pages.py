"""The pages people read: the live dashboard rendered in headless Chromium (Basic Auth, as a browser does it),
and the HTML report from `lineinspect monitor report`, opened from disk. Screenshots are read back with OCR
and checked for the charts' colours."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from serving.monitor.charts import DATA, SIGNAL
from tests.browser import colour_fraction, dump_dom, screenshot, text_in
from tests.serving.conftest import cli, wait_for
from tests.serving.monitor.streams import hours_ago, records, write

SIZE = 300


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


@pytest.fixture(scope="module")
def shown(server_factory):
    """Line L-show: 12 subgroups in control (the baseline), 4 more, then the defect rate trebles; a second line
    without a baseline."""
    server = server_factory({"monitor": {"interval_seconds": 0.5}})
    key = server.keys("create", "quality-engineer").stdout.strip()
    server.start()
    start = hours_ago(3)
    write(server.database_url, records("L-show", start, [0.04] * 16 + [0.12] * 3, SIZE, seed=3))
    write(server.database_url, records("L-new", hours_ago(1), [0.04], 50, seed=4))
    until = start + timedelta(seconds=12 * SIZE)
    period = ("--since", start.strftime("%Y-%m-%dT%H:%M:%S"), "--until", until.strftime("%Y-%m-%dT%H:%M:%S"))
    cli("monitor", "baseline", "--line", "L-show", *period, "--size", SIZE, "--config", server.config, env=server.env)
    with server.client(key) as client:
        wait_for(lambda: client.get("/v1/alarms", params={"open": True}).json()["alarms"], what="the alarm")
        yield {"server": server, "key": key, "start": start}


def test_the_dashboard_shows_each_lines_charts_and_the_open_alarm(shown, tmp_path):
    server = shown["server"]
    url = f"http://engineer:{shown['key']}@127.0.0.1:{server.port}/dashboard"
    dom = dump_dom(url)
    assert dom.count("<svg") >= 3, "p-chart, EWMA chart and the camera's drift chart"
    assert "Line L-new" in dom and "no baseline set" in dom
    assert '<span class="badge alarm">OUT OF CONTROL</span>' in dom  # white on red: Tesseract does not read it
    # the jump fires several rules: one open alarm, one Acknowledge button, every rule listed with its detail
    assert dom.count('<tr class="open">') == 1 and dom.count("Acknowledge</button>") == 1
    rules = re.findall(r"<li><b>([^<]+)</b> \((p|ewma), subgroup [\d-]+ [\d:]+\): ([^<]+)</li>", dom)
    assert {"a point beyond the 3-sigma limits", "2 of 3 points in a row beyond 2 sigma on one side"} <= {
        text for text, _, _ in rules
    }, dom
    assert all("limits" in detail for _, _, detail in rules)
    png = screenshot(url, tmp_path / "dashboard.png", height=2400)
    text = text_in(png)
    for words in ("line monitoring", "open alarms", "alarm open", "line l-show", "defect rate (p-chart)",
                  "mean defect score (ewma chart)", "a point beyond the 3-sigma limits"):  # fmt: skip
        assert words in text, f"{words!r} not visible in the dashboard screenshot:\n{text}"
    assert colour_fraction(png, rgb(DATA), tol=30) > 0.001, "the charts' data lines are drawn"
    assert colour_fraction(png, rgb(SIGNAL), tol=30) > 0.001, "out-of-control points and alarms are red"


def test_the_browser_is_refused_with_a_wrong_key(shown):
    with pytest.raises(AssertionError, match="ERR_INVALID_AUTH_CREDENTIALS"):
        dump_dom(f"http://engineer:wrong@127.0.0.1:{shown['server'].port}/dashboard")


def test_the_report_is_one_self_contained_page_with_the_charts_and_alarms(shown, tmp_path):
    server = shown["server"]
    out = tmp_path / "report.html"
    result = cli("monitor", "report", "--line", "L-show", "--out", out, "--config", server.config, env=server.env)
    assert "wrote" in result.stderr and "alarms in the period" in result.stderr
    html = out.read_text()
    assert html.count("<svg") >= 3
    assert not re.search(r'(src|href)="(https?:)?//', html), "nothing fetched from elsewhere"
    png = screenshot(out.as_uri(), tmp_path / "report.png", height=2600)
    text = text_in(png)
    for words in ("line monitoring report", "line l-show", "alarms in this period", "alarm open"):
        assert words in text, f"{words!r} not visible in the report screenshot:\n{text}"
    assert colour_fraction(png, rgb(SIGNAL), tol=30) > 0.001


def test_monitor_cli_errors_are_one_line(shown, tmp_path):
    server = shown["server"]
    start = shown["start"].strftime("%Y-%m-%dT%H:%M:%S")
    short = cli("monitor", "baseline", "--line", "L-show", "--since", start, "--until", start, "--config",
                server.config, check=False, env=server.env)  # fmt: skip
    assert short.returncode == 2 and "--since must be before --until" in short.stderr
    assert "Traceback" not in short.stderr
    missing = cli("monitor", "report", "--line", "L-none", "--out", tmp_path / "r.html", "--config", server.config,
                  check=False, env=server.env)  # fmt: skip
    assert missing.returncode == 2 and "has no baseline" in missing.stderr
    acked = cli("monitor", "ack", "424242", "--note", "x", "--config", server.config, check=False, env=server.env)
    assert acked.returncode == 2 and "no alarm 424242" in acked.stderr


def test_the_alarms_table_fits_80_columns_with_times_to_the_second(shown):
    server = shown["server"]
    out = cli("monitor", "alarms", "--config", server.config, env={**server.env, "COLUMNS": "80"}).stdout
    lines = out.splitlines()
    assert lines and max(len(line) for line in lines) <= 80, out
    stamps = re.findall(r"\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\b", out)
    assert len(stamps) >= 2 and min(stamps) >= shown["start"].strftime("%Y-%m-%d %H:%M:%S"), out  # whole, one line
    assert len(re.findall(r"^ *\d+ +L-show ", out, re.MULTILINE)) == 1, out  # one alarm, a row per rule
    words = " ".join(" ".join(lines).split())
    for text in ("a point beyond the 3-sigma limits", "2 of 3 points in a row beyond 2 sigma on one side", "open"):
        assert text in words, out  # the wrapped column, unbroken


def test_a_small_baseline_is_warned_about_and_small_subgroups_say_drift_was_not_evaluated(shown, tmp_path):
    """22 subgroups of 10 parts at a 4% defect rate: n·p̄ = 0.4, under the 5 the p-chart needs, and subgroups
    below monitor.min_drift_records (30), which the pages then say instead of "no drift"."""
    server = shown["server"]
    start = hours_ago(2)
    write(server.database_url, records("L-small", start, [0.04] * 22, 10, seed=5))
    until = start + timedelta(seconds=20 * 10)
    period = ("--since", start.strftime("%Y-%m-%dT%H:%M:%S"), "--until", until.strftime("%Y-%m-%dT%H:%M:%S"))
    said = cli("monitor", "baseline", "--line", "L-small", *period, "--size", 10, "--config", server.config,
               env={**server.env, "COLUMNS": "400"}).stderr  # fmt: skip
    assert re.search(r"warning: subgroups of 10 parts at a defect rate of [\d.]+% give n·p̄ = 0\.\d", said), said
    assert "subgroups of at least" in said and "parts would do" in said
    with server.client(shown["key"]) as client:
        spc = client.get("/v1/lines/L-small/spc").json()
    assert any("n·p̄" in advice for advice in spc["baseline_advice"])
    out = tmp_path / "small.html"
    cli("monitor", "report", "--line", "L-small", "--out", out, "--config", server.config, env=server.env)
    html = out.read_text()
    assert "Drift not evaluated at the newest subgroup: 10 records &lt; 30" in html
    assert "No drift at the newest subgroup" not in html and "Baseline: subgroups of 10 parts" in html
