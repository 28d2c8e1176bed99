import json
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import cv2
import numpy as np
import pytest

from annotation.errors import LineInspectError
from vision.sample_data import (
    DEFECT_KINDS,
    MIN_VISIBILITY,
    SampleDataset,
    generate,
    render_defect,
    render_surface,
    visibility,
)

SIZE = (96, 128)  # (height, width): not square, so a swapped axis shows


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> SampleDataset:
    return generate(tmp_path_factory.mktemp("sample"), n_normal=6, n_defect=8, size=SIZE, seed=3)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_the_same_bytes_and_another_seed_different_images(tmp_path: Path):
    first = _files(generate(tmp_path / "a", 3, 3, size=SIZE, seed=7).root)
    again = _files(generate(tmp_path / "b", 3, 3, size=SIZE, seed=7).root)
    other = _files(generate(tmp_path / "c", 3, 3, size=SIZE, seed=8).root)
    assert first == again
    images = [name for name in first if name.endswith(".jpg")]
    assert len(images) == 6 and all(first[name] != other[name] for name in images)


def test_writes_the_asked_counts_of_colour_jpegs_of_the_asked_size(dataset: SampleDataset):
    normals = sorted(p.name for p in (dataset.root / "images" / "normal").iterdir())
    defects = sorted(p.name for p in (dataset.root / "images" / "defect").iterdir())
    assert normals == [f"normal_{i:04d}.jpg" for i in range(6)]
    assert defects == [f"defect_{i:04d}.jpg" for i in range(8)]
    assert len(dataset.images) == 14 and (dataset.root / "README.txt").read_text().strip()
    for sample in dataset.images:
        data = sample.path.read_bytes()
        assert data[:2] == b"\xff\xd8"  # JPEG
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED).shape == (*SIZE, 3)


def test_export_is_label_studio_json_whose_references_resolve_to_the_images(dataset: SampleDataset):
    tasks = json.loads(dataset.export.read_text())
    assert isinstance(tasks, list) and [t["id"] for t in tasks] == list(range(1, 15))
    for t, sample in zip(tasks, dataset.images, strict=True):
        url = urlparse(t["data"]["image"])
        assert url.path == "/data/local-files/"
        assert dataset.root / parse_qs(url.query)["d"][0] == sample.path and sample.path.is_file()
        [result] = t["annotations"][0]["result"]
        assert (result["from_name"], result["to_name"], result["type"]) == ("label", "image", "choices")
        assert result["value"]["choices"] == [sample.label] == [sample.path.parent.name]


def test_export_meta_lists_defect_boxes_for_defects_only(dataset: SampleDataset):
    height, width = SIZE
    for t, sample in zip(json.loads(dataset.export.read_text()), dataset.images, strict=True):
        if sample.label == "normal":
            assert "defects" not in t["meta"] and sample.defects == ()
            continue
        listed = t["meta"]["defects"]
        assert 1 <= len(listed) <= 3
        assert listed == [{"kind": d.kind, "box": list(d.box)} for d in sample.defects]
        for d in listed:
            x0, y0, x1, y1 = d["box"]
            assert d["kind"] in DEFECT_KINDS and 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


def test_export_order_is_shuffled_not_grouped_by_class(dataset: SampleDataset):
    labels = [s.label for s in dataset.images]
    assert labels != sorted(labels) and labels != sorted(labels, reverse=True)


@pytest.mark.parametrize("kind", DEFECT_KINDS)
def test_each_defect_kind_changes_pixels_inside_its_box(kind: str):
    for seed in range(8):
        rng = np.random.default_rng(seed)
        surface, _ = render_surface(rng, SIZE)
        image = surface.copy()
        defect = render_defect(image, rng, kind)
        diff = np.abs(image.astype(np.float32) - surface).mean(axis=2)
        x0, y0, x1, y1 = defect.box
        inside = np.zeros(diff.shape, bool)
        inside[y0:y1, x0:x1] = True
        assert defect.kind == kind
        assert diff[inside].mean() > 0.3, (seed, defect)
        assert diff[inside].mean() > 20 * diff[~inside].mean(), (seed, defect)


@pytest.mark.parametrize("kind", DEFECT_KINDS)
def test_every_defect_drawn_stands_out_from_its_surface_enough_to_be_seen(kind: str):
    for seed in range(12):
        rng = np.random.default_rng([seed, 99])
        surface, _ = render_surface(rng, SIZE)
        image = surface.copy()
        x0, y0, x1, y1 = render_defect(image, rng, kind).box
        window = (slice(max(0, y0 - 4), y1 + 4), slice(max(0, x0 - 4), x1 + 4))
        assert visibility(surface, image[window], window) >= MIN_VISIBILITY, (seed, kind)


def test_visibility_tells_a_change_nobody_sees_from_a_scratch_anybody_sees():
    surface, _ = render_surface(np.random.default_rng(5), SIZE, "cast")
    window = (slice(40, 80), slice(40, 80))
    faint = surface[window].astype(np.int16)
    faint[10:30, 10:30] += 2  # two grey levels on a grainy casting
    assert visibility(surface, np.clip(faint, 0, 255).astype(np.uint8), window) < MIN_VISIBILITY
    scratch = surface[window].copy()
    cv2.line(scratch, (5, 5), (35, 30), (20, 20, 20), 1)
    assert visibility(surface, scratch, window) > MIN_VISIBILITY


def test_normal_images_are_textured_and_vary_in_texture_and_brightness(tmp_path: Path):
    dataset = generate(tmp_path, n_normal=16, n_defect=0, size=SIZE, seed=1)
    grey = [cv2.imread(str(s.path), cv2.IMREAD_GRAYSCALE).astype(np.float32) for s in dataset.images]
    fine_detail = [np.std(g - cv2.GaussianBlur(g, (0, 0), 3)) for g in grey]
    assert min(np.std(g) for g in grey) > 3 and min(fine_detail) > 0.5
    assert np.std([g.mean() for g in grey]) > 15 and np.std([g.std() for g in grey]) > 2
    assert len({s.texture for s in dataset.images}) >= 3


def test_too_small_an_image_size_is_refused_with_a_clear_error(tmp_path: Path):
    with pytest.raises(LineInspectError, match="too small"):
        generate(tmp_path, 1, 1, size=(32, 32))


def test_small_images_always_get_their_defects(tmp_path):
    data = generate(tmp_path, n_normal=0, n_defect=150, size=(96, 96), seed=0)
    assert all(1 <= len(image.defects) <= 3 for image in data.images)


def test_textures_choose_the_surfaces_and_unknown_ones_are_refused(tmp_path: Path):
    data = generate(tmp_path / "one", 4, 4, size=SIZE, seed=2, textures=["knurled"])
    assert {sample.texture for sample in data.images} == {"knurled"}
    assert "knurled" in (data.root / "README.txt").read_text()
    with pytest.raises(LineInspectError, match="unknown sample textures.*glass"):
        generate(tmp_path / "bad", 1, 1, size=SIZE, textures=["glass"])
