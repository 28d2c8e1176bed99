"""`input.shape: data`: the recipe's height x width is a pixel budget shaped to the training images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from annotation.manifest import ManifestItem
from vision.recipe import load_recipe
from vision.training.input_shape import fit_input_shape, scale_for_anomaly


def _items(folder: Path, height: int, width: int, n: int = 5) -> list[ManifestItem]:
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(n):
        path = folder / f"{i}.png"
        cv2.imwrite(str(path), np.full((height, width, 3), 40 * i, np.uint8))
        items.append(ManifestItem(path, "normal", i, path.name, f"{i}"))
    return items


def test_tall_strips_get_the_pixel_budget_in_their_own_shape(tmp_path):
    recipe = load_recipe()  # 320x320, shape: data
    fitted, said = fit_input_shape(recipe, _items(tmp_path, 1250, 500))
    assert (fitted.input.height, fitted.input.width, fitted.input.shape) == (512, 192, "fixed")
    assert said.startswith("input 512x192: the training images are 2.50 times as high as wide")
    assert recipe.input.height == 320  # the recipe given is not changed
    wide, _ = fit_input_shape(recipe, _items(tmp_path / "wide", 300, 1200))
    assert (wide.input.height, wide.input.width) == (160, 640)
    assert fitted.input.spec().height == 512 and wide.input.spec().width == 640  # what preprocessing will use


def test_square_enough_or_mixed_images_a_fixed_shape_and_quarter_turns_keep_the_recipe_s(tmp_path):
    recipe = load_recipe()
    assert fit_input_shape(recipe, _items(tmp_path / "near", 330, 310)) == (recipe, None)  # within 10%
    fixed = load_recipe(None, {"input.shape": "fixed"})
    assert fit_input_shape(fixed, _items(tmp_path / "tall", 1250, 500)) == (fixed, None)
    mixed = _items(tmp_path / "portrait", 1250, 500) + _items(tmp_path / "landscape", 500, 1250)
    kept, said = fit_input_shape(recipe, mixed)  # one part photographed both ways: no one shape fits
    assert kept is recipe and "shapes differ too much for one (height/width from 0.40 to 2.50" in said
    turned = load_recipe(None, {"augment": [{"OneOf": {"transforms": [{"RandomRotate90": {}}], "p": 0.5}}]})
    kept, said = fit_input_shape(turned, _items(tmp_path / "tall", 1250, 500))
    assert kept is turned and "quarter turns, which needs a square" in said


def test_an_anomaly_model_reads_the_budget_scaled_and_a_fixed_input_as_it_is(tmp_path):
    anomaly = load_recipe(None, {"method": "anomaly"})  # 320x320, anomaly.input_scale 1.6
    scaled, said = scale_for_anomaly(anomaly)
    assert (scaled.input.height, scaled.input.width) == (512, 512) and "512x512" in said
    assert anomaly.input.height == 320  # the recipe given is not changed
    assert scale_for_anomaly(scaled) == (scaled, None)  # the run's recipe, trained again, keeps its size
    strips, _ = fit_input_shape(scaled, _items(tmp_path, 1250, 500))  # the scaled budget, shaped to the images
    assert (strips.input.height, strips.input.width) == (800, 320)
    for unscaled in (load_recipe(), load_recipe(None, {"method": "anomaly", "input.shape": "fixed"}),
                     load_recipe(None, {"method": "anomaly", "anomaly.input_scale": 1})):  # fmt: skip
        assert scale_for_anomaly(unscaled) == (unscaled, None)
