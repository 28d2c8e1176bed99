"""`inspect --engine ray` on a local Ray instance: the local engine's rows, formats, errors and resume."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from serving.batch.inputs import collect_inputs
from serving.batch.output import RowLog, fingerprint, read_rows
from serving.benchmarks.local_server import free_port
from serving.cli.options import import_options
from tests.serving.conftest import REPO, cli, wait_for

BLOCK_RAY = """import sys


class _NoRay:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "ray":
            raise ImportError(f"{name} is blocked")
        return None


sys.meta_path.insert(0, _NoRay())
"""


@pytest.fixture(scope="module")
def inputs(casting_images, models, tmp_path_factory) -> list[str]:
    """A folder of real and corrupt images, a file list naming a missing file, and a Label Studio export (labels)."""
    folder = tmp_path_factory.mktemp("images")
    for path in casting_images["defect"][:4] + casting_images["normal"][:4]:
        shutil.copy(path, folder / path.name)
    (folder / "a-truncated.jpeg").write_bytes(casting_images["defect"][0].read_bytes()[:300])
    (folder / "b-empty.jpeg").write_bytes(b"")
    (folder / "c-text.jpeg").write_text("this is a text file, not an image\n")
    listed = folder.parent / "list.txt"
    listed.write_text("\n".join(map(str, [*casting_images["normal"][4:6], folder / "missing.jpeg"])))
    return [str(folder), str(listed), str(models["model"].parents[1] / "export.json")]


def inspect_args(models, casting_images, inputs: list[str], out: Path, *extra: str) -> list:
    root = casting_images["normal"][0].parents[2]
    return ["inspect", models["model"], *inputs, "--out", out, "--images-root", root, "--normal-label", "ok_front",
            "--defect-label", "def_front", "--batch-size", "3", "--workers", "2", *extra]  # fmt: skip


def tagged_env() -> dict[str, str]:
    """An environment whose mark every process started under it inherits (Ray's included)."""
    return {**os.environ, "LINEINSPECT_TEST_RUN": uuid.uuid4().hex}


def processes_of(env: dict[str, str]) -> list[str]:
    mark = f"LINEINSPECT_TEST_RUN={env['LINEINSPECT_TEST_RUN']}".encode()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if mark in (proc / "environ").read_bytes().split(b"\0"):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # gone meanwhile
            continue
    return found


def test_ray_rows_equal_local_rows_in_csv(models, casting_images, inputs, tmp_path):
    """Every column equal, scores exactly: both engines cut the same chunks and score them with `chunk_rows`."""
    cli(*inspect_args(models, casting_images, inputs, tmp_path / "local.csv"))
    env = tagged_env()
    result = cli(*inspect_args(models, casting_images, inputs, tmp_path / "ray.csv", "--engine", "ray"), env=env)
    local, ray = read_rows(tmp_path / "local.csv"), read_rows(tmp_path / "ray.csv")
    assert ray == local
    assert len(ray) == 8 + 3 + 3 + 60 and sum(r["error"] is not None for r in ray) == 4
    assert {r["true_label"] for r in ray} == {None, "defect", "normal"}
    assert "74 images:" in result.stderr and "4 unreadable" in result.stderr
    assert not list(tmp_path.glob("*.rows")) + list(tmp_path.glob("*.journal"))
    wait_for(lambda: not processes_of(env), timeout=30, what="the local Ray instance to shut down")


def test_ray_resumes_a_journalled_run_into_parquet(models, casting_images, inputs, tmp_path):
    """Six rows journalled by an interrupted run; the Ray engine writes the rest, the same as the local engine."""
    cli(*inspect_args(models, casting_images, inputs, tmp_path / "local.parquet"))
    local = read_rows(tmp_path / "local.parquet")
    out = tmp_path / "ray.parquet"
    root = casting_images["normal"][0].parents[2]
    options = import_options(root, None, None, ["ok_front"], ["def_front"], "majority")
    log = RowLog(out, fingerprint(models["model"], collect_inputs(inputs, options)))
    log.open(resume=False)
    for chunk in (local[:3], local[3:6]):
        log.append(chunk, sum(r["verdict"] == "defect" for r in chunk), sum(r["error"] is not None for r in chunk))
    log.close()

    env = tagged_env()
    result = cli(*inspect_args(models, casting_images, inputs, out, "--engine", "ray", "--resume"), env=env)
    assert f"resuming after 6 of {len(local)} images" in result.stderr
    assert read_rows(out) == local
    wait_for(lambda: not processes_of(env), timeout=30, what="the local Ray instance to shut down")


def test_unreachable_ray_address_is_one_line_exit_2(models, inputs, tmp_path):
    address = f"127.0.0.1:{free_port()}"
    result = cli("inspect", models["model"], inputs[0], "--out", tmp_path / "out.csv", "--engine", "ray",
                 "--ray-address", address, check=False)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: cannot reach Ray at {address}: Connection refused"]
    assert not list(tmp_path.iterdir()), "nothing is written before Ray is reached"


def test_ray_engine_without_ray_says_what_to_install(models, inputs, tmp_path):
    (tmp_path / "sitecustomize.py").write_text(BLOCK_RAY)
    env = {"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"}
    result = cli("inspect", models["model"], inputs[0], "--out", tmp_path / "out.csv", "--engine", "ray",
                 check=False, env=env)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == "error: the ray engine needs Ray: pip install 'lineinspect[cluster]'"


def test_unknown_engine_is_refused(models, inputs, tmp_path):
    result = cli("inspect", models["model"], inputs[0], "--out", tmp_path / "out.csv", "--engine", "spark", check=False)
    assert result.returncode == 2 and "--engine must be local or ray" in result.stderr
