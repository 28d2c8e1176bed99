import pytest

from annotation.errors import LineInspectError
from tests.serving.conftest import cli
from vision.recipe import DEFAULT_RECIPE, load_recipe
from vision.training.augment import build_augmentations


def test_default_recipe_loads_and_builds_its_augmentations():
    recipe = load_recipe()
    assert recipe.model.architecture == "efficientnet_lite0" and recipe.model.pretrained == "auto"
    assert len(build_augmentations(recipe.augment).transforms) == len(recipe.augment)


def test_dotted_overrides_replace_recipe_values():
    recipe = load_recipe(DEFAULT_RECIPE, {"train.epochs": 3, "input.height": 64})
    assert recipe.train.epochs == 3 and recipe.input.height == 64


def test_unknown_key_is_named_in_the_error(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("train:\n  epochz: 3\n")
    with pytest.raises(LineInspectError, match=r"train\.epochz"):
        load_recipe(bad)


def test_out_of_range_value_is_named_in_the_error(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("data:\n  val_fraction: 0.9\n")
    with pytest.raises(LineInspectError, match=r"data\.val_fraction"):
        load_recipe(bad)


def test_invalid_yaml_and_missing_file_are_user_errors(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(LineInspectError, match="not valid YAML"):
        load_recipe(bad)
    with pytest.raises(LineInspectError, match="not found"):
        load_recipe(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    "entries, message",
    [
        ([{"NoSuchTransform": {}}], "not an albumentations transform"),
        ([{"HorizontalFlip": {"p": 0.5}, "VerticalFlip": {}}], "one-key mapping"),
        ([{"OneOf": {"p": 0.5}}], "transforms"),
        ([{"OneOf": {"transforms": [{"Nope": {}}]}}], r"augment\[0\]\.OneOf\.transforms\[0\]"),
    ],
)
def test_bad_augmentations_name_where_they_are(entries, message):
    with pytest.raises(LineInspectError, match=message):
        build_augmentations(entries)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"train.finetune.frozen_head": False, "train.finetune.unfreeze_blocks": 0}, "leaves nothing to train"),
        ({"method": "anomaly", "model.pretrained": "none"}, "method: anomaly needs pretrained features"),
        ({"train.finetune.unfreeze_blocks": "some"}, r"train\.finetune\.unfreeze_blocks"),
        ({"method": "svm"}, r"method: Input should be 'classifier' or 'anomaly'"),
    ],
)
def test_contradictory_training_settings_are_refused_with_the_key(overrides, message):
    with pytest.raises(LineInspectError, match=message):
        load_recipe(None, overrides)


def test_an_override_below_a_value_is_a_clear_error():
    with pytest.raises(LineInspectError, match=r"--set train\.epochs\.x: train\.epochs is a value, not a section"):
        load_recipe(None, {"train.epochs.x": 1})


def test_a_built_in_recipe_is_found_by_name_and_a_file_of_that_name_wins(tmp_path, monkeypatch):
    assert load_recipe("demo") == load_recipe(DEFAULT_RECIPE.parent / "demo.yaml")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").write_text("train:\n  epochs: 2\n")
    assert load_recipe("demo").train.epochs == 2
    with pytest.raises(LineInspectError, match=r"no training recipe named 'dmeo' .*\(known: default, demo\)"):
        load_recipe("dmeo")


def test_train_cli_reports_recipe_mistakes_in_one_line(tmp_path):
    for mistake, expected in [
        ("train.epochs.x=1", "error: --set train.epochs.x: train.epochs is a value, not a section with keys\n"),
        ("train.epochz=1", "train.epochz: Extra inputs are not permitted\n"),
    ]:
        result = cli("train", tmp_path / "export.json", "--out", tmp_path / "run", "--set", mistake, check=False)
        assert result.returncode == 2 and result.stderr.endswith(expected), result.stderr
        assert len(result.stderr.splitlines()) == 1
