import cv2
import numpy as np

from annotation.export_writer import tasks_from_folders, write_export
from annotation.exports import ImportOptions, load_exports


def _write_image(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((8, 8, 3), value, np.uint8))


def test_folders_become_labels_and_the_export_reads_back(tmp_path):
    _write_image(tmp_path / "ok" / "a.png", 10)
    _write_image(tmp_path / "line2" / "ng" / "b.jpg", 200)
    (tmp_path / "ok" / "notes.txt").write_text("not an image")
    tasks = tasks_from_folders(tmp_path)
    assert [t["data"]["image"] for t in tasks] == [
        "/data/local-files/?d=line2/ng/b.jpg",
        "/data/local-files/?d=ok/a.png",
    ]
    for fmt in ("json", "json-min", "csv"):
        export = write_export(tasks, tmp_path / f"export.{fmt}", fmt)
        manifest = load_exports(
            [export], ImportOptions(images_root=tmp_path, normal_labels=("ok",), defect_labels=("ng",))
        )
        assert sorted((i.path.name, i.label) for i in manifest.items) == [("a.png", "normal"), ("b.jpg", "defect")]
        assert not manifest.problems
