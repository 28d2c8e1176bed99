"""Images that Label Studio serves, kept as files here: downloaded once, written whole or not at all."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from annotation.labelstudio.client import Connection

SERVED = ("/data/upload/", "/data/local-files/")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def is_served(reference: object, url: str) -> bool:
    """Whether a task's image reference points into Label Studio (relative, or under its URL)."""
    return isinstance(reference, str) and (reference.startswith(SERVED) or reference.startswith(url + "/data/"))


def cache_path(folder: Path, reference: str) -> Path:
    """A file name for a served reference: readable, unique (hash of the reference), suffix kept."""
    parts = urlsplit(reference)
    path = parse_qs(parts.query).get("d", [parts.path])[0]
    name = _SAFE.sub("_", unquote(path).rsplit("/", 1)[-1]) or "image"
    return folder / f"{hashlib.sha256(reference.encode()).hexdigest()[:12]}-{name}"


def fetch(conn: Connection, reference: str, folder: Path) -> Path:
    """The served image as a file under `folder`, downloaded unless it is already there."""
    path = cache_path(folder, reference)
    if not path.is_file():
        write_atomic(path, conn.download(reference))
    return path


def write_atomic(path: Path, data: bytes) -> None:
    """`path` holds `data` whole or is as it was: written under a temporary name, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
