"""`lineinspect inspect` on real casting images: same rows as the service, errors as rows, every format, every input."""

from __future__ import annotations

import os
import shutil

import pytest

from serving.batch.output import read_rows
from tests.conftest import jpeg_bytes
from tests.serving.conftest import cli
from vision.metadata import read_metadata


@pytest.fixture
def sample(casting_images, tmp_path):
    """Four defect and four normal real images in one folder."""
    folder = tmp_path / "images"
    folder.mkdir()
    for path in casting_images["defect"][:4] + casting_images["normal"][:4]:
        shutil.copy(path, folder / path.name)
    return folder


def test_rows_equal_the_service_answers(app_service, sample, models, tmp_path):
    cli("inspect", models["model"], sample, "--out", tmp_path / "out.jsonl", "--batch-size", "3")
    rows = read_rows(tmp_path / "out.jsonl")
    assert [r["path"] for r in rows] == [str(p) for p in sorted(sample.iterdir())]
    for row in rows:
        with open(row["path"], "rb") as f:
            answer = app_service["client"].post("/v1/inspect", content=f.read(), headers={"content-type": "image/jpeg"})
        result = answer.json()
        assert abs(row["score"] - result["score"]) <= 1e-6, row["path"]
        assert (row["verdict"], row["label"], row["threshold"], row["model_version"], row["error"]) == (
            result["verdict"], result["label"], result["threshold"], result["model"]["version"], None
        )  # fmt: skip


def test_corrupt_images_are_error_rows_in_place(sample, models, tmp_path):
    good = sorted(sample.iterdir())
    (sample / "a-truncated.jpeg").write_bytes(good[0].read_bytes()[:300])
    (sample / "b-empty.jpeg").write_bytes(b"")
    (sample / "c-text.jpg").write_text("this is a text file, not an image\n")
    out = tmp_path / "out.csv"
    result = cli("inspect", models["model"], sample, "--out", out)
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in read_rows(out)}
    assert len(rows) == len(good) + 3
    for name in ("a-truncated.jpeg", "b-empty.jpeg", "c-text.jpg"):
        assert rows[name]["error"] and rows[name]["score"] is None and rows[name]["verdict"] is None, rows[name]
    assert "empty" in rows["b-empty.jpeg"]["error"]
    assert all(rows[p.name]["error"] is None and rows[p.name]["score"] is not None for p in good)
    assert f"{len(good) + 3} images:" in result.stderr and "3 unreadable" in result.stderr


def test_every_format_reads_back_the_same_rows(sample, models, tmp_path):
    outputs = [tmp_path / "out.csv", tmp_path / "out.jsonl", tmp_path / "out.parquet", tmp_path / "as-parquet.data"]
    (sample / "empty.jpeg").write_bytes(b"")
    for out in outputs[:3]:
        cli("inspect", models["model"], sample, "--out", out)
    cli("inspect", models["model"], sample, "--out", outputs[3], "--format", "parquet")
    shutil.copy(outputs[3], tmp_path / "copy.parquet")
    tables = [read_rows(out) for out in outputs[:3] + [tmp_path / "copy.parquet"]]
    assert len(tables[0]) == 9
    assert all(table == tables[0] for table in tables[1:])
    assert not list(tmp_path.glob("*.rows")) + list(tmp_path.glob("*.journal")) + list(tmp_path.glob("*.tmp"))


def test_file_list_and_label_studio_export_as_inputs(casting_images, models, tmp_path):
    listed = casting_images["normal"][:3]
    (tmp_path / "list.txt").write_text("# three images and a missing one\n" + "\n".join(
        [str(listed[0]), os.path.relpath(listed[1], tmp_path), "", str(listed[2]), "missing.jpeg"]
    ))  # fmt: skip
    cli("inspect", models["model"], tmp_path / "list.txt", "--out", tmp_path / "list.csv")
    rows = read_rows(tmp_path / "list.csv")
    assert [r["path"].rsplit("/", 1)[-1] for r in rows] == [p.name for p in listed] + ["missing.jpeg"]
    assert [r["error"] is None for r in rows] == [True, True, True, False]

    work = models["model"].parents[1]  # the training export of the models fixture
    root = casting_images["normal"][0].parents[2]
    cli("inspect", models["model"], work / "export.json", "--images-root", root, "--out", tmp_path / "ls.parquet",
        "--normal-label", "ok_front", "--defect-label", "def_front")  # fmt: skip
    rows = read_rows(tmp_path / "ls.parquet")
    assert len(rows) == 60 and {r["true_label"] for r in rows} == {"defect", "normal"}
    assert all(r["error"] is None for r in rows)


def test_output_format_must_be_known(sample, models, tmp_path):
    result = cli("inspect", models["model"], sample, "--out", tmp_path / "out.xlsx", check=False)
    assert result.returncode == 2 and "--format csv|jsonl|parquet" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_generated_large_jpeg_is_scored(models, tmp_path):
    """Full-HD goes through the reduced-resolution decode in the workers."""
    (tmp_path / "hd.jpg").write_bytes(jpeg_bytes(1920, 1080))
    cli("inspect", models["model"], tmp_path / "hd.jpg", "--out", tmp_path / "out.jsonl")
    (row,) = read_rows(tmp_path / "out.jsonl")
    assert row["error"] is None and 0 <= row["score"] <= 1
    assert row["threshold"] == read_metadata(models["model"]).threshold
