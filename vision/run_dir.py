"""What a training run leaves in its folder, read back by export and resume."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from annotation.errors import LineInspectError
from annotation.manifest import Manifest
from vision.recipe import Recipe
from vision.splits import SPLITS


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def recipe(self) -> Path:
        return self.root / "recipe.yaml"

    @property
    def split(self) -> Path:
        return self.root / "split.json"

    @property
    def problems(self) -> Path:
        return self.root / "import_problems.json"

    @property
    def history(self) -> Path:
        return self.root / "history.json"

    @property
    def last(self) -> Path:
        return self.root / "last.pt"

    @property
    def best(self) -> Path:
        return self.root / "best.pt"

    def write_plan(self, recipe: Recipe, manifest: Manifest, splits: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.recipe.write_text(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
        plan = {
            "classes": manifest.classes,
            "sources": manifest.sources,
            "fingerprint": manifest.fingerprint(),
            "items": [
                {"path": str(i.path), "label": i.label, "sha256": i.sha256, "split": name, "task_id": i.task_id}
                for name in SPLITS
                for i in splits[name]
            ],
        }
        self.split.write_text(json.dumps(plan, indent=1), encoding="utf-8")
        self.problems.write_text(json.dumps(manifest.to_json()["problems"], indent=1), encoding="utf-8")

    def read_plan(self) -> dict:
        if not self.split.is_file():
            raise LineInspectError(f"{self.root} is not a training run folder (no split.json): run `lineinspect train`")
        return json.loads(self.split.read_text(encoding="utf-8"))

    def read_recipe(self) -> Recipe:
        from vision.recipe import load_recipe

        return load_recipe(self.recipe)
