"""`RecordWriter`: the records of answered requests into the database, off the request path."""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from serving.metrics import Metrics
from serving.records.database import Database
from serving.records.journal import Journal
from serving.records.model import InspectionRecord
from serving.records.spool import Spool
from serving.settings import RecordSettings
from vision.preprocess import probe

log = logging.getLogger("lineinspect.records")
SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "TIFF": ".tif"}  # the formats the engine accepts

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

    def flush(self, margin: float) -> bool:
        """Wait until every record submitted so far is stored or spooled (read-your-writes for the API): at most the
        time a batch gathers (`max_delay_ms`) and `margin` seconds more for the insert."""
        target = self._submitted
        with self._done:
            return self._done.wait_for(lambda: self._handled >= target, self.settings.max_delay_ms / 1000 + margin)

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
                self.metrics.records_written.inc(self.db.insert_inspections(records))
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
        stored = sum(self.db.insert_inspections(records[k : k + size]) for k in range(0, len(records), size))
        if nbytes:
            self.spool.discard(nbytes)
            self.metrics.records_written.inc(stored)
            log.info("wrote %d spooled records to the database (%d already there)", stored, len(records) - stored)

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
