"""An inspection killed mid-run (SIGKILL, Ctrl-C) continues with --resume: every row once, as if never stopped."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from serving.batch.output import read_rows
from tests.serving.conftest import LINEINSPECT, cli, wait_for


@pytest.fixture
def image_list(casting_images, tmp_path):
    """All real casting test images (about 700), listed in one file."""
    listed = tmp_path / "images.txt"
    listed.write_text("\n".join(str(p) for p in casting_images["defect"] + casting_images["normal"]))
    return listed


def start(model, image_list, out) -> subprocess.Popen:
    """A slow-ish run (small batches, one worker) in its own process group, so it can be killed whole; SIGINT gets
    its default action, as at a terminal, whatever the test runner inherited."""
    args = ["inspect", model, image_list, "--out", out, "--batch-size", "4", "--workers", "1"]
    return subprocess.Popen([LINEINSPECT, *map(str, args)], stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip


def journalled_chunks(out) -> int:
    journal = out.with_name(out.name + ".journal")
    return journal.read_text().count("\n") - 1 if journal.is_file() else 0


def children(pid: int) -> list[int]:
    return [int(c) for f in Path(f"/proc/{pid}/task").glob("*/children") for c in f.read_text().split()]


def alive(pid: int) -> bool:
    """Running (a zombie nobody reaps does not count)."""
    try:
        return "\tZ" not in Path(f"/proc/{pid}/status").read_text().split("State:")[1][:4]
    except (OSError, IndexError):
        return False


def test_resume_after_sigkill_keeps_every_row_exactly_once(models, image_list, tmp_path):
    whole = tmp_path / "whole.csv"
    cli("inspect", models["model"], image_list, "--out", whole, "--batch-size", "4")
    expected = read_rows(whole)

    out = tmp_path / "killed.csv"
    run = start(models["model"], image_list, out)
    wait_for(lambda: journalled_chunks(out) >= 5, timeout=120, what="some chunks to be journalled")
    workers = children(run.pid)
    assert workers, "the run should have decode workers"
    os.kill(run.pid, signal.SIGKILL)  # kill -9 of the main process: its workers must not linger
    run.wait(timeout=30)
    wait_for(lambda: not any(map(alive, workers)), timeout=30, what="the orphaned workers to exit")
    assert not out.exists(), "the output must never be half-written"
    kept = journalled_chunks(out)
    assert 5 <= kept * 4 < len(expected)
    # a torn write at the moment of the kill: half a row, half a journal line
    with open(out.with_name(out.name + ".rows"), "ab") as f:
        f.write(b'{"path": "/torn')
    with open(out.with_name(out.name + ".journal"), "ab") as f:
        f.write(b'{"rows": 99')

    result = cli("inspect", models["model"], image_list, "--out", out, "--resume", "--batch-size", "4")
    assert f"resuming after {kept * 4} of {len(expected)} images" in result.stderr
    assert read_rows(out) == expected
    assert not out.with_name(out.name + ".journal").exists() and not out.with_name(out.name + ".rows").exists()


def test_ctrl_c_stops_cleanly_and_resume_finishes(models, image_list, tmp_path):
    # every image five times: a run of several seconds, so that the signal lands mid-run even on a loaded machine
    image_list.write_text("\n".join([image_list.read_text()] * 5))
    out = tmp_path / "out.parquet"
    run = start(models["model"], image_list, out)
    wait_for(lambda: journalled_chunks(out) >= 2, timeout=120, what="some chunks to be journalled")
    os.killpg(run.pid, signal.SIGINT)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 2 and "run the same command with --resume" in stderr and "Traceback" not in stderr
    assert not out.exists()
    cli("inspect", models["model"], image_list, "--out", out, "--resume")
    rows = read_rows(out)
    assert [r["path"] for r in rows] == image_list.read_text().splitlines()


def test_resume_refuses_another_model(models, image_list, tmp_path):
    out = tmp_path / "out.jsonl"
    run = start(models["model"], image_list, out)
    wait_for(lambda: journalled_chunks(out) >= 1, timeout=120, what="a chunk to be journalled")
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    result = cli("inspect", models["v2"], image_list, "--out", out, "--resume", check=False)
    assert result.returncode == 2 and "another model or other inputs" in result.stderr
