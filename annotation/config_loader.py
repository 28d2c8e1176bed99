"""The one way a YAML config is read: file -> dotted overrides -> strict validation, every error one line.

Used for the training recipe (vision/recipe.py), the service settings (serving/settings.py) and the
OCR label templates and gauges (vision/ocr/config.py). Errors are `LineInspectError`s that name the
file and the key, so the CLI prints one line and no traceback.

The built-in configs are the repository's top-level `configs/` folder, shipped inside the wheel as
the package `lineinspect_configs` (setup.py); `builtin_configs()` finds them either way.
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from annotation.errors import LineInspectError

CONFIGS_PACKAGE = "lineinspect_configs"  # the wheel's name for configs/ (setup.py maps it)
_CHECKOUT = Path(__file__).resolve().parents[1]

T = TypeVar("T")


class StrictModel(BaseModel):
    """A config section: unknown keys are refused, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


@cache
def builtin_configs() -> Path:
    """The folder of built-in configs (train/, ocr/labels/, ocr/gauges/, serve.yaml).

    In a source checkout (editable install, or tests run from the repository) that is the
    repository's `configs/`; in an installed wheel, the `lineinspect_configs` package inside it.
    """
    checkout = _CHECKOUT / "configs"
    if checkout.is_dir() and (_CHECKOUT / "pyproject.toml").is_file():
        return checkout
    spec = importlib.util.find_spec(CONFIGS_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return checkout  # neither: loads then say which file is missing


def resolve_config(name_or_path: str | Path, folder: Path, what: str) -> Path:
    """A user's file wins: a path ending in .yaml/.yml, or any name that exists, is taken as given;
    otherwise the name is looked up as `folder/NAME.yaml` among the built-in (or configured) ones."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise LineInspectError(f"{what} file not found: {path}")
        return path
    candidate = folder / f"{name_or_path}.yaml"
    if not candidate.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml"))) or "none"
        raise LineInspectError(f"no {what} named {name_or_path!r} in {folder} (known: {known}); or give a YAML path")
    return candidate


def read_yaml(path: str | Path, what: str = "config") -> dict[str, Any]:
    """A YAML file's top-level mapping (an empty file is an empty one)."""
    path = Path(path)
    if not path.is_file():
        raise LineInspectError(f"{what} file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise LineInspectError(f"{path} is not valid YAML: not UTF-8 text") from None
    except OSError as exc:
        raise LineInspectError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LineInspectError(f"{path} is not valid YAML: {_yaml_problem(exc)}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise LineInspectError(f"{path}: the top level must be a mapping of keys, not a {type(raw).__name__}")
    return raw


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return " ".join(str(exc).split())


def parse_overrides(entries: Iterable[str]) -> dict[str, Any]:
    """`--set key=value` entries as dotted keys and YAML values: ["train.epochs=5"] -> {"train.epochs": 5}."""
    overrides: dict[str, Any] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise LineInspectError(f"--set {entry!r}: write it as key=value, e.g. train.epochs=5")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise LineInspectError(f"--set {entry!r}: the value is not valid YAML: {_yaml_problem(exc)}") from None
    return overrides


def apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Set each dotted key ("a.b.c") in `raw`, making missing sections; returns `raw`.

    Going below a value (a.b.c where a.b is 3) is an error naming the key; a key the model does
    not know is left for validation to refuse, with its full dotted name.
    """
    for dotted, value in (overrides or {}).items():
        *parents, leaf = keys = str(dotted).split(".")
        if not all(keys):
            raise LineInspectError(f"--set {dotted}: empty key between dots; write it as section.key=value")
        node = raw
        for depth, key in enumerate(parents, start=1):
            if node.get(key) is None:  # missing, or an empty section in the file
                node[key] = {}
            node = node[key]
            if not isinstance(node, dict):
                where = ".".join(parents[:depth])
                kind = "a list" if isinstance(node, list) else "a value"
                raise LineInspectError(f"--set {dotted}: {where} is {kind}, not a section with keys")
        node[leaf] = copy.deepcopy(value)
    return raw


def validation_message(source: str | Path, exc: ValidationError) -> str:
    """One line: "source: key.sub: what is wrong; other.key: ..."."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {' '.join(str(err['msg']).split())}"
        for err in exc.errors()
    )
    return f"{source}: {problems}"


def validate(schema: type[T] | TypeAdapter[T] | Any, raw: Any, source: str | Path) -> T:
    """`raw` validated into `schema` (a pydantic model, a TypeAdapter, or a type such as a union)."""
    try:
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            return schema.model_validate(raw)
        adapter = schema if isinstance(schema, TypeAdapter) else TypeAdapter(schema)
        return adapter.validate_python(raw)
    except ValidationError as exc:
        raise LineInspectError(validation_message(source, exc)) from None


def load_config(
    schema: type[T] | TypeAdapter[T] | Any,
    path: str | Path | None,
    overrides: Mapping[str, Any] | None = None,
    *,
    what: str = "config",
    source: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> T:
    """Read `path` (None: no file, only defaults and overrides), fill top-level `defaults` the file
    leaves out, apply the dotted `overrides` and validate; errors name `source` (default: the path)."""
    raw = read_yaml(path, what) if path is not None else {}
    for key, value in (defaults or {}).items():
        raw.setdefault(key, value)
    apply_overrides(raw, overrides)
    return validate(schema, raw, source or (str(path) if path is not None else what))
