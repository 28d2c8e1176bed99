"""Pull a fresh export through the API, with image references that `lineinspect train` can open.

Label Studio writes image references the way it serves them (`/data/upload/...`,
`/data/local-files/?d=...`), which are no files on this machine. `pull` downloads each such
image once into a cache (`<cache>/<project>/...`, kept between pulls) and rewrites the
reference to the cached file's absolute path, in the JSON, JSON-MIN and CSV formats alike.
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

from annotation.labelstudio.cache import cache_path, fetch, is_served, write_atomic
from annotation.labelstudio.client import Connection, LabelStudioError, LabelStudioGone
from annotation.labelstudio.projects import get_project, project_control

Format = Literal["json", "json-min", "csv"]
EXPORT_TYPES = {"json": "JSON", "json-min": "JSON_MIN", "csv": "CSV"}


@dataclass(frozen=True)
class PullSummary:
    tasks: int
    labelled: int
    downloaded: int
    cached: int


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
    labelled = sum(1 for row in rows if _is_labelled(row, control.from_name, fmt))
    return PullSummary(tasks=len(rows), labelled=labelled, downloaded=len(missing), cached=len(wanted) - len(missing))


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


def _is_labelled(row: dict, from_name: str, fmt: Format) -> bool:
    if fmt == "json":
        return any(not a.get("was_cancelled") and a.get("result") for a in row.get("annotations") or [])
    return bool(row.get(from_name))
