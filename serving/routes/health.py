"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from serving.routes.deps import client_name, service
from serving.routes.schemas import ModelRef, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive and its event loop answers."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(request: Request) -> JSONResponse:
    """Ready when a model is loaded and warmed up and records can be kept (in the database or the spool)."""
    svc = service(request)
    model, writer = svc.engine.model, svc.writer
    records = "failing" if not writer.alive else "database" if writer.database_ok else "spool"
    answer = Readiness(
        ready=records != "failing",  # the model: loaded and warmed up before the server listens
        model=ModelRef(name=model.name, version=model.version),
        records=records,
        spool_pending=writer.spool.pending,
        records_held=writer.held,
        database_error=writer.last_error,
    )
    return JSONResponse(answer.model_dump(), status_code=200 if answer.ready else 503)


@router.get("/metrics", dependencies=[Depends(client_name)], response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(service(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)
