"""`lineinspect serve` started as a child process on a free loopback port (for the benchmark and the demo)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from time import perf_counter, sleep

import httpx

from annotation.errors import LineInspectError


def free_port() -> int:
    """A loopback port nothing listens on now (the OS's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """`lineinspect serve` in a subprocess on a free loopback port, with no keys.

    Records go to `data_dir`, or to a throwaway folder removed on `stop()`.
    """

    def __init__(self, model: Path, config: Path | None, overrides: list[str], data_dir: Path | None = None) -> None:
        self.data = None if data_dir else tempfile.TemporaryDirectory(prefix="lineinspect-bench-")
        self.data_dir = Path(data_dir or self.data.name)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = ["serve", "--model", str(model), "--host", "127.0.0.1", "--port", str(self.port)]
        args += ["--config", str(config)] if config else []
        for entry in [f"data_dir={self.data_dir}", "auth.mode=disabled", "server.log_level=warning", *overrides]:
            args += ["--set", entry]
        self.log = self.data_dir / "server.log"
        with self.log.open("wb") as log:
            code = "from serving.cli import main; main()"
            self.process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready(timeout=120)

    def _wait_ready(self, timeout: float) -> None:
        deadline = perf_counter() + timeout
        while perf_counter() < deadline:
            if self.process.poll() is not None:
                raise LineInspectError(f"the service exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            sleep(0.2)
        self.stop()
        raise LineInspectError(f"the service was not ready within {timeout:.0f} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.data:
            self.data.cleanup()
