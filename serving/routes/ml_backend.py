"""Label Studio's ML-backend protocol at /labelstudio: connect a project to this URL in Label Studio.

In Label Studio: Project settings > Model > Connect model, URL `http://HOST:PORT/labelstudio`,
Basic Auth with any user and an API key of this service as the password (`lineinspect
labelstudio connect` does it through the API). The bodies are Label Studio's, not ours: they
are read as plain JSON and answered in the shape Label Studio expects.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from serving.labelstudio_backend import BackendError
from serving.routes.deps import Client, service
from serving.routes.errors import ApiError

router = APIRouter(prefix="/labelstudio", tags=["label studio ML backend"])
log = logging.getLogger("lineinspect.labelstudio")
JsonBody = Annotated[dict[str, Any], Body()]


@router.get("/health")
async def health(request: Request, _: Client) -> dict[str, str]:
    """Label Studio's connection check."""
    backend = service(request).labelstudio
    return {"status": "UP", "model_class": "lineinspect", "model_version": backend.model_version}


@router.post("/setup")
async def setup(request: Request, _: Client, body: JsonBody) -> dict[str, str]:
    """Label Studio sends the project's labelling config; refused when it has no Choices control we can answer."""
    backend = service(request).labelstudio
    with _answering(request, "setup"):
        version = backend.setup(
            str(body.get("project") or ""), body.get("schema"), body.get("hostname"), body.get("access_token")
        )
    return {"model_version": version}


@router.post("/predict")
async def predict(request: Request, _: Client, body: JsonBody) -> dict[str, list]:
    """One prediction per task, in the order of `tasks`."""
    tasks = body.get("tasks")
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise ApiError(422, "invalid_request", "`tasks` must be a list of Label Studio tasks")
    with _answering(request, "predict"):
        results = await service(request).labelstudio.predict(tasks, body.get("label_config"), body.get("project"))
    return {"results": results}


@router.post("/webhook")
async def webhook(request: Request, _: Client, body: JsonBody) -> dict[str, str]:
    """Label Studio's events (annotation created, start training...): acknowledged and counted.

    Training is not started from here: it takes minutes to hours and belongs on a training machine
    (`lineinspect labelstudio pull`, then `lineinspect train`)."""
    action = str(body.get("action") or "unknown")[:64]
    service(request).metrics.labelstudio.labels("webhook", action).inc()
    log.info("Label Studio event %s for project %s", action, (body.get("project") or {}).get("id"))
    return {"status": "ok", "action": action}


@contextmanager
def _answering(request: Request, endpoint: str) -> Iterator[None]:
    """Count the call; a BackendError becomes a 422 that says why, logged too (Label Studio shows only the status)."""
    metrics = service(request).metrics
    try:
        yield
    except BackendError as exc:
        metrics.labelstudio.labels(endpoint, exc.code).inc()
        log.warning("Label Studio %s refused: %s", endpoint, exc)
        raise ApiError(422, exc.code, str(exc)) from None
    metrics.labelstudio.labels(endpoint, "ok").inc()
