"""vision/ is split by what it needs: the runtime in `vision` imports no torch, `vision.training` does.

Each runtime module is imported alone in a fresh interpreter, so nothing a test or another module loaded
first can hide an import of torch or an import cycle that only one entry point trips over. Cycles among
all vision modules, the training side's included, are found in the source (importing torch nine times
would take a minute).
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import vision
import vision.ocr
import vision.training

REPO = Path(__file__).resolve().parents[2]
TORCH = ("torch", "torchvision", "albumentations")
RUNTIME = sorted(
    [f"vision.{m.name}" for m in pkgutil.iter_modules(vision.__path__) if not m.ispkg]
    + [f"vision.ocr.{m.name}" for m in pkgutil.iter_modules(vision.ocr.__path__)]
)
TRAINING = sorted(f"vision.training.{m.name}" for m in pkgutil.iter_modules(vision.training.__path__))
SERVING = ["serving.app", "serving.engine", "serving.batch.pipeline"]

LOADED_AFTER_IMPORT = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


def loaded_after_import(module: str) -> set[str]:
    """The names in sys.modules after a fresh interpreter imports `module` and nothing else."""
    result = subprocess.run(
        [sys.executable, "-c", LOADED_AFTER_IMPORT, module], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_the_runtime_side_is_what_the_split_says():
    assert {"vision.preprocess", "vision.onnx_model", "vision.predict", "vision.metadata"} <= set(RUNTIME)
    assert {"vision.training.train", "vision.training.export", "vision.training.models"} <= set(TRAINING)


@pytest.mark.parametrize("module", RUNTIME + SERVING)
def test_the_runtime_imports_no_torch(module):
    loaded = loaded_after_import(module)
    assert not {name for name in loaded if name.partition(".")[0] in TORCH}, f"{module} imports torch"
    assert not {name for name in loaded if name.startswith("vision.training")}, f"{module} imports vision.training"


def module_level_imports(path: Path) -> set[str]:
    """The vision modules a file imports when it is loaded (not in functions, not under TYPE_CHECKING)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.partition(".")[0] == "vision"}


def test_no_import_cycle_among_vision_modules():
    graph = {}
    for module in RUNTIME + TRAINING:
        path = REPO.joinpath(*module.split(".")).with_suffix(".py")
        graph[module] = {name for name in module_level_imports(path) if name in RUNTIME + TRAINING}
    done: set[str] = set()

    def visit(module: str, stack: tuple[str, ...]) -> None:
        assert module not in stack, f"import cycle: {' -> '.join((*stack[stack.index(module) :], module))}"
        if module not in done:
            for name in graph[module]:
                visit(name, (*stack, module))
            done.add(module)

    for module in graph:
        visit(module, ())
