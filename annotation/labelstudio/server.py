"""A Label Studio of our own, for development and tests: installed apart, started on loopback.

Label Studio brings Django and about 110 packages, so it lives in its own virtual environment
(`<home>/venv-<version>`), never in the project's. `up` starts it with an admin user and an API
token made here, passed in its environment (any local user can read a command line, only its
own user a process's environment), and writes them to `<data-dir>/lineinspect-server.json`
(mode 600) so that the other `lineinspect labelstudio` commands find the server without being
told. The token is a legacy token, enabled on first start (`--enable-legacy-api-token`): Label
Studio 1.23 otherwise only accepts personal access tokens, which are made in the UI. The server
may connect to an ML backend on loopback or a private network (Label Studio's SSRF protection
refuses those by default).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from annotation.errors import LineInspectError

VERSION = "1.23.2"
# its environment's packages, pinned as tested (sentry-sdk 3.0 refuses an option Label Studio 1.23 starts it with)
CONSTRAINTS = Path(__file__).with_name("constraints.txt")
DEFAULT_PORT = 8080
STATE_FILE = "lineinspect-server.json"
LOG_FILE = "label-studio.log"
ADMIN = "admin@lineinspect.local"


def default_home() -> Path:
    return Path(os.environ.get("LINEINSPECT_LABEL_STUDIO_HOME") or Path.home() / ".cache/lineinspect/label-studio")


@dataclass(frozen=True)
class ServerInfo:
    """A started server: where it answers and how to log in."""

    url: str
    token: str
    username: str
    password: str
    pid: int
    data_dir: str
    document_root: str
    version: str = VERSION


def venv_dir(home: Path) -> Path:
    return home / f"venv-{VERSION}"


def install(home: Path, log=print) -> Path:
    """The `label-studio` program of a virtual environment holding Label Studio VERSION under CONSTRAINTS, made if
    missing or made under other constraints."""
    venv = venv_dir(home)
    program, marker = venv / "bin" / "label-studio", venv / ".installed"
    pins = CONSTRAINTS.read_text(encoding="utf-8")
    if program.is_file() and marker.is_file() and marker.read_text(encoding="utf-8") == pins:
        return program
    log(f"installing Label Studio {VERSION} into {venv} (once; a few minutes)")
    venv.parent.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", sys.executable)
    for step in (
        [base, "-m", "venv", "--clear", str(venv)],
        [str(venv / "bin/pip"), "install", "-q", "-c", str(CONSTRAINTS), f"label-studio=={VERSION}"],
    ):
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            raise LineInspectError(f"installing Label Studio failed ({' '.join(step[:3])}...):\n{done.stderr[-2000:]}")
    marker.write_text(pins, encoding="utf-8")
    return program


def read_info(data_dir: Path) -> ServerInfo | None:
    """What `up` wrote for the server of `data_dir`, or None."""
    try:
        return ServerInfo(**json.loads((data_dir / STATE_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=timeout).json().get("status") == "UP"
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


def up(
    data_dir: Path,
    port: int = DEFAULT_PORT,
    document_root: Path | None = None,
    home: Path | None = None,
    wait_s: float = 300.0,
    log=print,
) -> ServerInfo:
    """Start Label Studio on 127.0.0.1:`port` with its data in `data_dir`, and wait until it is healthy.

    Local-files storage is served from `document_root` (default: `data_dir`); a storage path must lie
    under it. A server already running for `data_dir` is returned as it is.
    """
    data_dir = data_dir.resolve()
    running = read_info(data_dir)
    if running and _alive(running.pid) and healthy(running.url):
        return running
    url = f"http://127.0.0.1:{port}"
    if healthy(url):
        raise LineInspectError(f"something already answers on {url} (another Label Studio?): choose --port")
    program = install(home or default_home(), log)
    data_dir.mkdir(parents=True, exist_ok=True)
    docroot = (document_root or data_dir).resolve()
    previous = read_info(data_dir)  # the user and token live in the data dir's database: reuse them
    info = ServerInfo(
        url=url,
        token=previous.token if previous else secrets.token_hex(20),
        username=ADMIN,
        password=previous.password if previous else secrets.token_urlsafe(12),
        pid=0,
        data_dir=str(data_dir),
        document_root=str(docroot),
    )
    env = {
        **os.environ,
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(docroot),
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "COLLECT_ANALYTICS": "false",
        "USE_DEFAULT_BANNED_SUBNETS": "false",  # let projects use an ML backend on this machine or network
        # the admin user, as Label Studio's _create_user reads it: not as arguments, which any local user sees in ps
        "LABEL_STUDIO_USERNAME": info.username,
        "LABEL_STUDIO_PASSWORD": info.password,
        "LABEL_STUDIO_USER_TOKEN": info.token,
    }
    args = [
        str(program), "start", "--no-browser", "--data-dir", str(data_dir), "--port", str(port),
        "--internal-host", "127.0.0.1", "--enable-legacy-api-token", "--log-level", "WARNING",
    ]  # fmt: skip
    with open(data_dir / LOG_FILE, "ab") as out:
        process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)  # fmt: skip
    info = ServerInfo(**{**asdict(info), "pid": process.pid})
    _write_info(data_dir, info)
    deadline = time.monotonic() + wait_s
    while not healthy(url):
        if process.poll() is not None:
            raise LineInspectError(f"Label Studio exited with code {process.returncode}:\n{_log_tail(data_dir)}")
        if time.monotonic() > deadline:
            stop(process.pid)
            raise LineInspectError(
                f"Label Studio did not answer {url}/health within {wait_s:.0f} s:\n{_log_tail(data_dir)}"
            )
        time.sleep(1.0)
    return info


def down(data_dir: Path) -> ServerInfo | None:
    """Stop the server `up` started for `data_dir`; None when none was running."""
    info = read_info(data_dir.resolve())
    if info is None or not _alive(info.pid):
        return None
    stop(info.pid)
    return info


def stop(pid: int, grace_s: float = 20.0) -> None:
    """SIGTERM the server's process group, SIGKILL it after `grace_s`."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.2)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_info(data_dir: Path, info: ServerInfo) -> None:
    path = data_dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(info), indent=2))
    tmp.chmod(0o600)
    tmp.replace(path)


def _log_tail(data_dir: Path, lines: int = 30) -> str:
    try:
        return "\n".join((data_dir / LOG_FILE).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
