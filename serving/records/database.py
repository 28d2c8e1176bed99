"""Inspection records, API keys and model loads in SQLite (WAL) or PostgreSQL, through SQLAlchemy 2.

Records are written off the request path by `RecordWriter`: a bounded queue, batched inserts, and a
JSONL spool while the database is unavailable, replayed when it is back. Times are stored as naive UTC.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from pydantic import BaseModel
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from annotation.errors import LineInspectError
from serving.metrics import Metrics
from serving.settings import RecordSettings
from vision.preprocess import probe

if TYPE_CHECKING:
    from serving.journal import Journal

log = logging.getLogger("lineinspect.records")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DATABASE_URL_FORMS = "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DATABASE"
SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "TIFF": ".tif"}  # the formats the engine accepts

metadata = sa.MetaData()
inspections = sa.Table(
    "inspections", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    *(sa.Column(name, sa.String(128)) for name in ("line", "station", "camera", "part_id", "client")),
    sa.Column("image_sha256", sa.String(64)),
    sa.Column("image_bytes", sa.Integer(), nullable=False),
    sa.Column("image_path", sa.String(1024)),
    sa.Column("model_name", sa.String(128)),
    sa.Column("model_version", sa.String(128)),
    sa.Column("model_sha256", sa.String(64)),
    sa.Column("threshold", sa.Float()),
    sa.Column("score", sa.Float()),
    sa.Column("verdict", sa.String(16)),
    sa.Column("label", sa.String(128)),
    *(sa.Column(f"{stage}_ms", sa.Float()) for stage in ("decode", "preprocess", "queue", "infer", "total")),
    sa.Column("error_code", sa.String(64)),
    sa.Column("error", sa.Text()),
    sa.Column("ocr_template", sa.String(128)),
    sa.Column("ocr_fields", sa.JSON()),
    sa.Column("ocr_missing", sa.Boolean()),
    sa.Column("ocr_problems", sa.Text()),
    sa.Column("ocr_ms", sa.Float()),
    *(sa.Column(name, sa.Float()) for name in ("brightness", "contrast", "sharpness")),
)  # fmt: skip
api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("revoked_at", sa.DateTime()),
)  # fmt: skip
model_loads = sa.Table(
    "model_loads", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("loaded_at", sa.DateTime(), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("version", sa.String(128), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("path", sa.String(1024), nullable=False),
)  # fmt: skip


@dataclass(frozen=True)
class Tags:
    """Where an image came from, as its sender says."""

    line: str | None = None
    station: str | None = None
    camera: str | None = None
    part_id: str | None = None


class InspectionRecord(BaseModel):
    """One inspection as stored, spooled and listed: what was seen, by which model, with what result."""

    id: str
    created_at: datetime
    line: str | None = None
    station: str | None = None
    camera: str | None = None
    part_id: str | None = None
    client: str | None = None  # the API key's name
    image_sha256: str | None = None
    image_bytes: int = 0
    image_path: str | None = None  # where the image was kept for re-annotation
    model_name: str | None = None
    model_version: str | None = None
    model_sha256: str | None = None
    threshold: float | None = None
    score: float | None = None
    verdict: str | None = None  # normal | defect; None when the image was refused
    label: str | None = None
    decode_ms: float | None = None
    preprocess_ms: float | None = None
    queue_ms: float | None = None
    infer_ms: float | None = None
    total_ms: float | None = None
    error_code: str | None = None
    error: str | None = None
    ocr_template: str | None = None  # the label template read with ocr=TEMPLATE
    ocr_fields: dict[str, str | None] | None = None  # field name -> validated value, None when missing or invalid
    ocr_missing: bool | None = None  # a required field missing or invalid, or no text read at all
    ocr_problems: str | None = None  # why: "serial: not found", "no text found", ...
    ocr_ms: float | None = None
    brightness: float | None = None  # image quality (vision.quality), for the line's drift monitoring
    contrast: float | None = None
    sharpness: float | None = None

    def row(self) -> dict[str, Any]:
        return {**self.__dict__, "created_at": naive_utc(self.created_at)}


@dataclass(frozen=True)
class ApiKey:
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class InspectionFilter:
    line: str | None = None
    station: str | None = None
    camera: str | None = None
    part_id: str | None = None
    verdict: str | None = None  # normal | defect | error
    since: datetime | None = None
    until: datetime | None = None
    ocr_missing: bool | None = None


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


class Database:
    """The service's one database; every method is blocking (call it from a thread in async code)."""

    def __init__(self, url: str) -> None:
        try:  # errors here may quote the URL, so they never do: it may hold a password
            backend = sa.engine.make_url(url).get_backend_name()
        except ArgumentError:
            raise LineInspectError(f"database_url is not a database URL: write {DATABASE_URL_FORMS}") from None
        if backend not in ("sqlite", "postgresql"):
            raise LineInspectError(f"database_url: {backend} is not supported: write {DATABASE_URL_FORMS}")
        try:
            connect = {"connect_timeout": 5} if backend == "postgresql" else {}  # an unreachable host fails fast
            self.engine = sa.create_engine(url, pool_pre_ping=True, connect_args=connect)
        except ModuleNotFoundError as exc:
            raise LineInspectError(f"database_url needs the {exc.name} package: pip install it") from None
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)

    def migrate(self) -> None:
        """Bring the schema to the newest revision shipped in serving/migrations. Instances started together on one
        PostgreSQL database take turns: the first migrates, the others then find the schema current."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            advisory_lock(connection, "lineinspect:migrations")
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def insert_inspections(self, records: list[InspectionRecord]) -> None:
        """One transaction; records already stored (a replayed spool) are skipped."""
        insert = _insert_ignoring_duplicates(self.engine.dialect.name)
        with self.engine.begin() as connection:
            connection.execute(insert, [r.row() for r in records])

    def list_inspections(self, where: InspectionFilter, limit: int, offset: int) -> list[InspectionRecord]:
        """Newest first."""
        query = sa.select(inspections)
        for name in ("line", "station", "camera", "part_id"):
            if (value := getattr(where, name)) is not None:
                query = query.where(inspections.c[name] == value)
        if where.verdict == "error":
            query = query.where(inspections.c.error_code.is_not(None))
        elif where.verdict is not None:
            query = query.where(inspections.c.verdict == where.verdict)
        if where.ocr_missing is not None:
            query = query.where(inspections.c.ocr_missing == where.ocr_missing)
        if where.since is not None:
            query = query.where(inspections.c.created_at >= naive_utc(where.since))
        if where.until is not None:
            query = query.where(inspections.c.created_at < naive_utc(where.until))
        query = query.order_by(inspections.c.created_at.desc(), inspections.c.id.desc()).limit(limit).offset(offset)
        with self.engine.connect() as connection:
            return [_record(row) for row in connection.execute(query).mappings()]

    def get_inspection(self, inspection_id: str) -> InspectionRecord | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(inspections).where(inspections.c.id == inspection_id)).mappings().first()
        return _record(row) if row else None

    def record_model_load(self, name: str, version: str, sha256: str, path: str, loaded_at: datetime) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                model_loads.insert(),
                {"name": name, "version": version, "sha256": sha256, "path": path, "loaded_at": naive_utc(loaded_at)},
            )

    def model_loads(self, limit: int = 20) -> list[dict[str, Any]]:
        """The models this database has seen loaded, newest first."""
        query = sa.select(model_loads).order_by(model_loads.c.id.desc()).limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [{**row, "loaded_at": aware(row["loaded_at"])} for row in rows]

    def add_key(self, name: str, key_hash: str, prefix: str) -> None:
        with self.engine.begin() as connection:
            active = connection.execute(
                sa.select(api_keys.c.id).where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
            ).first()
            if active:
                raise LineInspectError(f"an active key named {name!r} exists: revoke it first or choose another name")
            connection.execute(
                api_keys.insert(),
                {"name": name, "key_hash": key_hash, "prefix": prefix, "created_at": naive_utc(datetime.now(UTC))},
            )

    def revoke_key(self, name: str) -> int:
        with self.engine.begin() as connection:
            result = connection.execute(
                api_keys.update()
                .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=naive_utc(datetime.now(UTC)))
            )
        if not result.rowcount:
            raise LineInspectError(f"no active key named {name!r} (see `lineinspect keys list`)")
        return result.rowcount

    def list_keys(self) -> list[ApiKey]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(api_keys).order_by(api_keys.c.id)).mappings().all()
        return [ApiKey(r["name"], r["prefix"], aware(r["created_at"]), aware(r["revoked_at"])) for r in rows]

    def active_key_hashes(self) -> dict[str, str]:
        """key hash -> key name, for every key not revoked."""
        query = sa.select(api_keys.c.key_hash, api_keys.c.name).where(api_keys.c.revoked_at.is_(None))
        with self.engine.connect() as connection:
            return dict(connection.execute(query).tuples().all())

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across a process crash; WAL makes it safe
    cursor.execute("PRAGMA busy_timeout=5000")  # the keys CLI may write while the service does
    cursor.close()


def advisory_lock(connection: sa.Connection, name: str) -> None:
    """Wait for the PostgreSQL advisory lock called `name` and hold it until the connection's transaction ends, so that
    service instances sharing the database do one thing at a time. SQLite serves one instance: nothing to take."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})


def _insert_ignoring_duplicates(dialect: str):
    """An insert of inspection records that skips those whose id is already stored."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(inspections).on_conflict_do_nothing(index_elements=["id"])


def _record(row) -> InspectionRecord:
    return InspectionRecord.model_validate({**row, "created_at": aware(row["created_at"])})


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


_STOP = object()


class RecordWriter:
    """Stores records in a background thread so that the camera's answer never waits for the database.

    Batches whatever is queued into one insert; while the database fails, records go to the spool
    and the database is retried every `retry_seconds`. `close` drains the queue: a clean shutdown
    loses nothing; the journal covers a process that is killed.
    """

    def __init__(
        self, db: Database, spool: Spool, journal: Journal, settings: RecordSettings, images_dir: Path,
        metrics: Metrics,
    ) -> None:  # fmt: skip
        self.db, self.spool, self.journal, self.settings = db, spool, journal, settings
        self.images_dir, self.metrics = images_dir, metrics
        self.database_ok = False
        self._migrated = False
        self.failing = False  # records are held in memory: neither the database nor the spool takes them
        self._held: list[InspectionRecord] = []  # retried every retry_seconds, at most queue_size of them
        self.last_error: str | None = None
        self._queue: queue.Queue = queue.Queue(settings.queue_size)
        self._submitted = 0
        self._handled = 0
        self._done = threading.Condition()
        self._next_retry = 0.0
        self._thread = threading.Thread(target=self._run, name="lineinspect-records", daemon=True)
        metrics.record_queue_depth.set_function(self._queue.qsize)
        metrics.spool_pending.set_function(lambda: spool.pending)
        metrics.database_up.set_function(lambda: int(self.database_ok))
        metrics.records_held.set_function(lambda: self.held)

    @property
    def held(self) -> int:
        return len(self._held)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self.failing

    def start(self) -> None:
        self._connect()
        recovered = self.journal.recover()
        if recovered:
            self._write(recovered)
        self.journal.discard_leftovers()
        self._thread.start()

    def submit(self, record: InspectionRecord, image: bytes | None = None) -> None:
        """Journal the record, then queue it (with the image bytes to keep, if any); never blocks: a full
        queue spools."""
        self._submitted += 1
        try:
            seq = self.journal.append(record)
        except OSError as exc:  # the record still goes to the database; only a kill before that loses it
            seq = 0
            log.warning("journal %s cannot be written: %s", self.journal.folder, exc)
        try:
            self._queue.put_nowait((record, image, seq))
        except queue.Full:
            self._spool([record], "record queue full")
            self._mark_handled(1)

    def flush(self, timeout: float) -> bool:
        """Wait until every record submitted so far is stored or spooled (read-your-writes for the API)."""
        target = self._submitted
        with self._done:
            return self._done.wait_for(lambda: self._handled >= target, timeout)

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join()
        if self._held:  # a last try; what still fails stays in the journal for the next start
            self._retry_held()
        self.journal.close(everything_stored=not self.failing)

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self.settings.retry_seconds)
            except queue.Empty:
                self._retry_if_due()
                continue
            if item is not _STOP and self._queue.qsize() < self.settings.batch_size:
                time.sleep(self.settings.max_delay_ms / 1000)  # let a batch gather
            batch = [item]
            while batch[-1] is not _STOP and len(batch) < self.settings.batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            items = [b for b in batch if b is not _STOP]
            if items:
                self.journal.rotate()
                self._write([self._keep(record, image) for record, image, _ in items])
                if not self.failing:  # records neither stored nor spooled stay in the journal for the next start
                    self.journal.stored_up_to(max(seq for _, _, seq in items))
                self._mark_handled(len(items))
            if batch[-1] is _STOP:
                return
            self._retry_if_due()

    def _write(self, records: list[InspectionRecord]) -> None:
        if self.database_ok:
            try:
                self.db.insert_inspections(records)
                self.metrics.records_written.inc(len(records))
                return
            except Exception as exc:  # SQLAlchemyError, or anything else: the records go to the spool all the same
                self._database_failed(exc)
        self._spool(records, "database unavailable")

    def _spool(self, records: list[InspectionRecord], why: str) -> None:
        try:
            self.spool.append(records)
            self.metrics.records_spooled.inc(len(records))
        except OSError as exc:
            self._hold(records, f"{why} and the spool {self.spool.path} cannot be written ({exc})")
        self.failing = bool(self._held)

    def _hold(self, records: list[InspectionRecord], why: str) -> None:
        """Keep records in memory until the database or the spool takes them; beyond queue_size they are lost,
        counted and logged in full."""
        room = max(0, self.settings.queue_size - len(self._held))
        kept, lost = records[:room], records[room:]
        if kept and not self._held:
            log.error("%s: holding records in memory, retried every %.1f s", why, self.settings.retry_seconds)
        self._held.extend(kept)
        if lost:
            self.metrics.records_lost.inc(len(lost))
            log.error("%s, and %d records are already held: %d records lost: %s",
                      why, len(self._held), len(lost), [r.model_dump_json() for r in lost])  # fmt: skip

    def _retry_held(self) -> None:
        held, self._held = self._held, []
        self._write(held)
        self.failing = bool(self._held)
        if not self._held:
            log.info("%d held records written", len(held))

    def _keep(self, record: InspectionRecord, image: bytes | None) -> InspectionRecord:
        if image is None:
            return record
        path = self.images_dir / record.created_at.strftime("%Y-%m-%d") / f"{record.id}{SUFFIXES[probe(image)[0]]}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(image)
            record.image_path = str(path)
        except OSError as exc:
            log.warning("could not keep image %s: %s", path, exc)
        return record

    def _connect(self) -> None:
        """Migrate once and replay the spool: at start, and whenever the database was down."""
        try:
            if not self._migrated:
                self.db.migrate()
                self._migrated = True
            self._replay()
            self.database_ok, self.last_error = True, None
        except (SQLAlchemyError, OSError) as exc:  # the spool unreadable counts as not connected: retried
            self._database_failed(exc)

    def _replay(self) -> None:
        records, nbytes = self.spool.read()
        size = self.settings.batch_size
        for start in range(0, len(records), size):
            self.db.insert_inspections(records[start : start + size])
        if nbytes:
            self.spool.discard(nbytes)
            self.metrics.records_written.inc(len(records))
            log.info("wrote %d spooled records to the database", len(records))

    def _retry_if_due(self) -> None:
        if time.monotonic() < self._next_retry:
            return
        if not self.database_ok:
            self._connect()
        if self._held:
            self._next_retry = time.monotonic() + self.settings.retry_seconds
            self._retry_held()

    def _database_failed(self, exc: Exception) -> None:
        if self.database_ok or self.last_error is None:
            log.error("database unavailable, spooling records to %s: %s", self.spool.path, exc)
        self.database_ok, self.last_error = False, str(exc).splitlines()[0]
        self._next_retry = time.monotonic() + self.settings.retry_seconds

    def _mark_handled(self, n: int) -> None:
        with self._done:
            self._handled += n
            self._done.notify_all()
