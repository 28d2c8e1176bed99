"""Resolve an image reference from a Label Studio export to a local file.

Label Studio writes references the way *it* serves images (local-files storage, uploads,
cloud buckets, URLs); training needs the same bytes on this machine. Each reference maps
to a short list of candidate paths and the first regular, non-empty file wins, so the
user can point `images_root` at whatever copy of the images they have.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

_LOCAL_FILES = "/data/local-files"
_UPLOAD = "/data/upload/"
_UPLOAD_NAME = re.compile(r"^[0-9a-fA-F]{8}-(.+)$")  # Label Studio prefixes uploads with 8 hex characters


class UnresolvedReference(Exception):
    """A reference that does not lead to a usable file; `kind` is the Problem kind to report."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class ReferenceResolver:
    """Turns references into local paths under `root` (images root, or the export's folder)."""

    root: Path
    prefix_map: Mapping[str, Path] = field(default_factory=dict)

    def candidates(self, reference: str) -> list[Path]:
        """Where the referenced file may be, most specific first.

        Raises UnresolvedReference("path_escape") when a candidate would leave its root:
        an export must not make us read arbitrary files through `../` or absolute keys.
        """
        ref = reference.strip()
        for prefix in sorted(self.prefix_map, key=len, reverse=True):
            if ref.startswith(prefix):
                return [_join(self.prefix_map[prefix], _url_key(ref, ref[len(prefix) :]), reference)]
        parts = urlsplit(ref)
        is_url = "://" in ref
        if _is_label_studio(parts.path) and (not is_url or parts.scheme in ("http", "https")):
            return [_join(self.root, rel, reference) for rel in _label_studio_keys(parts, reference)]
        if is_url:
            key = _url_key(ref, parts.path.lstrip("/"))
            return [_join(self.root, rel, reference) for rel in _unique([f"{parts.netloc}/{key}", key])]
        if os.path.isabs(ref):
            return [Path(os.path.normpath(ref))]  # written explicitly in the export: trusted
        return [_join(self.root, ref, reference)]

    def resolve(self, reference: str) -> Path:
        """The first candidate that is a regular, non-empty file."""
        tried = self.candidates(reference)
        unusable = None
        for path in tried:
            try:
                st = path.stat()
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_size > 0:
                return path
            unusable = unusable or (path, "is empty" if stat.S_ISREG(st.st_mode) else "is not a regular file")
        if unusable:
            raise UnresolvedReference("unreadable_image", f"{unusable[0]} {unusable[1]}; replace it with the image")
        listed = ", ".join(str(p) for p in tried)
        raise UnresolvedReference(
            "missing_image", f"image file not found (tried {listed}); check --images-root or add a --prefix-map"
        )


def _is_label_studio(path: str) -> bool:
    return path.rstrip("/") == _LOCAL_FILES or path.startswith(_UPLOAD)


def _label_studio_keys(parts: SplitResult, reference: str) -> list[str]:
    """Paths relative to the images root for a file Label Studio serves (local-files storage, uploads)."""
    if parts.path.startswith(_UPLOAD):
        rel = unquote(parts.path[len(_UPLOAD) :])
        name = rel.rsplit("/", 1)[-1]
        match = _UPLOAD_NAME.match(name)
        return _unique([f"upload/{rel}", name] + ([match.group(1)] if match else []))
    d = parse_qs(parts.query).get("d")
    if not d or not d[0]:
        raise UnresolvedReference("bad_reference", f"local-files URL {reference!r} has no ?d= parameter; fix the task")
    return [d[0]]


def _url_key(reference: str, key: str) -> str:
    """The object key as a file path: web URLs are percent-encoded and may carry a query."""
    if reference.startswith(("http://", "https://")):
        return unquote(key.split("?", 1)[0].split("#", 1)[0])
    return key


def _join(root: Path, rel: str, reference: str) -> Path:
    """`root/rel`, normalised without following symlinks, refused when it leaves `root`."""
    base = os.path.normpath(os.path.abspath(root))
    path = os.path.normpath(os.path.join(base, rel))
    if os.path.commonpath([base, path]) != base:
        raise UnresolvedReference(
            "path_escape",
            f"reference {reference!r} points outside {base} (to {path}); refused. "
            "Fix the reference, or write an absolute path in the export if that file is intended",
        )
    return Path(path)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
