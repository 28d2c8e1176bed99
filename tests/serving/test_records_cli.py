"""`lineinspect records export|prune`: records out for analysis and past their retention, on SQLite and PostgreSQL,
through the real command line against a real database."""

from __future__ import annotations

import csv
import json
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import sqlalchemy as sa
import yaml

from serving.records.database import Database
from serving.records.export import SCHEMA, export_records
from serving.records.model import InspectionRecord
from serving.records.tables import inspections
from tests.serving.conftest import cli

COLUMNS = [c.name for c in inspections.columns]
T0 = datetime(2026, 12, 1, 6, tzinfo=UTC)


def service_config(tmp_path: Path, database_url: str, name: str = "serve.yaml") -> Path:
    config = tmp_path / name
    config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "database_url": database_url}))
    return config


def stored(database_url: str, made: list[InspectionRecord]) -> Database:
    db = Database(database_url)
    db.migrate()
    for start in range(0, len(made), 5_000):
        db.insert_inspections(made[start : start + 5_000])
    return db


def made_at(n: int, start: datetime = T0) -> list[InspectionRecord]:
    """`n` records two to a second (ties in time, so the order by id shows), on lines L0 and L1."""
    return [
        InspectionRecord(id=f"r{k:06d}", created_at=start + timedelta(seconds=k // 2), line=f"L{k % 2}", camera="cam-1",
                         image_bytes=1000 + k, threshold=0.5, score=k / n, verdict="defect" if k % 3 else "normal",
                         ocr_fields={"serial": f"S{k}", "lot": None} if k % 4 == 0 else None,
                         ocr_missing=k % 4 == 0 and k % 8 == 0)
        for k in range(n)
    ]  # fmt: skip


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames), list(reader)


def test_export_writes_every_record_in_range_once_oldest_first_with_the_same_columns_as_csv_and_parquet(
    database_url, tmp_path
):
    made = made_at(40)
    stored(database_url, made).close()
    config = service_config(tmp_path, database_url)
    since, until = T0 + timedelta(seconds=3), T0 + timedelta(seconds=15)
    wanted = [r for r in made if since <= r.created_at < until]  # made is already by time, then id
    for name in ("x.csv", "x.parquet"):
        result = cli("records", "export", "--config", config, "--since", "2026-12-01T06:00:03",
                     "--until", "2026-12-01T06:00:15", "--out", tmp_path / name)  # fmt: skip
        assert f"{len(wanted)} records" in result.stderr
    header, rows = read_csv(tmp_path / "x.csv")
    table = pq.read_table(tmp_path / "x.parquet")
    assert header == table.column_names == COLUMNS
    assert table.schema == SCHEMA
    assert [r["id"] for r in rows] == table.column("id").to_pylist() == [r.id for r in wanted]
    parquet = table.to_pylist()
    for record, row, text in zip(wanted, parquet, rows, strict=True):
        assert row["created_at"] == record.created_at
        assert (row["line"], row["score"], row["image_bytes"]) == (record.line, record.score, record.image_bytes)
        assert row["ocr_missing"] == record.ocr_missing
        expected = None if record.ocr_fields is None else json.dumps(record.ocr_fields, sort_keys=True)
        assert row["ocr_fields"] == expected
        assert text["ocr_fields"] == (expected or "")
        assert float(text["score"]) == record.score


def test_export_of_one_line_holds_only_that_line(database_url, tmp_path):
    made = made_at(30)
    stored(database_url, made).close()
    out = tmp_path / "l1.csv"
    cli("records", "export", "--config", service_config(tmp_path, database_url), "--line", "L1", "--out", out)
    assert [r["id"] for r in read_csv(out)[1]] == [r.id for r in made if r.line == "L1"]


def test_export_of_20000_records_holds_a_page_in_memory_not_the_table(database_url, tmp_path):
    """Peak Python memory while exporting is far below what the same rows take when fetched all at once."""
    n = 20_000
    db = stored(database_url, made_at(n))
    try:
        tracemalloc.start()
        with db.engine.connect() as connection:
            every = connection.execute(sa.select(inspections)).all()
        _, holding_all = tracemalloc.get_traced_memory()
        del every
        tracemalloc.stop()
        for name in ("big.parquet", "big.csv"):
            tracemalloc.start()
            started = time.perf_counter()
            written = export_records(db, tmp_path / name)
            seconds = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"{database_url.split(':')[0]} export of {n} records to {name}: {seconds:.2f} s (under tracemalloc), "
                  f"peak {peak / 2**20:.1f} MiB; all rows fetched at once: {holding_all / 2**20:.1f} MiB")  # fmt: skip
            assert written == n
            assert peak < holding_all / 4
        assert pq.read_metadata(tmp_path / "big.parquet").num_rows == n
    finally:
        db.close()


def test_prune_removes_only_old_records_and_their_images_and_a_dry_run_removes_nothing(database_url, tmp_path):
    now = datetime.now(UTC)
    old = made_at(6, now - timedelta(days=100))
    recent = made_at(4, now - timedelta(days=10))
    for r in recent:
        r.id = r.id.replace("r", "n")
    images = tmp_path / "images"
    images.mkdir()
    for r in old[:3] + recent[:2]:
        r.image_path = str(images / f"{r.id}.jpg")
        Path(r.image_path).write_bytes(b"jpeg")
    old[3].image_path = str(images / "gone.jpg")  # kept once, removed by hand since
    db = stored(database_url, old + recent)
    config = service_config(tmp_path, database_url)

    dry = cli("records", "prune", "--config", config, "--older-than", "90d", "--dry-run")
    assert "would remove 6 records" in dry.stderr and "3 kept images (1 images already missing)" in dry.stderr
    assert len(list(images.iterdir())) == 5
    pruned = cli("records", "prune", "--config", config, "--older-than", "90d")
    assert "removed 6 records" in pruned.stderr and "3 kept images (1 images already missing)" in pruned.stderr
    with db.engine.connect() as connection:
        left = set(connection.execute(sa.select(inspections.c.id)).scalars())
    db.close()
    assert left == {r.id for r in recent}
    assert sorted(p.name for p in images.iterdir()) == sorted(Path(r.image_path).name for r in recent[:2])
    again = cli("records", "prune", "--config", config, "--older-than", "2160h")  # 90 days in hours
    assert "removed 0 records" in again.stderr


def test_bad_inputs_are_refused_with_one_line_and_exit_2(tmp_path):
    config = service_config(tmp_path, f"sqlite:///{tmp_path / 'ok.db'}")
    missing = service_config(tmp_path, f"sqlite:///{tmp_path / 'no-such-folder' / 'x.db'}", "missing.yaml")
    cases = {
        "--out": (["export", "--config", config, "--out", tmp_path / "x.xlsx"], "write a .csv or a .parquet"),
        "range": (
            [
                "export",
                "--config",
                config,
                "--since",
                "2026-12-02",
                "--until",
                "2026-12-01",
                "--out",
                tmp_path / "x.csv",
            ],
            "--since must be before --until",
        ),  # fmt: skip
        "database": (["export", "--config", missing, "--out", tmp_path / "x.csv"], "cannot open the database"),
        "age": (["prune", "--config", config, "--older-than", "90 days"], "e.g. 90d, 12h"),
        "age unit": (["prune", "--config", config, "--older-than", "3y"], "e.g. 90d, 12h"),
    }
    for what, (args, says) in cases.items():
        result = cli("records", *args, check=False)
        assert result.returncode == 2, what
        assert result.stderr.startswith("error:") and says in result.stderr, (what, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, (what, result.stderr)
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x.xlsx").exists()
