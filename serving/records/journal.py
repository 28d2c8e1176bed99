"""The record journal: every inspection's record is written to the OS before its answer leaves.

The record writer stores records in batches, off the request path, so a process killed with
SIGKILL (or by the OOM killer) would lose the records still queued although their cameras got an
answer. So `append` writes each record's JSON line to the current journal segment first (one
`write`, no Python buffering: the kernel keeps it when the process dies; with `fsync` it also
survives a power cut, at the cost of a disk flush per request). The writer rotates the segment
at each batch and deletes a segment once every record in it is stored or spooled. At start, the
segments a killed process left are read back and stored; inserts skip records already stored,
so replaying a record twice is harmless.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from pathlib import Path

from serving.records.model import InspectionRecord

log = logging.getLogger("lineinspect.records")


class Journal:
    def __init__(self, folder: Path, fsync: bool = False) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.fsync = folder, fsync
        self.leftovers = sorted(folder.glob("segment-*.jsonl"))  # from a process that did not stop cleanly
        self._lock = threading.Lock()
        self._seq = 0
        self._number = max((int(p.stem.split("-")[1]) for p in self.leftovers), default=0)
        self._closed: list[tuple[Path, int]] = []  # rotated segments and the last sequence number in each
        self._open()

    def append(self, record: InspectionRecord) -> int:
        """Write the record through to the OS; its sequence number."""
        line = (record.model_dump_json() + "\n").encode()
        with self._lock:
            if os.write(self._fd, line) != len(line):  # a full disk or a file-size limit cut it short: take it back
                os.ftruncate(self._fd, self._size)
                raise OSError(errno.EFBIG, f"short write to {self._path}")
            self._size += len(line)
            if self.fsync:
                os.fsync(self._fd)
            self._seq += 1
            self._in_segment += 1
            return self._seq

    def rotate(self) -> None:
        """Start a new segment (when the current one has records), so that stored ones can be dropped."""
        with self._lock:
            if self._in_segment:
                os.close(self._fd)
                self._closed.append((self._path, self._seq))
                self._open()

    def stored_up_to(self, seq: int) -> None:
        """Every record up to `seq` is stored or spooled: drop the segments that hold only those."""
        while self._closed and self._closed[0][1] <= seq:
            self._closed.pop(0)[0].unlink(missing_ok=True)

    def recover(self) -> list[InspectionRecord]:
        """The records in the leftover segments (a line cut short by the kill is skipped and counted)."""
        records, cut = [], 0
        for path in self.leftovers:
            for line in path.read_bytes().splitlines():
                try:
                    records.append(InspectionRecord.model_validate_json(line))
                except ValueError:
                    cut += 1
        if self.leftovers:
            skipped = f", {cut} cut-short lines skipped" if cut else ""
            log.warning("journal: %d records from %d segments of a process that did not stop cleanly%s",
                        len(records), len(self.leftovers), skipped)  # fmt: skip
        return records

    def discard_leftovers(self) -> None:
        for path in self.leftovers:
            path.unlink(missing_ok=True)
        self.leftovers = []

    def close(self, everything_stored: bool) -> None:
        """Close the current segment; drop every segment when all their records are stored or spooled."""
        with self._lock:
            os.close(self._fd)
            if everything_stored:
                for path, _ in self._closed:
                    path.unlink(missing_ok=True)
                self._path.unlink(missing_ok=True)

    def _open(self) -> None:
        self._number += 1
        self._path = self.folder / f"segment-{self._number:08d}.jsonl"
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._in_segment = 0
        self._size = 0  # bytes written to it (only this process appends to it)
