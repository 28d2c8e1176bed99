"""A throwaway PostgreSQL cluster for the tests: `initdb` and `pg_ctl` on a free loopback port in a temporary folder.

PostgreSQL refuses to run as root, so when the tests run as root (CI does) the cluster runs as the `postgres` account
that Debian's package creates, and owns its folder. Durability is off: the cluster lives as long as the session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from uuid import uuid4

import sqlalchemy as sa

from serving.benchmarks.local_server import free_port

SUPERUSER = "lineinspect"
FAST = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=200")


def bin_dir() -> Path:
    """Where initdb and pg_ctl are: on PATH, else Debian's newest /usr/lib/postgresql/N/bin."""
    if found := shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise RuntimeError("PostgreSQL's initdb not found: run `make setup` (it installs Debian's postgresql)")
    return versions[-1].parent


class Cluster:
    """One PostgreSQL server, holding a database per test (CREATE DATABASE on an empty one is cheap)."""

    name = "postgresql"

    def __init__(self, durable: bool = False) -> None:
        self.options = ("max_connections=200",) if durable else FAST  # durable: a commit survives a crash
        self.user = "postgres" if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="lineinspect-pg-"))  # /tmp: the pytest tmp folders are root's only
        if self.user:
            shutil.chown(self.root, self.user, self.user)
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}"
        self._admin: sa.Engine | None = None

    def start(self) -> Cluster:
        self._run("initdb", "-D", self.data, "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync")
        self.start_server()
        self._admin = sa.create_engine(f"{self.url}/postgres", isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
        return self

    def start_server(self) -> None:
        """Start the server on the cluster's data (again, after `stop_server`)."""
        options = " ".join(f"-c {o}" for o in (f"port={self.port}", "listen_addresses=127.0.0.1",
                                                f"unix_socket_directories={self.root}", *self.options))  # fmt: skip
        self._run("pg_ctl", "start", "-D", self.data, "-w", "-t", "60", "-l", self.root / "server.log", "-o", options)

    def stop_server(self) -> None:
        """Stop the server as an outage would (connections cut), keeping its data."""
        self._run("pg_ctl", "stop", "-D", self.data, "-m", "immediate", "-w")

    def database(self) -> str:
        """The URL of a new, empty database."""
        url, create = self.absent()
        create()
        return url

    def absent(self) -> tuple[str, Callable[[], None]]:
        """The URL of a database that cannot be opened yet, and what makes it (an outage and its end)."""
        name = f"t_{uuid4().hex[:16]}"
        return f"{self.url}/{name}", lambda: self._create(name)

    def _create(self, name: str) -> None:
        with self._admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.dispose()
        if (self.data / "postmaster.pid").exists():
            self.stop_server()
        shutil.rmtree(self.root)

    def _run(self, program: str, *args: object) -> None:
        command = [str(bin_dir() / program), *map(str, args)]
        account = {"user": self.user, "group": self.user, "extra_groups": []} if self.user else {}
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.root, timeout=120, **account)
        if result.returncode != 0:
            log = self.root / "server.log"
            server_log = log.read_text() if log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}\n{server_log}")
