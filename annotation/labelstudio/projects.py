"""Projects and their tasks: create a normal/defect project, import a folder of images once.

Two ways in. `upload` sends the files to Label Studio (each in its own multipart field, as its
import API wants), named `<sha256[:16]>_<name>` so that a second run recognises what is already
there by content. `local` points a local-files storage at the folder and syncs it: Label Studio
reads the files in place (the folder must lie under its document root) and skips keys it has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import httpx

from annotation.labelstudio.client import Connection, LabelStudioError, LabelStudioGone
from annotation.labelstudio.label_config import DEFAULT_LABELS, ChoicesControl, choices_control, classification_config
from annotation.manifest import IMAGE_SUFFIXES, sha256_file

_UPLOADED = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-f]{16})_")  # Label Studio's prefix, then ours
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
UPLOAD_BATCH = 50


@dataclass(frozen=True)
class ImportSummary:
    found: int
    added: int
    already_there: int


def not_found(project_id: int, url: str) -> str:
    return f"project {project_id} not found on {url} (`lineinspect labelstudio project list` shows the projects)"


def create_project(conn: Connection, title: str, labels: tuple[str, ...] = DEFAULT_LABELS, description: str = ""):
    """A new image-classification project with one normal/defect Choices control."""
    return conn.call(
        conn.sdk.projects.create, "create the project", title=title, description=description,
        label_config=classification_config(labels),
    )  # fmt: skip


def get_project(conn: Connection, project_id: int):
    return conn.call(
        conn.sdk.projects.get, f"read project {project_id}", project_id, not_found=not_found(project_id, conn.url)
    )


def project_control(conn: Connection, project_id: int, from_name: str | None = None) -> ChoicesControl:
    """The project's Choices control on an image; LabelConfigError when its config has none."""
    return choices_control(get_project(conn, project_id).label_config or "", from_name)


def list_tasks(conn: Connection, project_id: int) -> list[dict]:
    """Every task of the project with its annotations and predictions, as plain dicts."""
    get_project(conn, project_id)
    pager = conn.call(conn.sdk.tasks.list, "list the tasks", project=project_id, fields="all", page_size=500)
    return [task.dict() for task in conn.call(list, "list the tasks", pager)]


def image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise LabelStudioError(f"{folder} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise LabelStudioError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    return files


def uploaded_tasks(tasks: list[dict]) -> dict[str, dict]:
    """Tasks made by `upload`, by the content key in their file name."""
    return {m.group(1): t for t in tasks if (m := _UPLOADED.match(t.get("file_upload") or ""))}


def upload(conn: Connection, project_id: int, files: dict[str, Path], log=print) -> None:
    """Upload files as new tasks, each named `<key>_<name>` (`key`: the first 16 hex digits of its SHA-256)."""
    keys = list(files)
    for start in range(0, len(keys), UPLOAD_BATCH):
        batch = keys[start : start + UPLOAD_BATCH]
        fields = {
            f"file{i}": (f"{key}_{_SAFE.sub('_', files[key].name)}", files[key].read_bytes())
            for i, key in enumerate(batch)
        }
        try:
            response = conn.call(
                httpx.post, "upload images", f"{conn.url}/api/projects/{project_id}/import",
                headers=conn.sdk._client_wrapper.get_headers(), files=fields, timeout=300.0,
            )  # fmt: skip
        except LabelStudioGone as exc:
            raise LabelStudioGone(f"{exc}; {start} of {len(keys)} images confirmed uploaded") from None
        if response.status_code != 201:
            raise LabelStudioError(
                f"Label Studio refused the upload (HTTP {response.status_code}): {response.text[:300]}"
            )
        log(f"uploaded {min(start + UPLOAD_BATCH, len(keys))}/{len(keys)}")


def import_upload(conn: Connection, project_id: int, folder: Path, log=print) -> ImportSummary:
    """Upload the folder's images that the project does not hold yet (same bytes = same image)."""
    files = image_files(folder)
    held = uploaded_tasks(list_tasks(conn, project_id))
    todo: dict[str, Path] = {}
    for path in files:
        key = sha256_file(path)[:16]
        if key not in held:
            todo.setdefault(key, path)
    try:
        upload(conn, project_id, todo, log)
    except LabelStudioGone as exc:
        raise LabelStudioGone(f"{exc}. Import again once Label Studio answers: images it holds are skipped") from None
    return ImportSummary(found=len(files), added=len(todo), already_there=len(files) - len(todo))


def import_local(conn: Connection, project_id: int, folder: Path, document_root: Path | None = None) -> ImportSummary:
    """Connect the folder as local-files storage (once) and sync it; Label Studio serves the files in place."""
    folder = folder.resolve()
    count = len(image_files(folder))
    if document_root is not None and not folder.is_relative_to(document_root.resolve()):
        raise LabelStudioError(
            f"{folder} is not under Label Studio's document root {document_root}; it cannot serve it"
        )
    get_project(conn, project_id)
    before = len(list_tasks(conn, project_id))
    storages = conn.call(conn.sdk.import_storage.local.list, "list local storages", project=project_id)
    storage = next((s for s in storages if Path(s.path or "") == folder), None)
    if storage is None:
        suffixes = "|".join(s.lstrip(".") for s in sorted(IMAGE_SUFFIXES))
        storage = conn.call(
            conn.sdk.import_storage.local.create, "add local-files storage", project=project_id, path=str(folder),
            title=folder.name, regex_filter=rf"(?i).*\.({suffixes})$", use_blob_urls=True, recursive_scan=True,
        )  # fmt: skip
    conn.call(conn.sdk.import_storage.local.sync, "sync local-files storage", storage.id)
    added = len(list_tasks(conn, project_id)) - before
    return ImportSummary(found=count, added=added, already_there=count - added)
