"""The one config loader: every config kind fails the same way, in one line naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from annotation.config_loader import (
    StrictModel,
    apply_overrides,
    builtin_configs,
    load_config,
    parse_overrides,
    read_yaml,
    resolve_config,
)
from annotation.errors import LineInspectError
from serving.settings import load_settings
from vision.ocr.config import LabelTemplate, load_gauge, load_template
from vision.recipe import Recipe, load_recipe

# kind -> (loader, a key the model lacks, a value of the wrong type, the key that value is under)
KINDS = {
    "recipe": (load_recipe, "train:\n  epochz: 3\n", "train:\n  epochs: many\n", "train.epochs"),
    "settings": (load_settings, "engine:\n  typo: 1\n", "server:\n  port: high\n", "server.port"),
    "template": (load_template, "colour: red\n", "text_height: tall\n", "text_height"),
    "gauge": (load_gauge, "kind: digital\ncolour: red\n", "kind: digital\ndecimals: some\n", "digital.decimals"),
}


def one_line_error(load, *args) -> str:
    with pytest.raises(LineInspectError) as caught:
        load(*args)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize("kind", KINDS)
def test_a_missing_file_is_one_line_naming_it(kind, tmp_path):
    load = KINDS[kind][0]
    missing = tmp_path / "missing.yaml"
    assert one_line_error(load, missing).endswith(f"file not found: {missing}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("train: [unclosed\n", r"is not valid YAML: line 2, column 1: expected ',' or ']'"),
        ("a: 1\n  b: 2\n", "is not valid YAML: line 2, column 4: mapping values are not allowed here"),
        ("- a\n- b\n", "the top level must be a mapping of keys, not a list"),
        ("just words\n", "the top level must be a mapping of keys, not a str"),
    ],
)
def test_unreadable_yaml_is_one_line_naming_the_file(kind, text, expected, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    message = one_line_error(KINDS[kind][0], path)
    assert message.startswith(str(path)) and expected in message


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_keys_are_refused_by_name(kind, tmp_path):
    path = tmp_path / "bad.yaml"
    load, unknown, _, _ = KINDS[kind]
    path.write_text(unknown)
    key = unknown.rstrip().splitlines()[-1].strip().split(":")[0]
    message = one_line_error(load, path)
    assert message.startswith(f"{path}: ") and f"{key}: Extra inputs are not permitted" in message


@pytest.mark.parametrize("kind", KINDS)
def test_a_wrong_type_names_the_file_and_the_key(kind, tmp_path):
    path = tmp_path / "bad.yaml"
    load, _, wrong, key = KINDS[kind]
    path.write_text(wrong)
    assert one_line_error(load, path).startswith(f"{path}: {key}: Input should be a valid")


@pytest.mark.parametrize(
    ("load", "overrides", "expected"),
    [
        (load_recipe, {"train.epochs.x": 1}, "--set train.epochs.x: train.epochs is a value, not a section with keys"),
        (load_recipe, {"augment.0.p": 1}, "--set augment.0.p: augment is a list, not a section with keys"),
        (load_recipe, {"train.epochz": 3}, "train.epochz: Extra inputs are not permitted"),
        (load_recipe, {"train.epochs": "x"}, "train.epochs: Input should be a valid integer"),
        (load_settings, {"engine.max_wait_ms": 2, "engine.max_wait_ms.x": 1}, "engine.max_wait_ms is a value"),
        (load_settings, {"engine.typo": 1}, "settings: engine.typo: Extra inputs are not permitted"),
        (load_settings, {"server.port": "high"}, "settings: server.port: Input should be a valid integer"),
        (load_settings, {"train..epochs": 1}, "--set train..epochs: empty key between dots"),
    ],
)
def test_override_mistakes_are_one_line_naming_the_key(load, overrides, expected):
    assert expected in one_line_error(load, None, overrides)


def test_ocr_configs_take_overrides_through_the_same_loader(tmp_path):
    path = resolve_config("default", builtin_configs() / "ocr" / "labels", "label template")
    template = load_config(LabelTemplate, path, {"text_height": 40}, defaults={"name": path.stem})
    assert template.name == "default" and template.text_height == 40
    message = one_line_error(load_config, LabelTemplate, path, {"fields.lot.pattern.x": 1})
    assert message == "--set fields.lot.pattern.x: fields.lot.pattern is a value, not a section with keys"


def test_overrides_make_missing_sections_fill_empty_ones_and_copy_values():
    value = {"b": 1}
    raw = apply_overrides({"empty": None}, {"new.sub.key": 1, "empty.key": 2, "copied": value, "copied.c": 3})
    assert raw == {"new": {"sub": {"key": 1}}, "empty": {"key": 2}, "copied": {"b": 1, "c": 3}}
    assert value == {"b": 1}


def test_set_entries_are_parsed_as_yaml_values():
    assert parse_overrides(["train.epochs=5", "input.mean=[0, 0, 0]", " a.b =x=y"]) == {
        "train.epochs": 5,
        "input.mean": [0, 0, 0],
        "a.b": "x=y",
    }
    for bad in ("train.epochs", "=5", "a=[unclosed"):
        assert "\n" not in one_line_error(parse_overrides, [bad])


def test_an_empty_file_is_an_empty_mapping_and_a_folder_is_not_a_file(tmp_path):
    (tmp_path / "empty.yaml").write_text("# nothing set\n")
    assert read_yaml(tmp_path / "empty.yaml") == {}
    assert load_recipe(tmp_path / "empty.yaml") == Recipe()
    (tmp_path / "dir.yaml").mkdir()
    assert one_line_error(read_yaml, tmp_path / "dir.yaml", "recipe") == f"recipe file not found: {tmp_path}/dir.yaml"
    (tmp_path / "latin1.yaml").write_bytes(b"name: caf\xe9\n")
    assert one_line_error(read_yaml, tmp_path / "latin1.yaml").endswith("is not valid YAML: not UTF-8 text")


def test_strict_models_refuse_extra_keys():
    class Section(StrictModel):
        size: int = 1

    assert one_line_error(load_config, Section, None, {"sise": 2}) == "config: sise: Extra inputs are not permitted"


def test_a_user_file_wins_over_a_built_in_of_the_same_name(tmp_path, monkeypatch):
    folder = builtin_configs() / "train"
    assert resolve_config("demo", folder, "training recipe") == folder / "demo.yaml"
    monkeypatch.chdir(tmp_path)
    Path("demo").write_text("train: {epochs: 2}\n")
    assert resolve_config("demo", folder, "training recipe") == Path("demo")
    assert load_recipe(Path("demo")).train.epochs == 2
    message = one_line_error(resolve_config, "nope", folder, "training recipe")
    assert message == f"no training recipe named 'nope' in {folder} (known: default, demo); or give a YAML path"


def test_built_in_configs_are_the_repository_s_in_a_checkout():
    root = builtin_configs()
    assert root == Path(__file__).resolve().parents[2] / "configs"
    assert {p.name for p in root.iterdir()} >= {"train", "ocr", "serve.yaml"}
