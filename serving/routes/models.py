"""GET /v1/models and POST /v1/models/reload: which model serves, and swapping it without a restart."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request
from sqlalchemy.exc import SQLAlchemyError

from annotation.errors import LineInspectError
from serving.engine import LoadedModel, resolve_model_path
from serving.refusals import Refused
from serving.routes.deps import client_name, service
from serving.routes.errors import ApiError
from serving.routes.schemas import ErrorBody, ModelInfo, ModelLoad, ModelsAnswer, ReloadRequest

router = APIRouter(tags=["models"], dependencies=[Depends(client_name)])


def model_info(model: LoadedModel) -> ModelInfo:
    meta = model.classifier.meta
    return ModelInfo(
        name=meta.name,
        version=meta.version,
        architecture=meta.architecture,
        sha256=model.sha256,
        path=str(model.path),
        loaded_at=model.loaded_at,
        threshold=meta.threshold,
        classes=meta.classes,
        defect_class=meta.defect_class,
        input=meta.input.model_dump(),
    )


@router.get("/v1/models", response_model=ModelsAnswer)
async def list_models(request: Request) -> ModelsAnswer:
    """The model serving now, the models loaded before (from the database) and the files reload may load."""
    svc = service(request)
    try:
        loaded = [ModelLoad(**row) for row in await asyncio.to_thread(svc.db.model_loads)]
    except SQLAlchemyError:
        loaded = []
    available = sorted(
        str(path) for folder in svc.settings.allowed_model_dirs if folder.is_dir() for path in folder.glob("*.onnx")
    )
    return ModelsAnswer(active=model_info(svc.engine.model), loaded=loaded, available=available)


@router.post(
    "/v1/models/reload",
    response_model=ModelInfo,
    responses={403: {"model": ErrorBody}, 404: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
async def reload_model(request: Request, body: ReloadRequest) -> ModelInfo:
    """Load a model file from the model folders, check and warm it up, then swap it in.

    Requests already running finish on the old model; a file that fails the checks is refused and
    the old model keeps serving.
    """
    svc = service(request)
    try:
        path = resolve_model_path(body.path, svc.settings.allowed_model_dirs)
        model = await svc.load_model(path)
    except Refused as exc:
        raise ApiError.refused(exc) from None
    except LineInspectError as exc:
        raise ApiError(422, "invalid_model", f"{exc}; still serving the previous model") from None
    return model_info(model)
