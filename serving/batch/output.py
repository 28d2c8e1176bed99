"""Result rows that survive an interruption, and the final CSV, JSON Lines or Parquet written atomically.

While a run goes, each completed chunk's rows are appended as JSON lines to `OUT.rows` and fsynced,
then a line `{"rows", "bytes", "defects", "errors"}` is appended to `OUT.journal` and fsynced. The
journal's first line fingerprints the run (model file and input list). `--resume` takes the last
whole journal line, cuts `OUT.rows` back to its byte count (dropping rows written after it, whose
journal line never made it), and continues from that row: no row is lost or written twice, whether
the run died by Ctrl-C, kill -9 or power loss. At the end the rows are converted, streaming, to
`OUT.tmp`, fsynced and renamed to OUT, so OUT is either absent, the previous file, or complete.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from annotation.errors import LineInspectError

COLUMNS = ["path", "score", "verdict", "label", "threshold", "model_version", "true_label", "error"]
SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
FORMATS = ("csv", "jsonl", "parquet")
PARQUET_ROW_GROUP = 10_000


def output_format(out: Path, fmt: str | None) -> str:
    """The format asked for, else the one the file's suffix names."""
    if fmt is None:
        fmt = SUFFIXES.get(out.suffix.lower())
        if fmt is None:
            raise LineInspectError(f"cannot tell the format of {out} from its suffix: pass --format csv|jsonl|parquet")
    if fmt not in FORMATS:
        raise LineInspectError(f"--format must be csv, jsonl or parquet, not {fmt!r}")
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:  # found out now, not after the run
        raise LineInspectError("Parquet output needs pyarrow: pip install 'lineinspect[serve]', or use .csv/.jsonl")
    return fmt


def fingerprint(model: Path, inputs: list[tuple[Path, str]]) -> str:
    """What a run must share with the one it resumes: the model file and the inputs, in order."""
    digest = hashlib.sha256(Path(model).read_bytes())
    for path, label in inputs:
        digest.update(f"\0{path}\0{label}".encode())
    return digest.hexdigest()


@dataclass
class Done:
    """How far a run got: rows kept, their size in the rows file, and the counts among them."""

    rows: int = 0
    bytes: int = 0
    defects: int = 0
    errors: int = 0


class RowLog:
    """The rows file and its journal beside the output."""

    def __init__(self, out: Path, run_id: str) -> None:
        self.out, self.run_id = Path(out), run_id
        self.rows_path = self.out.with_name(self.out.name + ".rows")
        self.journal_path = self.out.with_name(self.out.name + ".journal")

    def interrupted(self) -> bool:
        return self.journal_path.is_file()

    def open(self, resume: bool) -> Done:
        """Continue the journalled run (resume) or start empty; returns how far the run already is."""
        done = self._read_journal() if resume else Done()
        if resume and done.bytes > (self.rows_path.stat().st_size if self.rows_path.is_file() else 0):
            raise LineInspectError(f"{self.rows_path} is shorter than its journal says: run again without --resume")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._rows = open(self.rows_path, "r+b" if resume else "wb")
        self._rows.truncate(done.bytes)
        self._rows.seek(done.bytes)
        if resume:
            self._journal = open(self.journal_path, "ab")
        else:
            self._journal = open(self.journal_path, "wb")
            self._write_journal({"run": self.run_id})
        _fsync_dir(self.out.parent)
        self.done = done
        return done

    def append(self, rows: list[dict], defects: int, errors: int) -> None:
        """Make a chunk's rows durable, then record them as done."""
        data = "".join(json.dumps(row) + "\n" for row in rows).encode()
        self._rows.write(data)
        self._rows.flush()
        os.fsync(self._rows.fileno())
        d = self.done
        self.done = Done(d.rows + len(rows), d.bytes + len(data), d.defects + defects, d.errors + errors)
        self._write_journal(asdict(self.done))

    def finish(self, fmt: str) -> None:
        """Write the output atomically, then drop the rows file and journal."""
        self.close()
        tmp = self.out.with_name(self.out.name + ".tmp")
        if fmt == "jsonl":
            shutil.copyfile(self.rows_path, tmp)
        elif fmt == "csv":
            _write_csv(self._read_rows(), tmp)
        else:
            _write_parquet(self._read_rows(), tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.out)
        _fsync_dir(self.out.parent)
        self.journal_path.unlink()
        self.rows_path.unlink()

    def close(self) -> None:
        for f in (getattr(self, "_rows", None), getattr(self, "_journal", None)):
            if f is not None:
                f.close()

    def _write_journal(self, entry: dict) -> None:
        self._journal.write((json.dumps(entry) + "\n").encode())
        self._journal.flush()
        os.fsync(self._journal.fileno())

    def _read_journal(self) -> Done:
        lines = self.journal_path.read_bytes().split(b"\n")[:-1]  # a torn last line has no newline yet
        try:
            header, entries = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
        except (IndexError, ValueError):
            raise LineInspectError(f"{self.journal_path} is damaged: run again without --resume") from None
        if header.get("run") != self.run_id:
            raise LineInspectError(
                f"{self.out} was being written with another model or other inputs: "
                "run again with those, or without --resume to start over"
            )
        return Done(**entries[-1]) if entries else Done()

    def _read_rows(self) -> Iterator[dict]:
        with open(self.rows_path, encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)


def read_rows(path: Path) -> list[dict]:
    """An output file read back as rows (missing values as None), whatever its format."""
    fmt = output_format(Path(path), None)
    if fmt == "jsonl":
        return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key, value in row.items():
            row[key] = None if value == "" else float(value) if key in ("score", "threshold") else value
    return rows


def _write_csv(rows: Iterator[dict], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _write_parquet(rows: Iterator[dict], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    floats = {"score", "threshold"}
    schema = pa.schema([(c, pa.float64() if c in floats else pa.string()) for c in COLUMNS])
    with pq.ParquetWriter(path, schema) as writer:
        group: list[dict] = []
        for row in rows:
            group.append(row)
            if len(group) == PARQUET_ROW_GROUP:
                writer.write_table(pa.Table.from_pylist(group, schema))
                group = []
        writer.write_table(pa.Table.from_pylist(group, schema))


def _fsync_dir(folder: Path) -> None:
    """Make a created or renamed file's directory entry durable too."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
