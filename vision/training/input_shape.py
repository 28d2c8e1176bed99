"""The model's input shape from the training images: a pixel budget, not a square.

A 500x1250 strip squeezed into 320x320 loses 60% of its rows, and a thin horizontal crack with them. With
`input.shape: data` the recipe's height x width is the pixel budget, and the shape follows the training images'
median aspect ratio, each side a multiple of 32 (the backbone's largest stride). On KolektorSDD (strips of
aspect 2.5), frozen patch features gave ROC-AUC 0.94 at 320x320 and 1.0 at 512x192 (5-fold, two repeats); square
images keep their square, and so do images of many shapes (portrait and landscape shots of one part).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PIL import Image, UnidentifiedImageError

from annotation.manifest import ManifestItem
from vision.recipe import Recipe
from vision.training.augment import turns_quarter

STEP = 32  # sides are multiples of the backbone's largest stride
SAMPLE = 256  # images whose headers are read: enough for a median
SAME = 1.1  # aspect ratios within 10% of the recipe's keep its shape
SPREAD = 1.5  # images whose aspect ratios differ more than this (10th to 90th percentile) share no one shape


def fit_input_shape(recipe: Recipe, items: Sequence[ManifestItem]) -> tuple[Recipe, str | None]:
    """The recipe with `input.height`/`width` fitted to the images (`input.shape` then `fixed`), and a line saying
    what was chosen and why; the recipe unchanged (and None) when it is fixed or the images fit it already."""
    size = recipe.input
    if size.shape == "fixed" or not items:
        return recipe, None
    ratios = []
    for item in items[:: max(1, len(items) // SAMPLE)]:
        try:
            with Image.open(item.path) as im:
                ratios.append(im.height / im.width)
        except (OSError, UnidentifiedImageError):
            continue  # the loader reports an unreadable image with its path
    if not ratios:
        return recipe, None
    ratios.sort()
    ratio, own = ratios[len(ratios) // 2], size.height / size.width
    low, high = ratios[len(ratios) // 10], ratios[(9 * len(ratios)) // 10]
    if high / low > SPREAD:
        return recipe, (
            f"input stays {size.height}x{size.width}: the training images' shapes differ too much for one "
            f"(height/width from {low:.2f} to {high:.2f}, 10th to 90th percentile)"
        )
    if max(ratio, own) / min(ratio, own) < SAME:
        return recipe, None
    if turns_quarter(recipe.augment):
        return recipe, (
            f"input stays {size.height}x{size.width} although the images are {ratio:.2f} times as high as wide: "
            "the recipe's augmentations turn images by quarter turns, which needs a square"
        )
    budget = size.height * size.width
    height = _side(math.sqrt(budget * ratio))
    width = _side(math.sqrt(budget / ratio))
    shaped = size.model_copy(update={"height": height, "width": width, "shape": "fixed"})
    fitted = recipe.model_copy(update={"input": shaped})
    return fitted, (
        f"input {height}x{width}: the training images are {ratio:.2f} times as high as wide (median), "
        f"shaped within the {size.height}x{size.width} pixel budget (input.shape: fixed keeps the recipe's)"
    )


def scale_for_anomaly(recipe: Recipe) -> tuple[Recipe, str | None]:
    """`method: anomaly` with `input.shape: data`: the pixel budget's sides times `anomaly.input_scale` (the scale
    then 1, so that the run's recipe trains the same size again), and a line saying so; any other recipe unchanged
    (and None)."""
    size, scale = recipe.input, recipe.anomaly.input_scale
    if recipe.method != "anomaly" or size.shape == "fixed" or scale == 1:
        return recipe, None
    scaled = size.model_copy(update={"height": _side(size.height * scale), "width": _side(size.width * scale)})
    applied = recipe.anomaly.model_copy(update={"input_scale": 1.0})
    return recipe.model_copy(update={"input": scaled, "anomaly": applied}), (
        f"anomaly model: pixel budget {scaled.height}x{scaled.width} ({size.height}x{size.width} times "
        f"anomaly.input_scale {scale:g})"
    )


def _side(length: float) -> int:
    return int(min(2048, max(STEP, round(length / STEP) * STEP)))
