from pathlib import Path

from annotation.manifest import ManifestItem
from vision.splits import split_items, split_warnings


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


def test_split_warnings_name_each_split_too_small_and_stay_quiet_when_big_enough():
    small = split_items(_items(40, 40), 0.15, 0.15, seed=0)  # 6 of each in val, 6 defects in holdout
    said = split_warnings(small, "classifier", 0.15, 0.15, holdout_defects_needed=59)
    assert len(said) == 3 and "6 normal images" in said[0] and "6 defect images" in said[1]
    assert "about 134 labelled normal images" in said[0] and "it needs 59" in said[2]
    big = split_items(_items(400, 400), 0.15, 0.15, seed=0)  # 60 of each
    assert split_warnings(big, "classifier", 0.15, 0.15, holdout_defects_needed=59) == []
    assert split_warnings(small, "classifier", 0.15, 0.15, holdout_defects_needed=None)[2:] == []
    # anomaly: good parts in validation matter; a holdout without defects uses the false-reject rule, no warning
    goods_only = split_items(_items(40, 0), 0.15, 0.15, seed=0)
    assert [w.split(":")[0] for w in split_warnings(goods_only, "anomaly", 0.15, 0.15, 59)] == [
        "the validation split holds 6 normal images"
    ]
