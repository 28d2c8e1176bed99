"""`lineinspect bench soak`: the service under sustained concurrent load, watched window by window.

Bounded on purpose: loopback only, a fixed duration, a fixed number of connections. Each window
reports throughput, latency percentiles, errors and the server's resident memory; the run fails
(exit 1) on any 5xx or dropped connection, or when memory grows more than `max_growth_mb` from
the end of the first window (warm-up) to the end of the last.
"""

from __future__ import annotations

from dataclasses import dataclass

import uvloop
from rich.console import Console
from rich.table import Table

from serving.benchmarks.serve import LoadResult, http_load, resident_mb


@dataclass(frozen=True)
class SoakResult:
    windows: list[tuple[LoadResult, float]]  # each window's load and the server's RSS (MB) after it

    @property
    def server_errors(self) -> int:
        return sum(w.server_errors for w, _ in self.windows)

    @property
    def growth_mb(self) -> float:
        return self.windows[-1][1] - self.windows[0][1]


def soak(url: str, pid: int, images: list[bytes], concurrency: int, seconds: float, window: float,
         headers: dict[str, str], console: Console) -> SoakResult:  # fmt: skip
    """Load the service for `seconds` in windows of `window` seconds, printing each as it ends."""
    table = Table("window", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "5xx", "RSS MB", title="soak")
    windows = []
    for i in range(max(1, round(seconds / window))):
        r = uvloop.run(http_load(url, images, concurrency, window, headers))
        rss = resident_mb(pid)
        windows.append((r, rss))
        console.print(f"window {i + 1}: {r.throughput:.1f} req/s, p99 {r.p99_ms:.1f} ms, "
                      f"{r.server_errors} server errors, RSS {rss:.0f} MB", highlight=False)  # fmt: skip
        table.add_row(str(i + 1), f"{r.throughput:.1f}", f"{r.p50_ms:.1f}", f"{r.p95_ms:.1f}", f"{r.p99_ms:.1f}",
                      str(r.errors), str(r.server_errors), f"{rss:.0f}")  # fmt: skip
    console.print(table)
    return SoakResult(windows)
