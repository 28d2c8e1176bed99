"""Write Label Studio exports (JSON, JSON-MIN, CSV) the way Label Studio 1.23 does.

The sample data generator and the tests use this to produce exports that go
through the same import path as a real annotator's export.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Literal

from annotation.manifest import IMAGE_SUFFIXES

ExportFormat = Literal["json", "json-min", "csv"]

_TIME = "2026-01-01T00:00:00.000000Z"


def choice_result(label: str | list[str], from_name: str = "choice", to_name: str = "image") -> dict:
    """One Choices result, as Label Studio stores it in an annotation."""
    choices = [label] if isinstance(label, str) else list(label)
    return {
        "value": {"choices": choices},
        "id": hashlib.sha1(json.dumps([from_name, choices]).encode()).hexdigest()[:10],
        "from_name": from_name,
        "to_name": to_name,
        "type": "choices",
        "origin": "manual",
    }


def annotation(
    annotation_id: int,
    label: str | list[str] | None,
    *,
    completed_by: int = 1,
    was_cancelled: bool = False,
    created_at: str = _TIME,
    from_name: str = "choice",
    to_name: str = "image",
) -> dict:
    result = [] if label is None else [choice_result(label, from_name, to_name)]
    return {
        "id": annotation_id,
        "completed_by": completed_by,
        "result": result,
        "was_cancelled": was_cancelled,
        "ground_truth": False,
        "created_at": created_at,
        "updated_at": created_at,
        "lead_time": 1.0,
        "result_count": len(result),
    }


def task(
    task_id: int,
    reference: str,
    annotations: list[dict] | None = None,
    *,
    drafts: list[dict] | None = None,
    image_key: str = "image",
    meta: dict | None = None,
) -> dict:
    """One task of a full JSON export."""
    anns = annotations or []
    return {
        "id": task_id,
        "annotations": anns,
        "drafts": drafts or [],
        "predictions": [],
        "data": {image_key: reference},
        "meta": meta or {},
        "created_at": _TIME,
        "updated_at": _TIME,
        "inner_id": task_id,
        "total_annotations": sum(not a.get("was_cancelled") for a in anns),
        "cancelled_annotations": sum(bool(a.get("was_cancelled")) for a in anns),
        "total_predictions": 0,
        "project": 1,
    }


def labelled_task(task_id: int, reference: str, label: str, from_name: str = "choice") -> dict:
    """The common case: one annotator chose one label."""
    return task(task_id, reference, [annotation(task_id, label, from_name=from_name)])


def min_records(tasks: list[dict]) -> list[dict]:
    """JSON-MIN rows: one per submitted annotation, one per unannotated task.

    Mirrors label-studio-sdk's converter: cancelled (skipped) annotations are
    dropped, a task whose annotations were all cancelled yields no row, a single
    choice becomes a plain string and a multi-select a {"choices": [...]} dict.
    """
    rows = []
    for t in tasks:
        anns = t.get("annotations") or []
        if not anns:
            rows.append({**t["data"], "id": t["id"]})
            continue
        live = [a for a in anns if not a.get("was_cancelled")]
        for a in sorted(live, key=lambda a: a.get("created_at", ""), reverse=True):
            row = {**t["data"], "id": t["id"]}
            grouped: dict[str, list[dict]] = {}
            for r in a["result"]:
                grouped.setdefault(r["from_name"], []).append(r["value"])
            for name, values in grouped.items():
                pretty = [v["choices"][0] if len(v.get("choices", [])) == 1 else v for v in values]
                row[name] = pretty[0] if len(pretty) == 1 else pretty
            row.update(
                annotator=a.get("completed_by"),
                annotation_id=a.get("id"),
                created_at=a.get("created_at"),
                updated_at=a.get("updated_at"),
                lead_time=a.get("lead_time"),
            )
            rows.append(row)
    return rows


def write_export(tasks: list[dict], path: Path, fmt: ExportFormat = "json") -> Path:
    """Write `tasks` (full JSON tasks) as a Label Studio export of format `fmt`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        path.write_text(json.dumps(tasks, indent=1, ensure_ascii=False), encoding="utf-8")
    elif fmt == "json-min":
        path.write_text(json.dumps(min_records(tasks), indent=2, ensure_ascii=False), encoding="utf-8")
    elif fmt == "csv":
        rows = min_records(tasks)
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow(
                    {
                        k: json.dumps(v) if isinstance(v, (dict, list)) else ("" if v is None else v)
                        for k, v in row.items()
                    }
                )
    else:
        raise ValueError(f"unknown export format {fmt!r}")
    return path


def tasks_from_folders(root: Path, suffixes: frozenset[str] = IMAGE_SUFFIXES) -> list[dict]:
    """Tasks for images sorted into class folders: each image labelled with its parent folder's name.

    References use local-files storage relative to `root`, so Label Studio (with `root`
    as its document root) and `--images-root root` both find the files.
    """
    root = Path(root)
    images = sorted(p for p in root.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
    return [
        labelled_task(i, f"/data/local-files/?d={path.relative_to(root).as_posix()}", path.parent.name)
        for i, path in enumerate(images, start=1)
    ]
