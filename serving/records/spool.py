"""Where records wait, on disk, while the database is unavailable."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from serving.records.model import InspectionRecord

log = logging.getLogger("lineinspect.records")


class Spool:
    """Records the database could not take, one JSON object a line, until they can be written back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.pending = sum(1 for _ in path.open("rb")) if path.is_file() else 0

    def append(self, records: list[InspectionRecord]) -> None:
        """All the records or none: a write cut short (disk full) is taken back, so no line is ever half there."""
        data = "".join(r.model_dump_json() + "\n" for r in records).encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                size = os.lseek(fd, 0, os.SEEK_END)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                except OSError:
                    os.ftruncate(fd, size)
                    raise
            finally:
                os.close(fd)
            self.pending += len(records)

    def read(self) -> tuple[list[InspectionRecord], int]:
        """Every spooled record and the byte count they span (give it to `discard` once they are stored)."""
        with self._lock:
            if not self.path.is_file():
                return [], 0
            data = self.path.read_bytes()
        records = []
        for line in data.splitlines():
            try:
                records.append(InspectionRecord.model_validate_json(line))
            except ValueError:
                log.error("spool %s: skipping a line that is not a record: %r", self.path, line[:200])
        return records, len(data)

    def discard(self, nbytes: int) -> None:
        """Drop the first `nbytes` (records now stored), keeping what was appended since `read`."""
        with self._lock:
            rest = self.path.read_bytes()[nbytes:]
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(rest)
            tmp.replace(self.path)
            self.pending = rest.count(b"\n")
