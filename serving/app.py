"""The inspection service: the FastAPI app, its lifespan, and `Service`, the running parts routes call."""

from __future__ import annotations

import asyncio
import copy
import gc
import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.auth import KeyRing
from serving.engine import Engine, LoadedModel, Outcome, Refused
from serving.journal import Journal
from serving.labelstudio_backend import LabelStudioBackend
from serving.metrics import Metrics
from serving.monitor.watcher import LineWatcher
from serving.ocr import OcrService
from serving.routes import dashboard, health, inspect, inspections, ml_backend, models, monitor, ocr
from serving.routes.deps import document_security
from serving.routes.errors import ApiError, error_body, install_error_handlers
from serving.routes.inspections import FLUSH_SECONDS
from serving.routes.schemas import InspectionResult, ModelRef, OcrStep, Timings
from serving.settings import ServeSettings
from serving.storage import Database, InspectionRecord, RecordWriter, Spool, Tags
from vision.ocr import LabelTemplate

log = logging.getLogger("lineinspect.service")
API_DESCRIPTION = """Line cameras post each part's image and get a verdict; every inspection is recorded.

Send an API key (`lineinspect keys create NAME`) as `Authorization: Bearer KEY` or `X-API-Key: KEY`;
`/healthz` and `/readyz` are open. Errors answer `{"error": {"code": "...", "message": "..."}}`."""


class Service:
    """The engine, the records and the keys of one running service."""

    def __init__(self, settings: ServeSettings, model: LoadedModel) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.engine = Engine(model, settings.engine, settings.limits.max_pixels, self.metrics)
        self.db = Database(settings.resolved_database_url)
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
        self, image: bytes, tags: Tags, client: str | None, template: LabelTemplate | None = None
    ) -> InspectionResult:
        """Judge one image (and read its label with `template`) and record it; a refused image is recorded
        too, then raised as `Refused`."""
        outcome = await self.engine.inspect(image)
        record = self._record(outcome, image, tags, client)
        if outcome.error is not None:
            self.writer.submit(record)
            outcome.error.record_id = record.id
            raise outcome.error
        step = await self._read_label(image, template, record) if template else None
        keep = self.settings.records.keep_images
        kept = (keep.defects and record.verdict == "defect") or abs(record.score - record.threshold) < keep.band
        self.writer.submit(record, image if kept else None)
        self.watcher.part_recorded(tags.line)
        self.metrics.verdicts.labels(tags.line or "", record.verdict).inc()
        meta = outcome.model.classifier.meta
        return InspectionResult(
            id=record.id,
            verdict=record.verdict,
            score=record.score,
            threshold=record.threshold,
            label=record.label,
            probabilities=dict(zip(meta.classes, outcome.probabilities.tolist(), strict=True)),
            model=ModelRef(name=meta.name, version=meta.version),
            timings_ms=Timings(**outcome.timings),
            ocr=step,
        )

    async def _read_label(self, image: bytes, template: LabelTemplate, record: InspectionRecord) -> OcrStep:
        """The part's label, into its record too; OCR failing never costs the verdict, it becomes the reason."""
        started = perf_counter()
        try:
            result = await self.ocr.read_label(image, template)
            fields, problems = {name: f.value for name, f in result.fields.items()}, result.problems
            text, reason = result.text, result.reason
        except Refused as exc:
            fields, problems, text, reason = {}, [], "", str(exc)
        step = OcrStep(
            template=template.name,
            fields=fields,
            problems=problems,
            text=text,
            reason=reason,
            ms=(perf_counter() - started) * 1e3,
        )
        record.ocr_template, record.ocr_fields, record.ocr_ms = step.template, step.fields, step.ms
        record.ocr_missing = bool(reason or problems)
        record.ocr_problems = reason or "; ".join(problems) or None
        return step

    def _record(self, outcome: Outcome, image: bytes, tags: Tags, client: str | None) -> InspectionRecord:
        model = outcome.model
        record = InspectionRecord(
            id=f"{random.getrandbits(128):032x}",  # 128 random bits, with no system call on the event loop
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


class ObserveRequests:
    """Counts and times every request by route template (not raw path, which would explode the labels)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = perf_counter(), 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(path, scope["method"], str(status)).inc()
            self.metrics.request_seconds.labels(path).observe(perf_counter() - started)


class LimitBody:
    """Refuses a body over the limit: up front by its Content-Length, else (chunked) as soon as it grows past it."""

    def __init__(self, app: ASGIApp, max_bytes: int, metrics: Metrics) -> None:
        self.app, self.max_bytes, self.metrics = app, max_bytes, metrics
        self.message = f"request body is over the limit of {max_bytes:,} bytes (limits.max_body_mb)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            self.metrics.rejected.labels("body_too_large").inc()
            await JSONResponse(error_body("body_too_large", self.message), status_code=413)(scope, receive, send)
            return
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise ApiError(413, "body_too_large", self.message)
            return message

        await self.app(scope, receive_limited, send)


def create_app(settings: ServeSettings, model: LoadedModel) -> FastAPI:
    """The service for `model`, already loaded and warmed up by the caller."""
    service = Service(settings, model)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        gc.collect()
        gc.freeze()  # the 200,000 objects of start-up are never garbage: full collections skip them (100+ ms each)
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="lineinspect",
        version="1",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},  # Prometheus /metrics instead
    )
    app.state.service = service
    for module in (inspect, inspections, models, ocr, monitor, dashboard, ml_backend, health):
        app.include_router(module.router)
    app.openapi = _openapi(app)
    install_error_handlers(app, service.metrics)
    app.add_middleware(inspect.CameraLane, metrics=service.metrics)
    app.add_middleware(LimitBody, max_bytes=settings.limits.max_body_bytes, metrics=service.metrics)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )
    app.add_middleware(ObserveRequests, metrics=service.metrics)
    return app


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI's schema, with the camera lane's operation and the API key's schemes added."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema["paths"] = {**inspect.OPENAPI_PATHS, **schema["paths"]}
            document_security(schema)
        return app.openapi_schema

    return openapi


def run(settings: ServeSettings, model: LoadedModel) -> None:
    """Serve until SIGINT/SIGTERM: one process, one event loop (micro-batching needs them all in one place;
    several workers would also lose TCP_NODELAY on keep-alive connections), no access log."""
    logging_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    logging_config["loggers"]["lineinspect"] = {"handlers": ["default"], "level": settings.server.log_level.upper()}
    config = uvicorn.Config(
        create_app(settings, model),
        host=settings.server.host,
        port=settings.server.port,
        log_level=settings.server.log_level,
        log_config=logging_config,
        access_log=False,
        timeout_graceful_shutdown=30,
    )
    uvicorn.Server(config).run()
