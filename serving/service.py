"""`Service`: the engine, OCR, records, keys and line monitor of one running service, apart from HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter

from sqlalchemy.exc import SQLAlchemyError

from serving.auth import KeyRing
from serving.engine import Engine, LoadedModel, Outcome
from serving.labelstudio_backend import LabelStudioBackend
from serving.metrics import Metrics
from serving.monitor.watcher import LineWatcher
from serving.ocr import OcrService
from serving.records.database import Database
from serving.records.journal import Journal
from serving.records.model import InspectionRecord, Tags
from serving.records.spool import Spool
from serving.records.writer import RecordWriter
from serving.refusals import Refused
from serving.settings import ServeSettings
from vision.ocr import LabelTemplate

log = logging.getLogger("lineinspect.service")
FLUSH_SECONDS = 2.0  # how long a read waits for records still being written, beyond a batch's gathering delay


@dataclass(frozen=True)
class LabelReading:
    """The label read from an inspected image (`ocr=TEMPLATE`), also stored in its record."""

    template: str
    fields: dict[str, str | None]  # each field's validated value; None when missing or invalid
    problems: list[str]  # required fields missing or invalid, and why
    text: str
    reason: str | None  # why nothing was read (no text found, OCR unavailable)
    ms: float


@dataclass(frozen=True)
class Inspection:
    """An image judged, and its record, submitted to the writer."""

    record: InspectionRecord
    probabilities: dict[str, float]  # class -> probability
    label: LabelReading | None = None
    retry: bool = False  # sent again with an Idempotency-Key already stored: answered, not stored again


class Service:
    """The engine, the records and the keys of one running service."""

    def __init__(self, settings: ServeSettings, model: LoadedModel) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.engine = Engine(model, settings.engine, settings.limits.max_pixels, self.metrics)
        self.db = Database(settings.resolved_database_url)
        self.metrics.instance_info.labels(settings.instance_name, self.db.engine.dialect.name).set(1)
        spool = Spool(settings.data_dir / "spool.jsonl")
        journal = Journal(settings.data_dir / "journal", settings.records.fsync)
        self.writer = RecordWriter(self.db, spool, journal, settings.records, settings.images_dir, self.metrics)
        self.keys = KeyRing(self.db, settings.auth.refresh_seconds)
        self.ocr = OcrService(settings.ocr, settings.limits.max_pixels, self.metrics)
        self.labelstudio = LabelStudioBackend(settings.labelstudio, self.engine)
        self.watcher = LineWatcher(self.db, settings.monitor, self.metrics, lambda: self.writer.flush(FLUSH_SECONDS))

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.writer.start)  # migrations, then the spool of a previous run
        if self.settings.auth.mode == "keys":
            await self.keys.start()
            if not self.keys.count:
                log.warning("auth is on and there is no API key yet: create one with `lineinspect keys create NAME`")
        self.engine.start()
        self.watcher.start()
        model = self.engine.model
        await self._record_load(model)
        log.info("serving %s %s (sha256 %s)", model.name, model.version, model.sha256)

    async def stop(self) -> None:
        """After the server has finished the requests in flight: stop inference, then drain the records."""
        await self.keys.stop()
        await self.watcher.stop()
        await self.engine.stop()
        await asyncio.to_thread(self.ocr.stop)
        await self.labelstudio.close()
        await asyncio.to_thread(self.writer.close)
        self.db.close()
        log.info("stopped; every record written or spooled")

    async def load_model(self, path: Path) -> LoadedModel:
        model = await self.engine.load(path)
        await self._record_load(model)
        log.info("reloaded: serving %s %s (sha256 %s) from %s", model.name, model.version, model.sha256, path)
        return model

    async def inspect(
        self,
        image: bytes,
        tags: Tags,
        client: str | None,
        template: LabelTemplate | None = None,
        key: str | None = None,
    ) -> Inspection:
        """Judge one image (and read its label with `template`) and record it; a refused image is recorded
        too, then raised as `Refused`. With an idempotency `key`, the record's id is the key's own, so a request
        sent again (after a timeout, to another instance) is stored once."""
        outcome = await self.engine.inspect(image)
        record = self._record(outcome, image, tags, client, key)
        if outcome.error is not None:
            self.writer.submit(record)
            outcome.error.record_id = record.id
            raise outcome.error
        retry = key is not None and await self._stored_before(record)
        label = await self._read_label(image, template, record) if template else None
        if not retry:
            keep = self.settings.records.keep_images
            kept = (keep.defects and record.verdict == "defect") or abs(record.score - record.threshold) < keep.band
            self.writer.submit(record, image if kept else None)
            self.watcher.part_recorded(tags.line)
            self.metrics.verdicts.labels(tags.line or "", record.verdict).inc()
        classes = outcome.model.classifier.meta.classes
        return Inspection(record, dict(zip(classes, outcome.probabilities.tolist(), strict=True)), label, retry)

    async def _stored_before(self, record: InspectionRecord) -> bool:
        """Whether a request with this record's idempotency key was stored already (`Refused` if with another
        image). A record still on its way in (queued, spooled, in a killed instance's journal) is not seen here:
        the insert then skips the second one, as it skips every id already stored."""
        try:
            stored = await asyncio.to_thread(self.db.get_inspection, record.id)
        except SQLAlchemyError:
            return False
        if stored is None:
            return False
        if stored.image_sha256 != record.image_sha256:
            raise Refused(
                "idempotency_key_reused",
                f"this Idempotency-Key came first with another image (record {record.id}): give each part its own key",
            )
        self.metrics.idempotent_retries.inc()
        return True

    async def _read_label(self, image: bytes, template: LabelTemplate, record: InspectionRecord) -> LabelReading:
        """The part's label, into its record too; OCR failing never costs the verdict, it becomes the reason."""
        started = perf_counter()
        try:
            result = await self.ocr.read_label(image, template)
            fields, problems = {name: f.value for name, f in result.fields.items()}, result.problems
            text, reason = result.text, result.reason
        except Refused as exc:
            fields, problems, text, reason = {}, [], "", str(exc)
        reading = LabelReading(template.name, fields, problems, text, reason, (perf_counter() - started) * 1e3)
        record.ocr_template, record.ocr_fields, record.ocr_ms = reading.template, reading.fields, reading.ms
        record.ocr_missing = bool(reason or problems)
        record.ocr_problems = reason or "; ".join(problems) or None
        return reading

    def _record(
        self, outcome: Outcome, image: bytes, tags: Tags, client: str | None, key: str | None
    ) -> InspectionRecord:
        model = outcome.model
        record = InspectionRecord(
            id=record_id(client, key),
            created_at=datetime.now(UTC),
            **tags.__dict__,
            client=client,
            image_sha256=outcome.sha256,
            image_bytes=len(image),
            model_name=model.name,
            model_version=model.version,
            model_sha256=model.sha256,
            threshold=model.threshold,
            **{f"{stage}_ms": ms for stage, ms in outcome.timings.items()},
        )
        if outcome.error is not None:
            record.error_code, record.error = outcome.error.reason, str(outcome.error)
        else:
            record.score, record.verdict, record.label = outcome.score, outcome.verdict, outcome.label
            record.brightness = outcome.quality.brightness
            record.contrast, record.sharpness = outcome.quality.contrast, outcome.quality.sharpness
        return record

    async def _record_load(self, model: LoadedModel) -> None:
        try:
            await asyncio.to_thread(
                self.db.record_model_load, model.name, model.version, model.sha256, str(model.path), model.loaded_at
            )
        except SQLAlchemyError as exc:
            log.warning("could not record the model load in the database: %s", str(exc).splitlines()[0])


def record_id(client: str | None, key: str | None) -> str:
    """A new record's id: 128 random bits (no system call on the event loop), or, for a request with an idempotency
    key, the same 128 bits for every request its client sends with that key."""
    if key is None:
        return f"{random.getrandbits(128):032x}"
    return hashlib.sha256(f"{client or ''}\0{key}".encode()).hexdigest()[:32]
