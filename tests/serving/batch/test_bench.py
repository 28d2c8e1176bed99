"""`lineinspect bench inspect` measures the ceiling and the engine in one run and prints their ratio and memory."""

from __future__ import annotations

import re
import shutil

from tests.serving.conftest import cli


def test_bench_inspect_on_generated_full_hd_images(models):
    out = cli("bench", "inspect", "--model", models["model"], "--generate", "24", "--size", "1920x1080",
              "--batch-size", "8").stdout  # fmt: skip
    assert "24 images" in out
    assert re.search(r"in-process ceiling: \d+\.\d img/s", out)
    assert re.search(r"local engine: \d+\.\d img/s", out)
    assert re.search(r"engine / ceiling: \d\.\d\d", out)
    assert re.search(r"peak \d+ MB; largest worker peak [1-9]\d* MB", out), out


def test_bench_inspect_on_a_folder_of_real_images(models, casting_images, tmp_path):
    for path in casting_images["normal"][:8]:
        shutil.copy(path, tmp_path / path.name)
    out = cli("bench", "inspect", "--model", models["model"], "--images", tmp_path).stdout
    assert "8 images" in out and re.search(r"engine / ceiling: \d\.\d\d", out)


def test_bench_inspect_refuses_a_bad_size(models):
    result = cli("bench", "inspect", "--model", models["model"], "--size", "big", check=False)
    assert result.returncode == 2 and "WIDTHxHEIGHT" in result.stderr
