"""Service settings: the shipped YAML documents the defaults, and mistakes name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from annotation.errors import LineInspectError
from serving.settings import ServeSettings, load_settings
from tests.serving.conftest import cli

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "serve.yaml"


def test_shipped_config_is_the_defaults():
    assert load_settings(SHIPPED) == ServeSettings()


def test_overrides_apply_dotted_keys():
    settings = load_settings(SHIPPED, {"engine.max_wait_ms": 2, "records.keep_images.band": 0.1})
    assert settings.engine.max_wait_ms == 2 and settings.records.keep_images.band == 0.1


@pytest.mark.parametrize(
    ("overrides", "named"),
    [({"engine.max_batch_size": 0}, "engine.max_batch_size"), ({"auth.mode": "off"}, "auth.mode"),
     ({"limits.max_body_mb": "big"}, "limits.max_body_mb"), ({"engine.typo": 1}, "engine.typo")],
)  # fmt: skip
def test_errors_name_the_key(overrides, named):
    with pytest.raises(LineInspectError, match=named):
        load_settings(SHIPPED, overrides)


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(LineInspectError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml")


def test_model_folder_defaults_to_the_model_s_folder(tmp_path):
    settings = ServeSettings(model=tmp_path / "models" / "m.onnx")
    assert settings.allowed_model_dirs == [(tmp_path / "models").resolve()]
    assert settings.resolved_database_url.endswith("lineinspect.db")


def test_serve_cli_errors_are_one_line(tmp_path):
    missing = cli("serve", "--model", tmp_path / "missing.onnx", check=False)
    assert missing.returncode == 2 and "model file not found" in missing.stderr
    bad_key = cli("serve", "--model", tmp_path / "m.onnx", "--set", "engine.max_batch_size=0", check=False)
    assert bad_key.returncode == 2 and "engine.max_batch_size" in bad_key.stderr
    assert "Traceback" not in missing.stderr + bad_key.stderr


def test_file_and_override_mistakes_are_one_line(tmp_path):
    bad = tmp_path / "serve.yaml"
    bad.write_text("engine:\n  max_batch_size: [1\n")
    with pytest.raises(LineInspectError) as unreadable:
        load_settings(bad)
    assert str(unreadable.value).startswith(f"{bad} is not valid YAML: line 3, column 1:")
    with pytest.raises(LineInspectError) as below_a_value:
        load_settings(SHIPPED, {"engine.max_batch_size.x": 1})
    assert (
        str(below_a_value.value)
        == "--set engine.max_batch_size.x: engine.max_batch_size is a value, not a section with keys"
    )
    with pytest.raises(LineInspectError) as wrong_type:
        load_settings(None, {"server.port": "high"})
    assert str(wrong_type.value).startswith("settings: server.port: Input should be a valid integer")
