"""serving/ has no import cycle, and the service's domain (`serving.service`, `serving.records`) knows nothing of HTTP.

Cycles are found in the source: the imports a module runs when it is loaded, those under `if TYPE_CHECKING:`
included (a cycle there is still two modules that need each other). Imports inside functions are left out: they
are the command line's lazy imports, run once every module is loaded.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import serving
import serving.records

REPO = Path(__file__).resolve().parents[2]
MODULES = {
    info.name: REPO.joinpath(*info.name.split("."), "__init__.py")
    if info.ispkg
    else REPO.joinpath(*info.name.split(".")).with_suffix(".py")
    for info in pkgutil.walk_packages(serving.__path__, "serving.")
    if not info.name.startswith("serving.migrations")  # Alembic's scripts, loaded by Alembic
}
DOMAIN = ["serving.service", *(f"serving.records.{m.name}" for m in pkgutil.iter_modules(serving.records.__path__))]
HTTP = ("fastapi", "starlette", "serving.app", "serving.routes")


def loaded_imports(path: Path) -> set[str]:
    """The modules a file imports when it is loaded, `if` blocks included, functions and classes not."""
    found = set()

    def walk(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.update(f"{node.module}.{alias.name}" for alias in node.names)  # a submodule, or a name in it
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.If):
                walk(node.body)
                walk(node.orelse)
            elif isinstance(node, ast.Try):
                for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                    walk(block)

    walk(ast.parse(path.read_text()).body)
    return found & MODULES.keys()


def test_the_module_list_is_what_the_layout_says():
    assert {"serving.app", "serving.service", "serving.routes.deps", "serving.routes.errors"} <= MODULES.keys()
    assert {"serving.records.database", "serving.records.writer", "serving.records.journal"} <= set(DOMAIN)


def test_no_import_cycle_among_serving_modules():
    graph = {module: loaded_imports(path) - {module} for module, path in MODULES.items()}
    done: set[str] = set()

    def visit(module: str, stack: tuple[str, ...]) -> None:
        assert module not in stack, f"import cycle: {' -> '.join((*stack[stack.index(module) :], module))}"
        if module not in done:
            for name in sorted(graph[module]):
                visit(name, (*stack, module))
            done.add(module)

    for module in sorted(graph):
        visit(module, ())


def test_the_service_and_its_records_load_nothing_of_http():
    """Imported together in a fresh interpreter, so that nothing another test loaded hides an import."""
    script = "import importlib, json, sys\nfor m in sys.argv[1:]: importlib.import_module(m)\n"
    script += "print(json.dumps(list(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script, *DOMAIN], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert not [name for name in loaded if name.startswith(HTTP)]
