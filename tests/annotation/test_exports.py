"""Label Studio exports (JSON, JSON-MIN, CSV) read into manifests, on real files."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from annotation.errors import LineInspectError
from annotation.export_writer import annotation, labelled_task, task
from annotation.exports import ImportOptions, detect_format, load_export, load_exports
from annotation.manifest import Manifest, Severity, sha256_file
from annotation.verdicts import CLASSES

FORMATS = ["json", "json-min", "csv"]
REAL_EXPORTS = Path(__file__).resolve().parents[3] / "shared" / "data" / "label-studio-exports"
BOOGEYMEN = REAL_EXPORTS / "utiz23+TheMississagaBoogeymen" / "label-studio-export.json"
FASHION = REAL_EXPORTS / "sidiq20+style-naija-model" / "label-studio-export.json"

WriteImage = Callable[[Path, int], Path]
WriteExport = Callable[..., Path]


def kinds(manifest: Manifest) -> dict[int | str | None, list[str]]:
    out: dict[int | str | None, list[str]] = {}
    for p in manifest.problems:
        out.setdefault(p.task_id, []).append(p.kind)
    return out


def items(manifest: Manifest) -> dict[int | str | None, str]:
    return {i.task_id: i.label for i in manifest.items}


def vote(ann_id: int, label: str | list[str], who: int, when: str = "2026-01-01T00:00:00.000000Z") -> dict:
    return annotation(ann_id, label, completed_by=who, created_at=when)


# --- formats -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_detects_format_from_content_not_extension(export: WriteExport, fmt: str) -> None:
    misleading = {"json": "a.csv", "json-min": "b.csv", "csv": "c.json"}[fmt]
    path = export([labelled_task(1, "a.png", "defect"), task(2, "b.png")], fmt, name=misleading)
    assert detect_format(path) == fmt


@pytest.mark.parametrize("fmt", FORMATS)
def test_single_annotator_labels_become_items(
    export: WriteExport, write_image: WriteImage, images: Path, fmt: str
) -> None:
    a, b = write_image(images / "a.png", 1), write_image(images / "line 2" / "b.jpg", 2)
    tasks = [labelled_task(1, "a.png", "OK"), labelled_task(2, "/data/local-files/?d=line%202/b.jpg", "Scratch")]
    path = export(tasks, fmt)
    m = load_export(path, ImportOptions(images_root=images, normal_labels=("ok",), defect_labels=("scratch",)))
    assert m.problems == []
    assert m.classes == list(CLASSES) == ["normal", "defect"]
    assert m.sources == [str(path)]
    first, second = m.items
    assert (first.path, first.label, first.source_label, first.task_id) == (a, "normal", "OK", 1)
    assert (second.path, second.label, second.source_label, second.task_id) == (b, "defect", "Scratch", 2)
    assert second.sha256 == sha256_file(b)
    assert second.reference == "/data/local-files/?d=line%202/b.jpg"


def test_relative_references_resolve_next_to_the_export_without_images_root(
    export: WriteExport, write_image: WriteImage, tmp_path: Path
) -> None:
    path = export([labelled_task(1, "imgs/a.png", "defect")])
    target = write_image(path.parent / "imgs" / "a.png", 1)
    assert load_export(path, ImportOptions()).items[0].path == target


@pytest.mark.parametrize("fmt", FORMATS)
def test_image_field_is_found_by_its_values_or_named(
    export: WriteExport, write_image: WriteImage, images: Path, fmt: str
) -> None:
    write_image(images / "a.png", 1)
    tasks = [task(1, "a.png", [annotation(1, "defect")], image_key="img")]
    for t in tasks:
        t["data"]["camera"] = "cam-3"
    path = export(tasks, fmt)
    assert items(load_export(path, ImportOptions(images_root=images))) == {1: "defect"}
    assert items(load_export(path, ImportOptions(images_root=images, image_key="img"))) == {1: "defect"}


# --- whole-export errors -----------------------------------------------------------------------


def test_missing_export_file(tmp_path: Path) -> None:
    with pytest.raises(LineInspectError, match="not found"):
        load_export(tmp_path / "nope.json", ImportOptions())


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not a text file"),
        (b"hello world\nthis is not an export\n", "neither JSON nor"),
        (b'[{"id": 1, "data": {"image": "a.png"}', "not valid JSON .* line 1"),
        (b'{"tasks": []}', "expected a list of tasks"),
        (b"", "empty"),
    ],
)
def test_unusable_files_raise_a_fixable_error(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "export.json"
    path.write_bytes(content)
    with pytest.raises(LineInspectError, match=match):
        load_export(path, ImportOptions())


@pytest.mark.parametrize(
    ("tasks", "match"),
    [
        ([{"id": 1, "data": {"image": "a.png"}, "annotations": []}, "oops"], "task #1 is a str"),
        ([{"id": 1, "data": {"image": "a.png"}}, {"id": 2, "annotations": []}], "task #1 .*no 'data'"),
        ([{"id": 1, "data": {"image": "a.png"}, "annotations": {"x": 1}}], "task #0 .*malformed 'annotations'"),
        ([{"data": {"image": "a.png"}, "annotations": []}], "task #0 has no 'id'"),
    ],
)
def test_wrong_shape_names_the_task_index(tmp_path: Path, tasks: list, match: str) -> None:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks))
    with pytest.raises(LineInspectError, match=match):
        load_export(path, ImportOptions())


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_image_field(export: WriteExport, fmt: str) -> None:
    path = export([task(1, "cam-3", [annotation(1, "defect")], image_key="camera")], fmt)
    with pytest.raises(LineInspectError, match="no image field.*camera.*--image-key"):
        load_export(path, ImportOptions())
    with pytest.raises(LineInspectError, match="--image-key 'picture' is not a data field.*camera"):
        load_export(path, ImportOptions(image_key="picture"))


def _two_controls(task_id: int, reference: str) -> dict:
    t = labelled_task(task_id, reference, "defect", from_name="quality")
    t["annotations"][0]["result"].append(annotation(0, "line-2", from_name="station")["result"][0])
    return t


@pytest.mark.parametrize("fmt", FORMATS)
def test_several_controls_need_from_name(export: WriteExport, write_image: WriteImage, images: Path, fmt: str) -> None:
    write_image(images / "a.png", 1)
    path = export([_two_controls(1, "a.png")], fmt)
    with pytest.raises(LineInspectError, match=r"several Choices controls \(quality, station\).*--from-name"):
        load_export(path, ImportOptions(images_root=images))
    with pytest.raises(LineInspectError, match="'shift' is not a Choices control.*quality, station"):
        load_export(path, ImportOptions(images_root=images, from_name="shift"))
    m = load_export(path, ImportOptions(images_root=images, from_name="quality"))
    assert items(m) == {1: "defect"}


def test_label_on_both_sides_of_the_mapping(export: WriteExport) -> None:
    path = export([labelled_task(1, "a.png", "defect")])
    with pytest.raises(LineInspectError, match="scratch.*both normal and defect"):
        load_export(path, ImportOptions(normal_labels=("ok", "Scratch"), defect_labels=("scratch",)))


# --- task-level problems -----------------------------------------------------------------------


def test_draft_only_task_is_not_used(export: WriteExport, write_image: WriteImage, images: Path) -> None:
    write_image(images / "a.png", 1)
    path = export([task(1, "a.png", drafts=[{"id": 5, "result": annotation(5, "defect")["result"]}])])
    m = load_export(path, ImportOptions(images_root=images))
    assert m.items == []
    assert kinds(m) == {1: ["draft_only"]}
    assert m.problems[0].severity is Severity.WARNING


def test_draft_never_overrides_the_submitted_annotation(
    export: WriteExport, write_image: WriteImage, images: Path
) -> None:
    write_image(images / "a.png", 1)
    draft = {"id": 5, "result": annotation(5, "defect")["result"], "updated_at": "2027-01-01T00:00:00Z"}
    path = export([task(1, "a.png", [annotation(1, "normal")], drafts=[draft])])
    for consensus in ("majority", "latest"):
        m = load_export(path, ImportOptions(images_root=images, consensus=consensus))
        assert items(m) == {1: "normal"} and m.problems == []


def test_all_cancelled_is_skipped(export: WriteExport, write_image: WriteImage, images: Path) -> None:
    write_image(images / "a.png", 1)
    path = export([task(1, "a.png", [annotation(1, None, was_cancelled=True)])])
    m = load_export(path, ImportOptions(images_root=images))
    assert (m.items, kinds(m)) == ([], {1: ["skipped"]})


def test_cancelled_annotation_is_ignored_beside_a_submitted_one(
    export: WriteExport, write_image: WriteImage, images: Path
) -> None:
    write_image(images / "a.png", 1)
    cancelled = annotation(2, "normal", completed_by=2, was_cancelled=True)
    path = export([task(1, "a.png", [annotation(1, "defect"), cancelled])])
    m = load_export(path, ImportOptions(images_root=images))
    assert items(m) == {1: "defect"} and m.problems == []  # no disagreement with a cancelled vote


@pytest.mark.parametrize("fmt", FORMATS)
def test_unlabelled_tasks(export: WriteExport, write_image: WriteImage, images: Path, fmt: str) -> None:
    write_image(images / "a.png", 1)
    write_image(images / "b.png", 2)
    tasks = [labelled_task(1, "a.png", "defect"), task(2, "b.png"), task(3, "c.png", [annotation(3, None)])]
    m = load_export(export(tasks, fmt), ImportOptions(images_root=images))
    assert items(m) == {1: "defect"}
    assert kinds(m) == {2: ["unlabelled"], 3: ["unlabelled"]}
    assert all(p.severity is Severity.WARNING for p in m.problems)


@pytest.mark.parametrize("fmt", FORMATS)
def test_multi_select(export: WriteExport, write_image: WriteImage, images: Path, fmt: str) -> None:
    write_image(images / "a.png", 1)
    write_image(images / "b.png", 2)
    tasks = [labelled_task(1, "a.png", ["scratch", "dent"]), labelled_task(2, "b.png", ["scratch", "ok"])]
    m = load_export(
        export(tasks, fmt), ImportOptions(images_root=images, normal_labels=("ok",), defect_labels=("scratch", "dent"))
    )
    assert [(i.task_id, i.label, i.source_label) for i in m.items] == [(1, "defect", "scratch+dent")]
    assert kinds(m) == {2: ["multi_select"]}
    assert m.problems[0].severity is Severity.ERROR


@pytest.mark.parametrize("fmt", FORMATS)
def test_unknown_label(export: WriteExport, write_image: WriteImage, images: Path, fmt: str) -> None:
    write_image(images / "a.png", 1)
    write_image(images / "b.png", 2)
    tasks = [labelled_task(1, "a.png", "defect"), labelled_task(2, "b.png", "scratch")]
    m = load_export(export(tasks, fmt), ImportOptions(images_root=images))
    assert items(m) == {1: "defect"}
    assert kinds(m) == {2: ["unknown_label"]}
    problem = m.problems[0]
    assert problem.severity is Severity.ERROR
    assert "scratch" in problem.message and "--normal-label" in problem.message and "--defect-label" in problem.message


def _three_annotators(labels: list[str]) -> list[dict]:
    return [vote(10 + n, label, who=n) for n, label in enumerate(labels)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_majority_wins_and_disagreement_is_reported(
    export: WriteExport, write_image: WriteImage, images: Path, fmt: str
) -> None:
    write_image(images / "a.png", 1)
    path = export([task(1, "a.png", _three_annotators(["defect", "normal", "defect"]))], fmt)
    m = load_export(path, ImportOptions(images_root=images))
    assert items(m) == {1: "defect"}
    (problem,) = m.problems
    assert (problem.kind, problem.severity) == ("disagreement", Severity.WARNING)
    assert "annotator 1: normal" in problem.message and "annotator 0: defect" in problem.message


def test_older_exports_name_annotators_by_email(export: WriteExport, write_image: WriteImage, images: Path) -> None:
    write_image(images / "a.png", 1)
    votes = _three_annotators(["defect", "normal", "defect"])
    for v in votes:
        v["completed_by"] = {"id": v["completed_by"], "email": f"user{v['completed_by']}@plant.example"}
    m = load_export(export([task(1, "a.png", votes)]), ImportOptions(images_root=images))
    assert "annotator user1@plant.example: normal" in m.problems[0].message


@pytest.mark.parametrize("fmt", FORMATS)
def test_labels_mapping_to_one_class_are_no_disagreement(
    export: WriteExport, write_image: WriteImage, images: Path, fmt: str
) -> None:
    write_image(images / "a.png", 1)
    path = export([task(1, "a.png", _three_annotators(["dent", "scratch", "dent"]))], fmt)
    m = load_export(path, ImportOptions(images_root=images, defect_labels=("dent", "scratch")))
    assert (m.items[0].label, m.items[0].source_label, m.problems) == ("defect", "dent", [])


@pytest.mark.parametrize("fmt", FORMATS)
def test_tie_is_excluded(export: WriteExport, write_image: WriteImage, images: Path, fmt: str) -> None:
    write_image(images / "a.png", 1)
    path = export([task(1, "a.png", _three_annotators(["defect", "normal"]))], fmt)
    m = load_export(path, ImportOptions(images_root=images))
    assert (m.items, kinds(m), m.problems[0].severity) == ([], {1: ["tie"]}, Severity.ERROR)


@pytest.mark.parametrize("fmt", FORMATS)
def test_unanimous_excludes_any_disagreement(
    export: WriteExport, write_image: WriteImage, images: Path, fmt: str
) -> None:
    write_image(images / "a.png", 1)
    write_image(images / "b.png", 2)
    tasks = [
        task(1, "a.png", _three_annotators(["defect", "normal", "defect"])),
        task(2, "b.png", _three_annotators(["normal", "normal"])),
    ]
    m = load_export(export(tasks, fmt), ImportOptions(images_root=images, consensus="unanimous"))
    assert items(m) == {2: "normal"}
    assert kinds(m) == {1: ["disagreement"]}
    assert m.problems[0].severity is Severity.ERROR


@pytest.mark.parametrize("fmt", FORMATS)
def test_latest_annotation_wins(export: WriteExport, write_image: WriteImage, images: Path, fmt: str) -> None:
    write_image(images / "a.png", 1)
    votes = [
        vote(30, "normal", who=1, when="2026-03-02T08:00:00.000000Z"),  # most recent, yet lowest id
        vote(40, "defect", who=2, when="2026-03-01T09:00:00.000000Z"),
        vote(50, "defect", who=3, when="2026-02-27T10:00:00.000000Z"),
    ]
    path = export([task(1, "a.png", votes)], fmt)
    assert items(load_export(path, ImportOptions(images_root=images, consensus="latest"))) == {1: "normal"}
    assert items(load_export(path, ImportOptions(images_root=images))) == {1: "defect"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_image(export: WriteExport, images: Path, fmt: str) -> None:
    m = load_export(export([labelled_task(7, "line1/a.png", "defect")], fmt), ImportOptions(images_root=images))
    (problem,) = m.problems
    assert (m.items, problem.kind, problem.severity, problem.task_id) == ([], "missing_image", Severity.ERROR, 7)
    assert str(images / "line1" / "a.png") in problem.message
    assert problem.reference == "line1/a.png"


def test_folder_or_empty_file_is_an_unreadable_image(export: WriteExport, images: Path) -> None:
    (images / "dir.png").mkdir()
    (images / "empty.png").write_bytes(b"")
    m = load_export(
        export([labelled_task(1, "dir.png", "defect"), labelled_task(2, "empty.png", "normal")]),
        ImportOptions(images_root=images),
    )
    assert (m.items, kinds(m)) == ([], {1: ["unreadable_image"], 2: ["unreadable_image"]})
    assert all(p.severity is Severity.ERROR for p in m.problems)


@pytest.mark.parametrize("fmt", FORMATS)
def test_path_escape_is_refused(
    export: WriteExport, write_image: WriteImage, images: Path, tmp_path: Path, fmt: str
) -> None:
    write_image(tmp_path / "secret.png", 1)
    absolute = write_image(tmp_path / "elsewhere" / "ok.png", 2)
    tasks = [
        labelled_task(1, "../secret.png", "defect"),
        labelled_task(2, "/data/local-files/?d=../secret.png", "defect"),
        labelled_task(3, str(absolute), "normal"),
    ]
    m = load_export(export(tasks, fmt), ImportOptions(images_root=images))
    assert kinds(m) == {1: ["path_escape"], 2: ["path_escape"]}
    assert [(i.task_id, i.path) for i in m.items] == [(3, absolute)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_content_duplicates_with_one_class_are_kept_and_flagged(
    export: WriteExport, write_image: WriteImage, images: Path, fmt: str
) -> None:
    a = write_image(images / "a.png", 1)
    (images / "copy-of-a.png").write_bytes(a.read_bytes())
    write_image(images / "b.png", 2)
    tasks = [labelled_task(1, "a.png", "defect"), labelled_task(2, "copy-of-a.png", "defect")]
    tasks.append(labelled_task(3, "b.png", "defect"))
    m = load_export(export(tasks, fmt), ImportOptions(images_root=images))
    assert items(m) == {1: "defect", 2: "defect", 3: "defect"}
    assert m.items[0].sha256 == m.items[1].sha256 != m.items[2].sha256
    assert kinds(m) == {2: ["duplicate_image"]}
    assert m.problems[0].severity is Severity.WARNING and "task 1" in m.problems[0].message


@pytest.mark.parametrize("fmt", FORMATS)
def test_content_duplicates_with_conflicting_classes_are_all_excluded(
    export: WriteExport, write_image: WriteImage, images: Path, fmt: str
) -> None:
    a = write_image(images / "a.png", 1)
    (images / "copy-of-a.png").write_bytes(a.read_bytes())
    write_image(images / "b.png", 2)
    tasks = [
        labelled_task(1, "a.png", "defect"),
        labelled_task(2, "copy-of-a.png", "normal"),
        labelled_task(3, "a.png", "defect"),
        labelled_task(4, "b.png", "normal"),
    ]
    m = load_export(export(tasks, fmt), ImportOptions(images_root=images))
    assert items(m) == {4: "normal"}
    assert kinds(m) == {1: ["duplicate_conflict"], 2: ["duplicate_conflict"], 3: ["duplicate_conflict"]}
    assert all(p.severity is Severity.ERROR for p in m.problems)


def test_repeated_task_id_keeps_the_first(export: WriteExport, write_image: WriteImage, images: Path) -> None:
    write_image(images / "a.png", 1)
    write_image(images / "b.png", 2)
    m = load_export(
        export([labelled_task(1, "a.png", "defect"), labelled_task(1, "b.png", "normal")]),
        ImportOptions(images_root=images),
    )
    assert [(i.task_id, i.label, i.reference) for i in m.items] == [(1, "defect", "a.png")]
    assert [(p.kind, p.severity, p.reference) for p in m.problems] == [("duplicate_task", Severity.ERROR, "b.png")]


def test_task_without_image_reference(export: WriteExport, write_image: WriteImage, images: Path) -> None:
    write_image(images / "a.png", 1)
    m = load_export(
        export([labelled_task(1, "a.png", "defect"), labelled_task(2, "", "defect")]),
        ImportOptions(images_root=images),
    )
    assert (items(m), kinds(m)) == ({1: "defect"}, {2: ["no_image_reference"]})


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_task_becomes_an_item_or_has_a_problem(
    export: WriteExport, write_image: WriteImage, images: Path, fmt: str
) -> None:
    for n in range(4):
        write_image(images / f"{n}.png", n)
    tasks = [
        labelled_task(0, "0.png", "defect"),
        labelled_task(1, "1.png", "weird"),
        task(2, "2.png", _three_annotators(["defect", "normal"])),
        labelled_task(3, "3.png", ["defect", "normal"]),
        labelled_task(4, "missing.png", "normal"),
        task(5, "5.png"),
    ]
    m = load_export(export(tasks, fmt), ImportOptions(images_root=images))
    accounted = {i.task_id for i in m.items} | {p.task_id for p in m.problems}
    assert accounted == {t["id"] for t in tasks}


def test_several_exports_merge_into_one_manifest(export: WriteExport, write_image: WriteImage, images: Path) -> None:
    a = write_image(images / "a.png", 1)
    (images / "a-again.png").write_bytes(a.read_bytes())
    write_image(images / "b.png", 2)
    first = export([labelled_task(1, "a.png", "defect")], "json", name="shift1.json")
    second = export([labelled_task(1, "a-again.png", "defect"), labelled_task(2, "b.png", "normal")], "csv")
    m = load_exports([first, second], ImportOptions(images_root=images))
    assert m.sources == [str(first), str(second)]
    assert [i.reference for i in m.items] == ["a.png", "a-again.png", "b.png"]
    assert [p.kind for p in m.problems] == ["duplicate_image"]  # same task id in two projects is no problem
    assert m.counts() == {"normal": 1, "defect": 2}


# --- real exports ------------------------------------------------------------------------------


def test_real_990_task_export(write_image: WriteImage, images: Path) -> None:
    tasks = json.loads(BOOGEYMEN.read_text(encoding="utf-8"))
    submitted = {t["id"]: r["value"]["choices"][0] for t in tasks for a in t["annotations"] for r in a["result"]}
    drafted = [t for t in tasks if t["drafts"]]
    assert (len(tasks), len(submitted), len(drafted)) == (990, 975, 16)
    with_files = {t["id"]: t for t in drafted + tasks[:6]}
    for seed, t in enumerate(with_files.values()):
        write_image(images / t["data"]["image"].split("?d=", 1)[1], seed)
    defect = ("unknown_or_transition", "loading_or_intro")
    normal = tuple(sorted(set(submitted.values()) - set(defect)))
    options = ImportOptions(images_root=images, normal_labels=normal, defect_labels=defect)

    start = time.perf_counter()
    m = load_export(BOOGEYMEN, options)
    assert time.perf_counter() - start < 1.0

    def cls(label: str) -> str:
        return "defect" if label in defect else "normal"

    assert {i.task_id: i.source_label for i in m.items} == {k: submitted[k] for k in with_files if k in submitted}
    assert all(i.label == cls(i.source_label) for i in m.items)
    drafts = {t["id"]: t["drafts"][0]["result"][0]["value"]["choices"][0] for t in drafted}
    assert sum(cls(drafts[i.task_id]) != i.label for i in m.items if i.task_id in drafts) >= 5  # drafts ignored
    by_kind: dict[str, set] = {}
    for p in m.problems:
        by_kind.setdefault(p.kind, set()).add(p.task_id)
    assert by_kind == {
        "missing_image": set(submitted) - set(with_files),
        "unlabelled": {t["id"] for t in tasks} - set(submitted),
    }


def test_real_fashion_export_needs_from_name() -> None:
    with pytest.raises(LineInspectError) as info:
        load_export(FASHION, ImportOptions())
    message = str(info.value)
    for control in ("gender", "age_group", "skin_tone", "body_shape", "event", "fabric_type", "style", "accessories"):
        assert control in message
    assert "caption" not in message and "--from-name" in message


@pytest.mark.parametrize("layout", ["upload/1/c2c0fb30-asoebi_9.jpg", "c2c0fb30-asoebi_9.jpg", "asoebi_9.jpg"])
def test_real_fashion_export_gender(write_image: WriteImage, images: Path, layout: str) -> None:
    target = write_image(images / layout, 1)
    options = ImportOptions(images_root=images, from_name="gender", normal_labels=("Male",), defect_labels=("Female",))
    m = load_export(FASHION, options)
    assert m.problems == []
    (item,) = m.items
    assert (item.path, item.label, item.source_label, item.task_id) == (target, "defect", "Female", 1)
    assert item.reference == "/data/upload/1/c2c0fb30-asoebi_9.jpg"


def test_real_fashion_export_multi_select_across_classes(write_image: WriteImage, images: Path) -> None:
    write_image(images / "asoebi_9.jpg", 1)
    options = ImportOptions(
        images_root=images,
        from_name="accessories",
        normal_labels=("Gele",),
        defect_labels=("Necklace (Coral)", "Purse", "Bracelets", "Earrings"),
    )
    m = load_export(FASHION, options)
    assert (m.items, kinds(m)) == ([], {1: ["multi_select"]})
