"""A real model trained once with the CLI, real `lineinspect serve` processes on loopback ports, and the
databases they write: SQLite files and a real PostgreSQL server.

Every server runs with an import hook that makes `import torch` fail, so the suite proves the service runs
where torch is not installed. The tests that only talk HTTP (no port, no process to kill) run the same app, from
the same settings file, in the test process instead (`app_service`, `app_factory`: the fast tier). Every test
that touches the database asks for `backend` (or `database_url`) and so runs on both SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
import uvloop
import yaml
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from annotation.export_writer import labelled_task, write_export
from serving.benchmarks.local_server import free_port
from tests.postgres import Cluster
from vision.metadata import read_metadata, write_metadata

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 60  # seconds a test's request may take
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

    def start(self, ready: bool = True, port: int | None = None) -> Server:
        self.launch(port)
        return self.wait_started(ready)

    def launch(self, port: int | None = None) -> Server:
        """Start the process without waiting for it (`wait_started` does), on `port` or a free one."""
        self.port = port or free_port()
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
        return httpx.Client(base_url=self.url, headers=headers, timeout=TIMEOUT)

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


def service_settings(models: dict[str, Path]) -> dict:
    """The shared service's settings, for `service` (a subprocess) and `app_service` (in this process)."""
    return {
        "model_dirs": [str(models["folder"])],
        "limits": {"max_body_mb": 1.0, "max_pixels": 1_000_000, "max_batch_images": 8},
        "engine": {"max_batch_size": 8, "max_wait_ms": 50},
        "records": {"keep_images": {"defects": True, "band": 1.0}},
    }


@pytest.fixture(scope="session")
def service(server_factory, models) -> dict:
    """The shared service: API keys on, small limits to test against, every image kept, batches up to 8."""
    server = server_factory(service_settings(models))
    key = server.keys("create", "camera-1").stdout.strip()
    server.start()
    with server.client(key) as client:
        yield {"server": server, "key": key, "client": client}


class _PortalTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """httpx's ASGI transport, run on the in-process service's event loop from any thread or loop."""

    def __init__(self, portal: BlockingPortal, app: FastAPI) -> None:
        self.portal = portal
        self.asgi = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # an app error answers 500, as uvicorn

    async def _send(self, request: httpx.Request, stream: httpx.AsyncByteStream) -> httpx.Response:
        request = httpx.Request(request.method, request.url, headers=request.headers, stream=stream)
        response = await self.asgi.handle_async_request(request)
        body = b"".join([chunk async for chunk in response.stream])
        return httpx.Response(response.status_code, headers=response.headers, stream=httpx.ByteStream(body))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.portal.start_task_soon(self._send, request, _ChunksOf(request.stream))  # a generator: chunked
        return answer.result(timeout=TIMEOUT)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = httpx.ByteStream(await request.aread())  # read in the caller's loop, sent on the service's
        answer = self.portal.start_task_soon(self._send, request, body)
        return await asyncio.wait_for(asyncio.wrap_future(answer), TIMEOUT)


class _ChunksOf(httpx.AsyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self.stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.stream:
            yield chunk


class InProcessServer(Server):
    """The same service as `Server` (its settings file, model, database and keys), built with `create_app` and
    run in this process: its lifespan on an event loop of its own (uvloop, as uvicorn picks) in a thread, and
    requests through httpx's ASGI transport. For the tests that need no port, no process to kill and no torch
    blocked; `client()` and `async_client()` are called like a `Server`'s."""

    def start(self, ready: bool = True) -> InProcessServer:
        from serving.app import create_app
        from serving.cli.options import cli_settings
        from serving.engine import load_model

        settings = cli_settings(self.config, None, model=self.model)  # as `lineinspect serve` reads them
        loaded = load_model(settings.model, settings.engine, settings.limits.max_pixels)
        self.app = create_app(settings, loaded)
        self.url = "http://lineinspect.test"
        with ExitStack() as stack:
            portal = stack.enter_context(
                start_blocking_portal("asyncio", {"loop_factory": uvloop.new_event_loop}, name="in-process service")
            )
            stack.enter_context(portal.wrap_async_context_manager(self.app.router.lifespan_context(self.app)))
            self.transport = _PortalTransport(portal, self.app)
            if ready:
                with self.client() as client:
                    assert client.get("/readyz").status_code == 200
            self._stack = stack.pop_all()  # started: `stop` shuts it down
        return self

    def stop(self) -> None:
        """Shut the lifespan down (the engine, then the records drained); an error in it fails the test."""
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()
            gc.unfreeze()  # the lifespan froze this whole test process's objects, as it does the server's

    @property
    def running(self) -> bool:
        return getattr(self, "_stack", None) is not None

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(transport=self.transport, base_url=self.url, headers=headers)

    def async_client(self, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport, base_url=self.url, headers=headers)


@pytest.fixture(scope="session")
def app_factory(models, no_torch_env, tmp_path_factory) -> Iterator[Callable[..., InProcessServer]]:
    """Like `server_factory`, for services in this process (fast tier); stopped at the end of the session."""
    made: list[InProcessServer] = []

    def make(settings: dict | None = None, model: Path | None = None) -> InProcessServer:
        server = InProcessServer(tmp_path_factory.mktemp("app"), model or models["model"], no_torch_env, settings)
        made.append(server)
        return server

    yield make
    for server in made:
        if server.running:
            server.stop()


@pytest.fixture(scope="session")
def _app_service(app_factory, models) -> Iterator[dict]:
    server = app_factory(service_settings(models))
    key = server.keys("create", "camera-1").stdout.strip()
    server.start()
    with server.client(key) as client:
        yield {"server": server, "key": key, "client": client}
    server.stop()


@pytest.fixture
def app_service(_app_service) -> dict:
    """`service` in this process, with the same settings, key and `client`; Tesseract limited to one OpenMP
    thread as `lineinspect serve` limits it, for this test only (`_openmp_limit_stays_in_its_test`)."""
    from vision.ocr.tesseract import limit_openmp

    limit_openmp()
    return _app_service


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory) -> Iterator[dict]:
    """One real Label Studio 1.23 for the session (installed once into its own venv), on a free loopback port.

    Local-files storage serves from `docroot`, a folder the tests fill with copies of real images."""
    from annotation.labelstudio import server as ls_server

    root = tmp_path_factory.mktemp("label-studio")
    docroot = root / "docroot"
    docroot.mkdir()
    port = free_port()
    info = ls_server.up(root / "data", port, docroot, log=print)
    yield {"info": info, "url": info.url, "token": info.token, "docroot": docroot, "data_dir": root / "data"}
    ls_server.down(root / "data")
