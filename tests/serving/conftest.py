"""A real model trained once with the CLI, real `lineinspect serve` processes on loopback ports, and the
databases they write: SQLite files and a real PostgreSQL server.

Every server runs with an import hook that makes `import torch` fail, so the whole suite proves the
service runs where torch is not installed. Every test that touches the database asks for `backend` (or
`database_url`) and so runs on both SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from annotation.export_writer import labelled_task, write_export
from tests.postgres import Cluster
from vision.metadata import read_metadata, write_metadata

REPO = Path(__file__).resolve().parents[2]
LINEINSPECT = str(Path(sys.executable).parent / "lineinspect")
NO_TORCH = '''"""Test hook: the service must run without torch, so importing it fails here."""
import sys


class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("torch", "torchvision"):
            raise ImportError(f"{name} is blocked: lineinspect serve must run without torch")
        return None


sys.meta_path.insert(0, _NoTorch())
'''


def cli(*args, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([LINEINSPECT, *map(str, args)], capture_output=True, text=True, timeout=600, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"lineinspect {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}")
    return result


def wait_for(condition: Callable[[], object], timeout: float = 30, what: str = "condition") -> object:
    """Poll until `condition()` is truthy and return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def metric(text: str, sample_name: str, /, **labels: str) -> float:
    """One sample's value from Prometheus text (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


class Sqlite:
    """SQLite files in a folder, a new one per database."""

    name = "sqlite"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def database(self) -> str:
        """The URL of a new, empty database."""
        return f"sqlite:///{self.folder / uuid4().hex}.db"

    def absent(self) -> tuple[str, Callable[[], None]]:
        """The URL of a database that cannot be opened yet (its folder is missing), and what makes it."""
        missing = self.folder / uuid4().hex
        return f"sqlite:///{missing / 'lineinspect.db'}", missing.mkdir


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """One throwaway PostgreSQL server for the session, started only if a test asks for it."""
    cluster = Cluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def backend(request, tmp_path_factory) -> Sqlite | Cluster:
    """The database the test runs on: each test that asks runs once on SQLite and once on PostgreSQL."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres")
    return Sqlite(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture
def database_url(backend) -> str:
    """A new, empty database of the backend."""
    return backend.database()


@pytest.fixture(scope="session")
def casting_images(shared_data) -> dict[str, list[Path]]:
    root = shared_data / "casting-impeller" / "casting_data" / "test"
    return {
        label: sorted((root / folder).glob("*.jpeg"))
        for label, folder in (("defect", "def_front"), ("normal", "ok_front"))
    }


@pytest.fixture(scope="session")
def no_torch_env(tmp_path_factory) -> dict[str, str]:
    """Environment for subprocesses in which `import torch` raises ImportError."""
    hook = tmp_path_factory.mktemp("no-torch")
    (hook / "sitecustomize.py").write_text(NO_TORCH)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook), str(REPO)])}


@pytest.fixture(scope="session")
def models(shared_data, tmp_path_factory) -> dict[str, Path]:
    """A resnet18 at 64 px trained for one epoch on 60 casting images (train split), exported; a copy
    with another version (a second good model) and files that must be refused, all in one model folder."""
    root = shared_data / "casting-impeller" / "casting_data"
    work = tmp_path_factory.mktemp("model")
    tasks = []
    for folder in ("def_front", "ok_front"):
        for path in sorted((root / "train" / folder).glob("*.jpeg"))[:30]:
            tasks.append(labelled_task(len(tasks) + 1, f"/data/local-files/?d={path.relative_to(root)}", folder))
    export = write_export(tasks, work / "export.json")
    cli("train", export, "--images-root", root, "--out", work / "run",
        "--set", "model.architecture=resnet18", "--set", "input.height=64", "--set", "input.width=64",
        "--set", "train.epochs=1", "--set", "train.workers=0", "--set", "model.pretrained=none",
        "--normal-label", "ok_front", "--defect-label", "def_front")  # fmt: skip
    folder = work / "models"
    folder.mkdir()
    cli("export", work / "run", "--out", folder / "model.onnx", "--force")  # one epoch: may not beat chance
    v2 = folder / "model-v2.onnx"
    shutil.copy(folder / "model.onnx", v2)
    meta = read_metadata(v2)
    write_metadata(v2, meta.model_copy(update={"version": meta.version + "-v2"}))
    (folder / "broken.onnx").write_bytes(b"this is not an ONNX model")
    (work / "outside.onnx").write_bytes((folder / "model.onnx").read_bytes())
    return {"model": folder / "model.onnx", "v2": v2, "broken": folder / "broken.onnx",
            "outside": work / "outside.onnx", "folder": folder}  # fmt: skip


class Server:
    """`lineinspect serve` in a subprocess (torch blocked), with its config and data in `root`."""

    def __init__(self, root: Path, model: Path, env: dict[str, str], settings: dict | None = None) -> None:
        self.root, self.model, self.env = root, model, env
        root.mkdir(parents=True, exist_ok=True)
        self.config = root / "serve.yaml"
        base = {"data_dir": str(root / "data"), "server": {"log_level": "info"}, "auth": {"refresh_seconds": 0.2}}
        self.config.write_text(yaml.safe_dump(_merge(base, settings or {})))
        self.database_url = (settings or {}).get("database_url") or f"sqlite:///{root / 'data' / 'lineinspect.db'}"
        self.process: subprocess.Popen | None = None
        self.log = root / "server.log"

    def start(self, ready: bool = True) -> Server:
        self.launch()
        return self.wait_started(ready)

    def launch(self) -> Server:
        """Start the process without waiting for it (`wait_started` does)."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        args = ["serve", "--model", self.model, "--config", self.config, "--port", self.port]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [LINEINSPECT, *map(str, args)], stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.root
            )
        return self

    def wait_started(self, ready: bool = True) -> Server:
        wait_for(lambda: self._answers("/readyz" if ready else "/healthz"), timeout=120, what=f"{self.url} to start")
        return self

    def _answers(self, path: str) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log.read_text()}")
        try:
            return httpx.get(self.url + path, timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        """SIGTERM, and check the shutdown was clean (uvicorn re-raises the signal once it has shut down)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=60) in (0, -signal.SIGTERM)
        assert "stopped; every record written or spooled" in self.log.read_text().rsplit("Started server", 1)[-1]

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def keys(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return cli("keys", *args, "--config", self.config, env=self.env, check=check)


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and key in merged else value
    return merged


@pytest.fixture(scope="session")
def server_factory(models, no_torch_env, tmp_path_factory) -> Iterator[Callable[..., Server]]:
    """Servers made through this are stopped at the end of the session."""
    made: list[Server] = []

    def make(settings: dict | None = None, model: Path | None = None, root: Path | None = None) -> Server:
        server = Server(root or tmp_path_factory.mktemp("server"), model or models["model"], no_torch_env, settings)
        made.append(server)
        return server

    yield make
    for server in made:
        if server.process is not None and server.process.poll() is None:
            server.stop()


@pytest.fixture(scope="session")
def service(server_factory, models) -> dict:
    """The shared service: API keys on, small limits to test against, every image kept, batches up to 8."""
    server = server_factory(
        {
            "model_dirs": [str(models["folder"])],
            "limits": {"max_body_mb": 1.0, "max_pixels": 1_000_000, "max_batch_images": 8},
            "engine": {"max_batch_size": 8, "max_wait_ms": 50},
            "records": {"keep_images": {"defects": True, "band": 1.0}},
        }
    )
    key = server.keys("create", "camera-1").stdout.strip()
    server.start()
    with server.client(key) as client:
        yield {"server": server, "key": key, "client": client}


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory) -> Iterator[dict]:
    """One real Label Studio 1.23 for the session (installed once into its own venv), on a free loopback port.

    Local-files storage serves from `docroot`, a folder the tests fill with copies of real images."""
    from annotation.labelstudio import server as ls_server

    root = tmp_path_factory.mktemp("label-studio")
    docroot = root / "docroot"
    docroot.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    info = ls_server.up(root / "data", port, docroot, log=print)
    yield {"info": info, "url": info.url, "token": info.token, "docroot": docroot, "data_dir": root / "data"}
    ls_server.down(root / "data")
