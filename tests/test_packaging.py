"""The wheel carries the built-in configs, and an installed copy finds them without the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "annotation", "vision", "serving", "configs")

# Run from the unzipped wheel only: everything it lists must come from there, not from the repository.
FIND_BUILT_INS = """
import json, sys
from annotation.config_loader import builtin_configs
from serving.demo import DEMO_RECIPE
from vision.ocr.config import GAUGES_DIR, LABELS_DIR, load_gauge, load_template
from vision.recipe import DEFAULT_RECIPE, RECIPES_DIR, load_recipe
import annotation, vision
print(json.dumps({
    "root": str(builtin_configs()),
    "modules": [annotation.__file__, vision.__file__],
    "recipes": sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")),
    "templates": sorted(load_template(p.stem).name for p in LABELS_DIR.glob("*.yaml")),
    "gauges": sorted(load_gauge(p.stem).name for p in GAUGES_DIR.glob("*.yaml")),
    "default_epochs": load_recipe(None).train.epochs,
    "demo_epochs": load_recipe(DEMO_RECIPE).train.epochs,
    "by_name": load_recipe("demo") == load_recipe(DEMO_RECIPE),
    "default": str(DEFAULT_RECIPE),
}))
"""


def build_wheel(tmp_path: Path) -> Path:
    """The wheel of a clean copy of the sources (no build/ or egg-info of the working tree in it), offline."""
    source = tmp_path / "source"
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    subprocess.run([*command, str(source), "-w", str(tmp_path / "dist")], check=True, capture_output=True, timeout=120)
    (wheel,) = (tmp_path / "dist").glob("lineinspect-*.whl")
    return wheel


def test_the_wheel_ships_every_config_and_an_installed_copy_finds_them(tmp_path):
    wheel = build_wheel(tmp_path)
    shipped, source = set(zipfile.ZipFile(wheel).namelist()), tmp_path / "source"
    configs = {p.relative_to(source / "configs").as_posix() for p in (source / "configs").rglob("*.yaml")}
    assert {"train/default.yaml", "train/demo.yaml", "serve.yaml"} <= configs
    assert {f"lineinspect_configs/{name}" for name in configs} <= shipped
    modules = {
        p.relative_to(source).as_posix()
        for top in ("annotation", "vision", "serving")
        for p in (source / top).rglob("*.py")
    }
    assert modules <= shipped, sorted(modules - shipped)  # setup.py's package list leaves nothing out
    assert {"vision/ocr/models/sevenseg.onnx", "vision/ocr/models/sevenseg-rendered.onnx"} <= shipped

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    found = subprocess.run(
        [sys.executable, "-c", FIND_BUILT_INS], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert found.returncode == 0, found.stderr
    result = json.loads(found.stdout)
    assert result["root"] == str(site / "lineinspect_configs")
    assert all(Path(module).is_relative_to(site) for module in result["modules"]), result["modules"]
    assert result["default"] == str(site / "lineinspect_configs" / "train" / "default.yaml")
    assert result["recipes"] == ["default", "demo"]
    assert result["templates"] == sorted(Path(n).stem for n in configs if n.startswith("ocr/labels/"))
    assert result["gauges"] == sorted(Path(n).stem for n in configs if n.startswith("ocr/gauges/"))
    assert result["by_name"] and result["default_epochs"] != result["demo_epochs"]
