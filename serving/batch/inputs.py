"""The images an offline inspection covers: folders, globs, file lists or Label Studio exports, in a stable order."""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

from annotation.errors import LineInspectError
from annotation.exports import ImportOptions, load_exports
from annotation.manifest import IMAGE_SUFFIXES

EXPORT_SUFFIXES = {".json", ".csv"}
LIST_SUFFIXES = {".txt", ".lst", ".list"}


def collect_inputs(inputs: Iterable[str], options: ImportOptions) -> list[tuple[Path, str]]:
    """(path, true label or "") for every image named by folders, globs, files, file lists or exports, in order."""
    found: list[tuple[Path, str]] = []
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            found += [(p, "") for p in sorted(path.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        elif path.is_file() and path.suffix.lower() in EXPORT_SUFFIXES:
            manifest = load_exports([path], options)
            found += [(i.path, i.label) for i in manifest.items]
        elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            found += [(p, "") for p in read_file_list(path)]
        elif path.is_file():
            found.append((path, ""))
        elif matches := sorted(glob.glob(spec, recursive=True)):
            found += [(Path(m), "") for m in matches if Path(m).suffix.lower() in IMAGE_SUFFIXES]
        else:
            raise LineInspectError(
                f"input not found: {spec} (give folders, files, globs, file lists or Label Studio exports)"
            )
    return found


def read_file_list(path: Path) -> list[Path]:
    """One image path per line (blank lines and # comments skipped); relative paths are relative to the list.

    Listed files are kept even when missing, so each shows up as an error row rather than vanishing."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [path.parent / line for line in lines if line and not line.startswith("#")]
