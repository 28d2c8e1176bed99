"""nginx as the load balancer in front of several service instances, configured as README's deployment notes say:
an upstream of the instances and `proxy_next_upstream error timeout http_503 non_idempotent`, so a POST that an
instance did not answer (killed, or not ready) goes to another. Debian's `nginx`, installed by `make setup`; it runs
in the foreground on a free loopback port with its configuration, logs and temporary files in its own folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import httpx

from serving.benchmarks.local_server import free_port
from tests.serving.conftest import wait_for

CONFIG = """\
{user}worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
{upstream}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size {max_body_mb}m;
        location / {{
            proxy_pass http://lineinspect;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout http_503 non_idempotent;
        }}
    }}
}}
"""


def upstream(ports: list[int]) -> str:
    """The upstream block README shows: every instance, passively checked (a failed one rests for a second)."""
    servers = "".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=1s;\n" for port in ports)
    return f"    upstream lineinspect {{\n{servers}        keepalive 16;\n    }}"


class Balancer:
    """nginx in front of the instances listening on `ports`."""

    def __init__(self, ports: list[int], max_body_mb: int = 20) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise RuntimeError("nginx not found: run `make setup` (it installs Debian's nginx)")
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="lineinspect-nginx-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        user = "user root;\n" if os.geteuid() == 0 else ""  # as root, workers would run as nobody, shut out of root
        self.config = self.root / "nginx.conf"
        self.config.write_text(
            CONFIG.format(user=user, root=self.root, upstream=upstream(ports), port=self.port, max_body_mb=max_body_mb)
        )
        self.error_log = self.root / "error.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Balancer:
        args = [self.binary, "-p", str(self.root), "-c", str(self.config), "-e", str(self.error_log)]
        subprocess.run([*args, "-t"], check=True, capture_output=True)  # a bad configuration fails here, said
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for(self._listens, timeout=10, what="nginx to listen")
        return self

    def _listens(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"nginx exited: {self.error_log.read_text()}")
        try:
            httpx.get(self.url + "/healthz", timeout=2)
            return True
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: finish the requests in flight
            self.process.wait(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)
