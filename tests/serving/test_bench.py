"""`lineinspect bench serve` measures the ceiling and the service in one run and prints both."""

from __future__ import annotations

import re
import shutil

from tests.serving.conftest import cli


def test_bench_serve_prints_ceiling_throughput_latency_and_memory(models, casting_images, no_torch_env, tmp_path):
    for path in casting_images["normal"][:8]:
        shutil.copy(path, tmp_path / path.name)
    result = cli("bench", "serve", "--model", models["model"], "--images", tmp_path, "--concurrency", "1,4",
                 "--duration", "1", env=no_torch_env)  # fmt: skip
    out = result.stdout
    assert re.search(r"in-process ceiling: \d+\.\d img/s", out)
    assert re.search(r"single image decode\+preprocess\+infer: p50 \d", out)
    assert re.search(r"in-process ceiling after each load: \d+\.\d, \d+\.\d img/s", out)
    assert re.search(r"single image p50 after each load: \d+\.\d, \d+\.\d ms", out)
    assert re.search(r"p99 at concurrency 1 / single-image p50 \(mean of before and after\): \d\.\d\d", out)
    rows = [line for line in out.splitlines() if re.match(r"\W*(1|4)\W+\d+\.\d\W+\d\.\d\d", line)]
    assert len(rows) == 2, out
    assert re.search(r"server resident memory: \d+ MB before, \d+ MB after", out)


def test_short_soak_has_no_server_errors_and_bounded_memory(models, casting_images, no_torch_env, tmp_path):
    for path in casting_images["defect"][:8]:
        shutil.copy(path, tmp_path / path.name)
    args = ["--concurrency", "48", "--duration", "9", "--window", "3", "--max-growth-mb", "40"]
    result = cli(
        "bench", "soak", "--model", models["model"], "--images", tmp_path, *args, env=no_torch_env, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    windows = re.findall(r"window \d: (\d+\.\d) req/s, p99 [\d.]+ ms, (\d+) server errors", result.stdout)
    assert len(windows) == 3 and all(float(rate) > 0 and errors == "0" for rate, errors in windows)
    assert "soak passed: 0 server errors" in " ".join(result.stderr.split())
