from pathlib import Path

from annotation.manifest import ManifestItem
from vision.splits import split_items


def _items(n_normal: int, n_defect: int, duplicates: int = 0) -> list[ManifestItem]:
    items = []
    for label, n in (("normal", n_normal), ("defect", n_defect)):
        for i in range(n):
            sha = f"{label}-{i}"
            items.append(ManifestItem(Path(f"/{label}/{i}.jpg"), label, i, f"{label}/{i}.jpg", sha))
            if i < duplicates:  # the same content under a second name
                items.append(ManifestItem(Path(f"/{label}/{i}-copy.jpg"), label, i, f"{label}/{i}-copy.jpg", sha))
    return items


def test_splits_are_stratified_by_class():
    splits = split_items(_items(200, 100), val_fraction=0.15, holdout_fraction=0.15, seed=0)
    for name, (normal, defect) in {"val": (30, 15), "holdout": (30, 15), "train": (140, 70)}.items():
        assert sum(i.label == "normal" for i in splits[name]) == normal
        assert sum(i.label == "defect" for i in splits[name]) == defect


def test_content_duplicates_stay_on_one_side():
    splits = split_items(_items(50, 50, duplicates=50), 0.2, 0.2, seed=1)
    side = {}
    for name, items in splits.items():
        for item in items:
            assert side.setdefault(item.sha256, name) == name


def test_same_seed_same_split_other_seed_other_split():
    items = _items(60, 60)
    a, b, c = (split_items(items, 0.15, 0.15, seed) for seed in (0, 0, 1))
    assert a == b
    assert a["holdout"] != c["holdout"]


def test_every_item_is_assigned_exactly_once():
    items = _items(37, 11, duplicates=5)
    splits = split_items(items, 0.15, 0.15, seed=0)
    assert sorted(map(str, (i.path for s in splits.values() for i in s))) == sorted(str(i.path) for i in items)
