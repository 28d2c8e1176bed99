"""The browser helper renders real pages: script output and drawn colours show in the screenshot."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.browser import colour_fraction, dump_dom, screenshot, text_in

RED = (220, 0, 0)

CHART_PAGE = """<!doctype html>
<html><body style="margin:20px;background:#fff;font-family:sans-serif">
<h1>Line A control chart</h1>
<svg width="600" height="200">
  <polyline points="10,150 100,40 200,120 300,30 400,160 590,50" fill="none" stroke="rgb(220,0,0)" stroke-width="12"/>
</svg>
<div id="alarms"></div>
<script>
setTimeout(() => {
  const p = document.createElement("p");
  p.style.fontSize = "24px";
  p.textContent = "ALARM open: beyond 3 sigma";
  document.getElementById("alarms").appendChild(p);
}, 300);
</script>
</body></html>
"""

DASHBOARD_PAGE = b"""<!doctype html>
<html><body style="margin:20px;background:#fff;font-family:sans-serif">
<h1>Live dashboard</h1>
<p id="reading" style="font-size:28px">waiting for data</p>
<script>
fetch("/data.json").then((r) => r.json()).then((d) => {
  document.getElementById("reading").textContent = "Defect rate " + d.value + " ppm";
});
</script>
</body></html>
"""


def test_file_page_shows_heading_script_text_and_red_line(tmp_path: Path) -> None:
    page = tmp_path / "chart.html"
    page.write_text(CHART_PAGE, encoding="utf-8")

    png = screenshot(page.as_uri(), tmp_path / "chart.png", width=800, height=600)

    text = text_in(png)
    assert "line a control chart" in text
    assert "alarm open: beyond 3 sigma" in text  # inserted by the script 300 ms after load
    assert colour_fraction(png, RED, box=(0, 60, 700, 300)) > 0.02
    assert colour_fraction(png, RED, box=(0, 400, 800, 600)) == 0  # nothing red below the chart


class _Dashboard(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/data.json":
            time.sleep(0.5)  # a slow backend: the shot must still wait for it
            body, kind = json.dumps({"value": 4217}).encode(), "application/json"
        else:
            body, kind = DASHBOARD_PAGE, "text/html; charset=utf-8"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def dashboard_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Dashboard)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_http_page_shows_value_fetched_by_its_script(dashboard_url: str, tmp_path: Path) -> None:
    dom = dump_dom(dashboard_url)
    assert "Defect rate 4217 ppm" in dom
    assert "waiting for data" not in dom

    text = text_in(screenshot(dashboard_url, tmp_path / "dashboard.png", width=800, height=400))
    assert "live dashboard" in text
    assert "defect rate 4217 ppm" in text
