"""Read Label Studio exports (JSON, JSON-MIN, CSV) into a Manifest.

Whole-export faults (unreadable file, wrong shape, ambiguous control or image field, bad
label mapping) raise LineInspectError: nothing useful can be built. Faults of single tasks
become Problems, so one bad task never hides the rest and no task disappears unexplained.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from annotation.errors import LineInspectError
from annotation.manifest import IMAGE_SUFFIXES, Manifest, ManifestItem, Problem, Severity, sha256_file
from annotation.references import ReferenceResolver, UnresolvedReference
from annotation.verdicts import CLASSES

ExportFormat = Literal["json", "json-min", "csv"]

# Columns Label Studio's converter adds to JSON-MIN/CSV rows beside the data fields and controls.
_MIN_META = frozenset({"id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time", "agreement"})
_EPOCH = datetime.min.replace(tzinfo=UTC)
_UNLABELLED = ("unlabelled", "the task has no annotation; label it in Label Studio")


@dataclass(frozen=True)
class ImportOptions:
    images_root: Path | None = None
    prefix_map: dict[str, Path] = field(default_factory=dict)  # longest matching prefix wins
    from_name: str | None = None  # which Choices control; required when the export has several
    image_key: str | None = None  # which task.data field holds the image; auto when None
    normal_labels: tuple[str, ...] = ("normal",)  # Label Studio labels that mean class "normal"
    defect_labels: tuple[str, ...] = ("defect",)  # Label Studio labels that mean class "defect"
    consensus: Literal["majority", "unanimous", "latest"] = "majority"


@dataclass(frozen=True)
class _Vote:
    """One submitted annotation's choice(s) in the chosen control."""

    labels: tuple[str, ...]
    annotator: str
    order: tuple[datetime, int]  # (updated_at, annotation id): the later, the more recent


@dataclass(frozen=True)
class _Task:
    """A task with at least one vote, in any export format."""

    id: int | str
    reference: str
    votes: tuple[_Vote, ...]


def detect_format(path: Path) -> ExportFormat:
    """The export's format, judged from its content rather than its file extension."""
    return _read_rows(Path(path))[0]


def load_export(path: Path, options: ImportOptions) -> Manifest:
    return load_exports([path], options)


def load_exports(paths: list[Path], options: ImportOptions) -> Manifest:
    """Several exports (e.g. one per project or per shift) as one manifest.

    Task ids are per project, so each export is read on its own; content duplicates are
    found across all of them, since a copy on both sides of a split leaks labels.
    """
    label_map = _label_map(options)
    manifest = Manifest(classes=list(CLASSES), sources=[str(p) for p in paths])
    hashes: dict[Path, str] = {}
    for path in paths:
        items, problems = _load_one(Path(path), options, label_map, hashes)
        manifest.items += items
        manifest.problems += problems
    manifest.problems += _drop_duplicate_conflicts(manifest)
    return manifest


def _label_map(options: ImportOptions) -> dict[str, str]:
    """Label Studio label (case-folded) -> class; a label on both sides is a user error."""
    normal = {label.strip().casefold() for label in options.normal_labels}
    defect = {label.strip().casefold() for label in options.defect_labels}
    if both := sorted(normal & defect):
        raise LineInspectError(
            f"label(s) {', '.join(both)} are listed as both normal and defect; "
            "keep each label in only one of --normal-label / --defect-label"
        )
    return {**dict.fromkeys(normal, "normal"), **dict.fromkeys(defect, "defect")}


def _load_one(
    path: Path, options: ImportOptions, label_map: dict[str, str], hashes: dict[Path, str]
) -> tuple[list[ManifestItem], list[Problem]]:
    fmt, rows = _read_rows(path)
    parsed = _tasks_from_full(rows, options) if fmt == "json" else _tasks_from_min(rows, options)
    tasks = [t for t in parsed if isinstance(t, _Task)]
    problems = [t for t in parsed if isinstance(t, Problem)]
    unmapped = sorted({label for t in tasks for v in t.votes for label in v.labels if _map(label, label_map) is None})
    resolver = ReferenceResolver(options.images_root or path.parent, options.prefix_map)
    items = []
    for task in tasks:
        decided, task_problems = _decide(task, options, label_map, unmapped)
        problems += task_problems
        if decided is not None:
            item_or_problem = _item(task, *decided, resolver, hashes)
            (items if isinstance(item_or_problem, ManifestItem) else problems).append(item_or_problem)
    return items, problems


# --- reading files -------------------------------------------------------------------------


def _read_rows(path: Path) -> tuple[ExportFormat, list[dict[str, Any]]]:
    """The export's format and its rows (tasks for JSON, flat annotation rows otherwise)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise LineInspectError(f"export file {path} not found; check the path") from None
    except IsADirectoryError:
        raise LineInspectError(f"{path} is a folder; give the export file inside it") from None
    except OSError as e:
        raise LineInspectError(f"cannot read export {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise LineInspectError(
            f"{path} is not a text file; export the project from Label Studio as JSON, JSON-MIN or CSV"
        ) from None
    head = text.lstrip()[:1]
    if not head:
        raise LineInspectError(f"export {path} is empty; export the project again")
    if head in "[{":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise LineInspectError(
                f"{path} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); export it again"
            ) from None
        return _json_rows(data, path)
    return "csv", _csv_rows(text, path)


def _json_rows(data: Any, path: Path) -> tuple[ExportFormat, list[dict[str, Any]]]:
    if not isinstance(data, list):
        raise LineInspectError(
            f"{path}: expected a list of tasks at the top level, found a JSON {type(data).__name__}; "
            "use Label Studio's JSON, JSON-MIN or CSV export"
        )
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise LineInspectError(f"{path}: task #{i} is a {type(row).__name__}, not an object; export it again")
    full = any("annotations" in row or isinstance(row.get("data"), dict) for row in data)
    for i, row in enumerate(data):
        _check_row(row, i, path, full)
    return ("json" if full else "json-min"), data


def _check_row(row: dict[str, Any], index: int, path: Path, full: bool) -> None:
    """Shape faults break the reader for every task, so they stop the import, naming the task."""
    if "id" not in row:
        raise LineInspectError(f"{path}: task #{index} has no 'id'; export it again from Label Studio")
    if not full:
        return
    if not isinstance(row.get("data"), dict):
        raise LineInspectError(f"{path}: task #{index} (id {row['id']}) has no 'data' object; export it again")
    for key in ("annotations", "drafts"):
        value = row.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(a, dict) for a in value)):
            raise LineInspectError(
                f"{path}: task #{index} (id {row['id']}) has a malformed '{key}' (expected a list of objects)"
            )


def _csv_rows(text: str, path: Path) -> list[dict[str, Any]]:
    """CSV rows as JSON-MIN rows: empty cells dropped, JSON-encoded lists/dicts decoded."""
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if "id" not in (reader.fieldnames or []):
            raise LineInspectError(
                f"{path} is neither JSON nor a Label Studio CSV export (no 'id' column); "
                "export the project from Label Studio as JSON, JSON-MIN or CSV"
            )
        rows = []
        for i, raw in enumerate(reader):
            if None in raw:
                raise LineInspectError(f"{path}: CSV row #{i} has more cells than the header; export it again")
            rows.append({k: _csv_cell(v) for k, v in raw.items() if v})
    except csv.Error as e:
        raise LineInspectError(f"{path} is not a readable CSV file ({e}); export it again") from None
    for i, row in enumerate(rows):
        _check_row(row, i, path, full=False)
    return rows


def _csv_cell(value: str) -> Any:
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            pass
    return value


# --- tasks and votes -------------------------------------------------------------------------


def _tasks_from_full(rows: list[dict[str, Any]], options: ImportOptions) -> list[_Task | Problem]:
    controls = _unique(
        r["from_name"]
        for row in rows
        for ann in row.get("annotations") or []
        for r in _results(ann)
        if r.get("type") == "choices" and isinstance(r.get("from_name"), str)
    )
    from_name = _choose_control(controls, options.from_name)
    image_key = _choose_image_key([row["data"] for row in rows], options.image_key)
    tasks: list[_Task | Problem] = []
    seen: set[Any] = set()
    for i, row in enumerate(rows):
        task_id, reference = _task_id(row["id"]), row["data"].get(image_key)
        if task_id in seen:
            message = f"task id {task_id} appears again at task #{i}; this copy is ignored, export the project again"
            tasks.append(_error("duplicate_task", message, task_id, reference))
            continue
        seen.add(task_id)
        anns = row.get("annotations") or []
        live = [a for a in anns if not a.get("was_cancelled")]
        votes = tuple(v for a in live if (v := _full_vote(a, from_name)))
        tasks.append(_task(task_id, reference, votes, image_key, why_no_votes(anns, live, row, from_name)))
    return tasks


def why_no_votes(anns: list[dict], live: list[dict], row: dict[str, Any], from_name: str | None) -> tuple[str, str]:
    """The Problem (kind, message) for a task without a usable choice: drafts and skips are not labels."""
    draft = " (its unsubmitted draft is not used)" if row.get("drafts") else ""
    if live:
        return "unlabelled", f"submitted annotations have no choice in '{from_name}'{draft}; label it in Label Studio"
    if anns:
        return "skipped", "every annotation was cancelled (skipped); label the task in Label Studio to use it"
    if row.get("drafts"):
        return "draft_only", "the task has only an unsubmitted draft; submit it in Label Studio to use it"
    return _UNLABELLED


def _results(annotation: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in annotation.get("result") or [] if isinstance(r, dict)]


def _full_vote(annotation: dict[str, Any], from_name: str | None) -> _Vote | None:
    labels = tuple(
        str(choice)
        for r in _results(annotation)
        if r.get("type") == "choices" and r.get("from_name") == from_name and isinstance(r.get("value"), dict)
        for choice in r["value"].get("choices") or []
    )
    if not labels:
        return None
    when = annotation.get("updated_at") or annotation.get("created_at")
    who = annotation.get("completed_by")
    if isinstance(who, dict):  # older Label Studio versions export the user object
        who = who.get("email") or who.get("id")
    return _Vote(labels, str(who), (_timestamp(when), _int(annotation.get("id"))))


def _tasks_from_min(rows: list[dict[str, Any]], options: ImportOptions) -> list[_Task | Problem]:
    """JSON-MIN/CSV: one row per submitted annotation (grouped by task id), one per unlabelled task.

    Cancelled annotations and drafts never reach these formats: a skipped task is absent
    and a draft-only task looks unlabelled.
    """
    image_key = _choose_image_key([{k: v for k, v in r.items() if k not in _MIN_META} for r in rows], options.image_key)
    from_name = _choose_control(_min_controls(rows, image_key), options.from_name)
    groups: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(_task_id(row["id"]), []).append(row)
    tasks: list[_Task | Problem] = []
    for task_id, group in groups.items():
        annotated = [r for r in group if _is_annotation_row(r)]
        votes = tuple(v for r in annotated if (v := _min_vote(r, from_name)))
        no_votes = ("unlabelled", f"submitted annotations have no choice in '{from_name}'; label it in Label Studio")
        tasks.append(_task(task_id, group[0].get(image_key), votes, image_key, no_votes if annotated else _UNLABELLED))
    return tasks


def _task(
    task_id: int | str, reference: Any, votes: tuple[_Vote, ...], image_key: str, no_votes: tuple[str, str]
) -> _Task | Problem:
    """The task to decide, or the Problem saying why it cannot be used."""
    if not isinstance(reference, str) or not reference.strip():
        return _error("no_image_reference", f"no image in data field '{image_key}'; fix the task", task_id, None)
    if not votes:
        return _warning(*no_votes, task_id, reference)
    return _Task(task_id, reference, votes)


def _is_annotation_row(row: dict[str, Any]) -> bool:
    return any(row.get(k) not in (None, "") for k in ("annotation_id", "annotator"))


def _min_controls(rows: list[dict[str, Any]], image_key: str) -> list[str]:
    """Columns that hold Choices values.

    The converter writes a row as data fields, `id`, controls, then annotation columns, and
    unlabelled rows carry data fields only; a control never holds a dict without "choices".
    """
    data_keys = {image_key} | _MIN_META
    for row in rows:
        keys = list(row)
        data_keys.update(keys if not _is_annotation_row(row) else keys[: keys.index("id")])
    candidates = _unique(k for r in rows if _is_annotation_row(r) for k in r if k not in data_keys)
    return [k for k in candidates if all(_is_choice_value(r[k]) for r in rows if k in r)]


def _is_choice_value(value: Any) -> bool:
    if isinstance(value, list):
        return all(_is_choice_value(v) for v in value)
    return isinstance(value, str) or (isinstance(value, dict) and isinstance(value.get("choices"), list))


def _min_vote(row: dict[str, Any], from_name: str | None) -> _Vote | None:
    labels = tuple(_min_labels(row.get(from_name))) if from_name else ()
    if not labels:
        return None
    when = row.get("updated_at") or row.get("created_at")
    return _Vote(labels, str(row.get("annotator")), (_timestamp(when), _int(row.get("annotation_id"))))


def _min_labels(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, dict):
        return [str(c) for c in value.get("choices") or []]
    if isinstance(value, list):
        return [label for v in value for label in _min_labels(v)]
    return []


def _choose_control(controls: list[str], wanted: str | None) -> str | None:
    if wanted is None:
        if len(controls) > 1:
            raise LineInspectError(
                f"the export has several Choices controls ({', '.join(controls)}); "
                "pass --from-name with the one that holds the normal/defect label"
            )
        return controls[0] if controls else None
    if controls and wanted not in controls:
        raise LineInspectError(
            f"--from-name {wanted!r} is not a Choices control of this export; it has: {', '.join(controls)}"
        )
    return wanted


def _choose_image_key(datas: list[dict[str, Any]], wanted: str | None) -> str:
    keys = _unique(k for d in datas for k in d)
    if wanted is not None:
        if wanted in keys:
            return wanted
        raise LineInspectError(f"--image-key {wanted!r} is not a data field of this export; it has: {', '.join(keys)}")
    if "image" in keys:
        return "image"
    hits = Counter(k for d in datas for k, v in d.items() if _looks_like_image(v)).most_common()
    if not hits:
        raise LineInspectError(
            f"no image field found in the tasks' data (fields: {', '.join(keys) or 'none'}); "
            "pass --image-key with the field that holds the image URL"
        )
    if len(hits) > 1 and hits[0][1] == hits[1][1]:
        raise LineInspectError(
            f"several data fields look like images ({', '.join(k for k, _ in hits)}); pass --image-key to pick one"
        )
    return hits[0][0]


def _looks_like_image(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    return value.startswith("/data/") or "://" in value or Path(value.split("?")[0]).suffix.lower() in IMAGE_SUFFIXES


# --- deciding a task's class -----------------------------------------------------------------


def _decide(
    task: _Task, options: ImportOptions, label_map: dict[str, str], unmapped: list[str]
) -> tuple[tuple[str, str] | None, list[Problem]]:
    """The task's (class, source label), or None, plus the problems found on the way."""
    votes = [max(task.votes, key=lambda v: v.order)] if options.consensus == "latest" else list(task.votes)
    unknown = _unique(label for v in votes for label in v.labels if _map(label, label_map) is None)
    if unknown:
        normal, defect = ", ".join(options.normal_labels) or "none", ", ".join(options.defect_labels) or "none"
        return None, [
            _error(
                "unknown_label",
                f"label(s) {', '.join(unknown)} map to no class; add them to --normal-label or --defect-label "
                f"(now normal: {normal}; defect: {defect}). Unmapped labels in this export: {', '.join(unmapped)}",
                task.id,
                task.reference,
            )
        ]
    classed: list[tuple[str, str, str]] = []  # (class, source label, annotator)
    for v in votes:
        classes = _unique(_map(label, label_map) for label in v.labels)
        if len(classes) > 1:
            message = f"annotator {v.annotator} chose {' + '.join(v.labels)}, which mix classes {' and '.join(classes)}"
            return None, [_error("multi_select", f"{message}; keep one class per image", task.id, task.reference)]
        classed.append((classes[0], "+".join(v.labels), v.annotator))
    return _consensus(classed, options.consensus, task)


def _consensus(
    classed: list[tuple[str, str, str]], rule: str, task: _Task
) -> tuple[tuple[str, str] | None, list[Problem]]:
    counts = Counter(c for c, _, _ in classed).most_common()
    if len(counts) == 1:
        winner = counts[0][0]
        return (winner, _source_label(classed, winner)), []
    votes = "; ".join(f"annotator {who}: {source} ({cls})" for cls, source, who in classed)
    if rule == "unanimous":
        message = f"annotators disagree ({votes}) and consensus is unanimous; resolve it in Label Studio"
        return None, [_error("disagreement", message, task.id, task.reference)]
    if counts[0][1] == counts[1][1]:
        message = f"annotators are tied ({votes}); add a deciding annotation in Label Studio"
        return None, [_error("tie", message, task.id, task.reference)]
    winner = counts[0][0]
    message = f"annotators disagree ({votes}); the majority class {winner} is used"
    return (winner, _source_label(classed, winner)), [_warning("disagreement", message, task.id, task.reference)]


def _source_label(classed: list[tuple[str, str, str]], winner: str) -> str:
    return Counter(source for cls, source, _ in classed if cls == winner).most_common(1)[0][0]


def _map(label: str, label_map: dict[str, str]) -> str | None:
    return label_map.get(label.strip().casefold())


# --- files and duplicates --------------------------------------------------------------------


def _item(
    task: _Task, label: str, source_label: str, resolver: ReferenceResolver, hashes: dict[Path, str]
) -> ManifestItem | Problem:
    try:
        path = resolver.resolve(task.reference)
        if path not in hashes:
            hashes[path] = sha256_file(path)
    except UnresolvedReference as e:
        return _error(e.kind, e.message, task.id, task.reference)
    except OSError as e:
        return _error(
            "unreadable_image", f"cannot read {e.filename}: {e.strerror}; fix its permissions", task.id, task.reference
        )
    return ManifestItem(path, label, task.id, task.reference, hashes[path], source_label)


def _drop_duplicate_conflicts(manifest: Manifest) -> list[Problem]:
    """Flag content duplicates; drop every copy whose classes conflict (which one is right is unknowable)."""
    groups: dict[str, list[ManifestItem]] = {}
    for item in manifest.items:
        groups.setdefault(item.sha256, []).append(item)
    problems: list[Problem] = []
    conflicting: set[str] = set()
    for sha, group in groups.items():
        if len(group) < 2:
            continue
        if len({i.label for i in group}) > 1:
            conflicting.add(sha)
            for item in group:
                others = "; ".join(f"task {o.task_id} ({o.reference}) as {o.label}" for o in group if o is not item)
                message = (
                    f"same image content as {others}, but labelled {item.label}; all copies excluded, fix the labels"
                )
                problems.append(_error("duplicate_conflict", message, item.task_id, item.reference))
        else:
            first = group[0]
            for item in group[1:]:
                message = (
                    f"same image content as task {first.task_id} ({first.reference}); both kept as {item.label}, "
                    "and kept on the same side of a split"
                )
                problems.append(_warning("duplicate_image", message, item.task_id, item.reference))
    manifest.items = [i for i in manifest.items if i.sha256 not in conflicting]
    return problems


# --- small helpers ---------------------------------------------------------------------------


def _error(kind: str, message: str, task_id: Any, reference: Any) -> Problem:
    return Problem(kind, Severity.ERROR, message, task_id, reference if isinstance(reference, str) else None)


def _warning(kind: str, message: str, task_id: Any, reference: Any) -> Problem:
    return Problem(kind, Severity.WARNING, message, task_id, reference if isinstance(reference, str) else None)


def _task_id(value: Any) -> int | str:
    """Task ids are ints in JSON but strings in CSV; one type lets both group and compare alike."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():  # not "²", which isdigit
        return int(value)
    return value if isinstance(value, int) else str(value)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _timestamp(value: Any) -> datetime:
    """Label Studio's ISO times; unparsable or missing ones sort oldest."""
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return _EPOCH
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _unique(items: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(items))
