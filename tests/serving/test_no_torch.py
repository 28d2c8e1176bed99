"""The service runs where torch is not installed: every test server runs with `import torch` failing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import jpeg_bytes


def test_the_hook_really_blocks_torch(no_torch_env):
    result = subprocess.run([sys.executable, "-c", "import torch"], env=no_torch_env, capture_output=True, text=True)
    assert result.returncode != 0 and "ImportError: torch is blocked" in result.stderr


def test_service_serves_with_torch_blocked(service, no_torch_env):
    server = service["server"]
    assert server.env == no_torch_env
    answer = service["client"].post("/v1/inspect", content=jpeg_bytes(80, 80), headers={"content-type": "image/jpeg"})
    assert answer.status_code == 200 and answer.json()["verdict"] in ("normal", "defect")
    libraries = Path(f"/proc/{server.process.pid}/maps").read_text()
    assert "onnxruntime" in libraries and "libtorch" not in libraries
