"""Image references as Label Studio writes them, resolved against real files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from annotation.references import ReferenceResolver, UnresolvedReference

WriteImage = Callable[[Path, int], Path]


@pytest.mark.parametrize(
    "reference",
    [
        "/data/local-files/?d=inbox/cam%201/x.png",
        "/data/local-files?d=inbox/cam 1/x.png",
        "http://localhost:8080/data/local-files/?d=inbox%2Fcam%201%2Fx.png",
    ],
)
def test_local_files_url_decodes_d_under_images_root(write_image: WriteImage, images: Path, reference: str) -> None:
    target = write_image(images / "inbox" / "cam 1" / "x.png", 1)
    assert ReferenceResolver(images).resolve(reference) == target


@pytest.mark.parametrize(
    ("existing", "expected_rule"),
    [
        (["upload/1/c2c0fb30-a.jpg", "c2c0fb30-a.jpg", "a.jpg"], "upload/1/c2c0fb30-a.jpg"),
        (["c2c0fb30-a.jpg", "a.jpg"], "c2c0fb30-a.jpg"),
        (["a.jpg"], "a.jpg"),
    ],
)
def test_upload_candidates_in_order(
    write_image: WriteImage, images: Path, existing: list[str], expected_rule: str
) -> None:
    for seed, rel in enumerate(existing):
        write_image(images / rel, seed)
    resolver = ReferenceResolver(images)
    assert resolver.resolve("/data/upload/1/c2c0fb30-a.jpg") == images / expected_rule
    assert resolver.resolve("http://ls:8080/data/upload/1/c2c0fb30-a.jpg") == images / expected_rule


def test_upload_name_without_hex_prefix_has_no_stripped_candidate(images: Path) -> None:
    assert ReferenceResolver(images).candidates("/data/upload/3/photo-a.jpg") == [
        images / "upload/3/photo-a.jpg",
        images / "photo-a.jpg",
    ]


def test_relative_path_under_root_and_absolute_path_as_is(
    write_image: WriteImage, images: Path, tmp_path: Path
) -> None:
    inside = write_image(images / "line1" / "a.png", 1)
    outside = write_image(tmp_path / "elsewhere" / "b.png", 2)
    resolver = ReferenceResolver(images)
    assert resolver.resolve("line1/a.png") == inside
    assert resolver.resolve(str(outside)) == outside  # written explicitly in the export: allowed


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_bucket_urls_fall_back_to_bucket_then_key(write_image: WriteImage, images: Path, scheme: str) -> None:
    resolver = ReferenceResolver(images)
    ref = f"{scheme}://bucket/raw/a.png"
    assert resolver.candidates(ref) == [images / "bucket/raw/a.png", images / "raw/a.png"]
    key_only = write_image(images / "raw" / "a.png", 1)
    assert resolver.resolve(ref) == key_only
    with_bucket = write_image(images / "bucket" / "raw" / "a.png", 2)
    assert resolver.resolve(ref) == with_bucket


def test_prefix_map_longest_prefix_wins(write_image: WriteImage, images: Path, tmp_path: Path) -> None:
    raw, defects = tmp_path / "raw", tmp_path / "defects"
    target = write_image(defects / "x.png", 1)
    write_image(raw / "defects" / "x.png", 2)
    resolver = ReferenceResolver(images, {"s3://bucket/raw/": raw, "s3://bucket/raw/defects/": defects})
    assert resolver.resolve("s3://bucket/raw/defects/x.png") == target


def test_http_url_drops_query_and_decodes_key(write_image: WriteImage, images: Path) -> None:
    target = write_image(images / "cdn.example.com" / "img" / "a b.png", 1)
    assert ReferenceResolver(images).resolve("https://cdn.example.com/img/a%20b.png?sig=abc#f") == target


@pytest.mark.parametrize(
    "reference",
    [
        "../secret.png",
        "line1/../../secret.png",
        "/data/local-files/?d=../secret.png",
        "/data/local-files/?d=/etc/passwd",
        "/data/upload/1/..%2F..%2F..%2Fsecret.png",
        "s3://bucket/../../secret.png",
    ],
)
def test_reference_escaping_the_root_is_refused_even_if_the_file_exists(
    write_image: WriteImage, images: Path, tmp_path: Path, reference: str
) -> None:
    write_image(tmp_path / "secret.png", 1)
    with pytest.raises(UnresolvedReference) as info:
        ReferenceResolver(images).resolve(reference)
    assert info.value.kind == "path_escape"
    assert str(images) in info.value.message


def test_prefix_map_target_cannot_be_escaped(write_image: WriteImage, images: Path, tmp_path: Path) -> None:
    write_image(tmp_path / "secret.png", 1)
    resolver = ReferenceResolver(images, {"s3://bucket/": tmp_path / "mirror"})
    with pytest.raises(UnresolvedReference) as info:
        resolver.resolve("s3://bucket/../secret.png")
    assert info.value.kind == "path_escape"


def test_symlinked_folder_inside_root_is_followed(write_image: WriteImage, images: Path, tmp_path: Path) -> None:
    """Only the normalised reference must stay inside the root; datasets often link folders in."""
    target = write_image(tmp_path / "nas" / "a.png", 1)
    os.symlink(tmp_path / "nas", images / "nas")
    assert ReferenceResolver(images).resolve("nas/a.png").read_bytes() == target.read_bytes()


def test_missing_file_lists_every_path_tried(images: Path) -> None:
    with pytest.raises(UnresolvedReference) as info:
        ReferenceResolver(images).resolve("/data/upload/1/c2c0fb30-a.jpg")
    assert info.value.kind == "missing_image"
    for rel in ("upload/1/c2c0fb30-a.jpg", "c2c0fb30-a.jpg", "a.jpg"):
        assert str(images / rel) in info.value.message


def test_folder_or_empty_file_is_unreadable(images: Path) -> None:
    (images / "folder.png").mkdir()
    (images / "empty.png").write_bytes(b"")
    resolver = ReferenceResolver(images)
    for ref in ("folder.png", "empty.png"):
        with pytest.raises(UnresolvedReference) as info:
            resolver.resolve(ref)
        assert info.value.kind == "unreadable_image"


def test_local_files_url_without_d_is_a_bad_reference(images: Path) -> None:
    with pytest.raises(UnresolvedReference) as info:
        ReferenceResolver(images).resolve("/data/local-files/?x=1")
    assert info.value.kind == "bad_reference"
