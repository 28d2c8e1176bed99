"""Training augmentations, written in the recipe as albumentations transforms.

Each entry is `{TransformName: {param: value}}`; composite transforms (OneOf,
SomeOf, Sequential) take a `transforms:` list of the same form. Augmentation is
training-only: it runs on the model-sized uint8 image, before `to_input`.
"""

from __future__ import annotations

from typing import Any

import albumentations as A

from annotation.errors import LineInspectError

_COMPOSITES = {"OneOf", "SomeOf", "Sequential"}
# albumentations transforms that show a part flipped or turned by quarter turns: (flip left-right, quarter turns)
VIEWS = {
    "HorizontalFlip": [(True, 0)],
    "VerticalFlip": [(True, 2)],
    "RandomRotate90": [(False, 1)],
    "Transpose": [(True, 1)],
    "D4": [(True, 0), (False, 1)],
    "SquareSymmetry": [(True, 0), (False, 1)],
}


def build_augmentations(entries: list[dict[str, Any]]) -> A.Compose:
    return A.Compose([_build(entry, f"augment[{i}]") for i, entry in enumerate(entries)])


def _build(entry: Any, where: str) -> A.BasicTransform:
    if not isinstance(entry, dict) or len(entry) != 1:
        raise LineInspectError(f"{where}: each augmentation is a one-key mapping like {{HorizontalFlip: {{p: 0.5}}}}")
    ((name, params),) = entry.items()
    params = dict(params or {})
    cls = getattr(A, name, None)
    if not (isinstance(cls, type) and issubclass(cls, A.BasicTransform | A.BaseCompose)):
        raise LineInspectError(f"{where}: {name!r} is not an albumentations transform")
    if name in _COMPOSITES:
        children = params.pop("transforms", None)
        if not isinstance(children, list):
            raise LineInspectError(f"{where}.{name}: needs a `transforms:` list")
        params["transforms"] = [_build(child, f"{where}.{name}.transforms[{j}]") for j, child in enumerate(children)]
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise LineInspectError(f"{where}.{name}: {exc}") from None


def turns_quarter(entries: list[dict[str, Any]]) -> bool:
    """Whether any entry, composites included, may turn an image by a quarter turn (swapping height and width)."""
    for entry in entries:
        for name, params in entry.items():
            turns = any(quarter % 2 for _, quarter in VIEWS.get(name, []))
            if turns or turns_quarter((params or {}).get("transforms", [])):
                return True
    return False
