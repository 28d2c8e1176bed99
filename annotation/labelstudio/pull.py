"""Pull a fresh export through the API, with image references that `lineinspect train` can open.

Label Studio writes image references the way it serves them (`/data/upload/...`,
`/data/local-files/?d=...`), which are no files on this machine. `pull` downloads each such
image once into a cache (`<cache>/<project>/...`, kept between pulls) and rewrites the
reference to the cached file's absolute path, in the JSON, JSON-MIN and CSV formats alike.
Tasks that give no label are counted by kind from the project's task list, with how many of them
the file lacks: Label Studio's JSON-MIN and CSV exports leave skipped tasks out without a word
(and show a draft-only task as unlabelled), so the summary is what says so.
The export and each image are written to a temporary file and renamed, so a failed pull leaves
no half file; when Label Studio stops answering midway, the error says what is already cached.
"""

from __future__ import annotations

import csv
import io
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from annotation.exports import why_no_votes
from annotation.labelstudio.cache import cache_path, fetch, is_served, write_atomic
from annotation.labelstudio.client import Connection, LabelStudioError, LabelStudioGone
from annotation.labelstudio.projects import get_project, list_tasks, project_control

Format = Literal["json", "json-min", "csv"]
EXPORT_TYPES = {"json": "JSON", "json-min": "JSON_MIN", "csv": "CSV"}
LEFT_OUT = ("skipped", "unlabelled", "draft_only")  # tasks that give no label, as `dataset check` names them


@dataclass(frozen=True)
class PullSummary:
    tasks: int  # in the project
    rows: int  # in the file (JSON-MIN and CSV: one per annotation)
    labelled: int
    left_out: dict[str, int]  # kind (LEFT_OUT) -> tasks of that kind
    not_in_file: dict[str, int]  # kind -> those of them the file does not hold at all
    downloaded: int
    cached: int

    def left_out_text(self) -> str:
        """`1 skipped (1 not in the file), 2 unlabelled`, or `nothing left out`."""
        said = [
            f"{count} {kind.replace('_', '-')}"
            + (f" ({absent} not in the file)" if (absent := self.not_in_file[kind]) else "")
            for kind, count in self.left_out.items()
            if count
        ]
        return "left out: " + ", ".join(said) if said else "nothing left out"


def pull(
    conn: Connection, project_id: int, out: Path, fmt: Format, cache: Path, from_name: str | None = None
) -> PullSummary:
    """Export every task of the project to `out` in `fmt`, images resolved to files under `cache`."""
    get_project(conn, project_id)
    control = project_control(conn, project_id, from_name)
    folder = cache / str(project_id)
    missing: list[str] = []
    try:
        raw = conn.call(
            lambda: b"".join(
                conn.sdk.projects.exports.download_sync(
                    project_id, export_type=EXPORT_TYPES[fmt], download_all_tasks=True
                )
            ),
            "export the project",
        )
        rows, write = _parse(raw, fmt)
        tasks = list_tasks(conn, project_id)
        images = [_image_cell(row, control.image_key, fmt) for row in rows]
        wanted = sorted({ref for ref in images if is_served(ref, conn.url)})
        missing = [ref for ref in wanted if not cache_path(folder, ref).is_file()]
        local = _download(conn, wanted, folder)
    except LabelStudioGone as exc:
        done = sum(cache_path(folder, ref).is_file() for ref in missing)
        cached = (
            f"{done} of {len(missing)} new images downloaded whole into {folder}" if missing else "no image downloaded"
        )
        previous = " (the previous file is unchanged)" if out.exists() else ""
        raise LabelStudioGone(
            f"{exc}; nothing written to {out}{previous}, {cached}. Pull again once Label Studio answers: "
            "images already downloaded are not fetched twice"
        ) from None
    for row in rows:
        ref = _image_cell(row, control.image_key, fmt)
        if ref in local:
            _set_image_cell(row, control.image_key, fmt, str(local[ref].resolve()))
    write_atomic(out, write(rows))
    kinds = {str(task["id"]): _kind(task, control.from_name) for task in tasks}
    in_file = {str(row.get("id")) for row in rows}
    return PullSummary(
        tasks=len(tasks), rows=len(rows), labelled=sum(kind == "labelled" for kind in kinds.values()),
        left_out={kind: sum(k == kind for k in kinds.values()) for kind in LEFT_OUT},
        not_in_file={kind: sum(k == kind and i not in in_file for i, k in kinds.items()) for kind in LEFT_OUT},
        downloaded=len(missing), cached=len(wanted) - len(missing),
    )  # fmt: skip


def _kind(task: dict, from_name: str) -> str:
    """`labelled`, or which kind of task that gives no label (LEFT_OUT), judged as `dataset check` judges."""
    annotations = task.get("annotations") or []
    live = [a for a in annotations if not a.get("was_cancelled")]
    if any(r.get("from_name") == from_name for a in live for r in a.get("result") or []):
        return "labelled"
    return why_no_votes(annotations, live, task, from_name)[0]


def _download(conn: Connection, references: list[str], folder: Path) -> dict[str, Path]:
    """Each served image as a file, 8 downloads at a time; after a failure the rest are not started."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {ref: pool.submit(fetch, conn, ref, folder) for ref in references}
        try:
            return {ref: future.result() for ref, future in futures.items()}
        except BaseException:
            pool.shutdown(cancel_futures=True)  # the `with` still waits for the downloads under way
            raise


def _parse(raw: bytes, fmt: Format):
    """The export's rows, and how to write them back in the same format."""
    try:
        if fmt == "csv":
            reader = csv.DictReader(io.StringIO(raw.decode("utf-8")))
            rows, fields = list(reader), reader.fieldnames or []

            def write_csv(items: list[dict]) -> bytes:
                buffer = io.StringIO()
                writer = csv.DictWriter(buffer, fieldnames=fields, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\r\n")
                writer.writeheader()
                writer.writerows(items)
                return buffer.getvalue().encode()

            return rows, write_csv
        rows = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise LabelStudioError(f"Label Studio sent an export that does not parse as {fmt}: {exc}") from None
    if not isinstance(rows, list):
        raise LabelStudioError(f"Label Studio sent a {fmt} export that is not a list of tasks")
    return rows, lambda items: json.dumps(items, ensure_ascii=False, indent=1).encode()


def _image_cell(row: dict, key: str, fmt: Format):
    return (row.get("data") or {}).get(key) if fmt == "json" else row.get(key)


def _set_image_cell(row: dict, key: str, fmt: Format, value: str) -> None:
    (row["data"] if fmt == "json" else row)[key] = value
