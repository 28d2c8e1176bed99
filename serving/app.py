"""The inspection service over HTTP: the FastAPI app around a `Service`, its lifespan and middleware, and `run`."""

from __future__ import annotations

import copy
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from time import perf_counter
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.engine import LoadedModel
from serving.metrics import Metrics
from serving.routes import dashboard, health, inspect, inspections, ml_backend, models, monitor, ocr
from serving.routes.deps import document_security
from serving.routes.errors import ApiError, error_response, install_error_handlers
from serving.service import Service
from serving.settings import ServeSettings

API_DESCRIPTION = """Line cameras post each part's image and get a verdict; every inspection is recorded.

Send an API key (`lineinspect keys create NAME`) as `Authorization: Bearer KEY` or `X-API-Key: KEY`;
`/healthz` and `/readyz` are open. Errors answer `{"error": {"code": "...", "message": "..."}}`."""


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
            too_large = ApiError(413, "body_too_large", self.message)
            await error_response(Request(scope), too_large, self.metrics)(scope, receive, send)
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
