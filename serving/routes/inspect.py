"""POST /v1/inspect and /v1/inspect/batch: the routes line cameras post to.

The body is read by hand (one read, multipart or raw) and the answer serialised once, so the
hot path pays for no form parsing into temporary files and no response re-validation.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response

from serving.engine import Refused
from serving.routes.deps import Client, service
from serving.routes.errors import ApiError
from serving.routes.schemas import BatchResult, ErrorBody, ErrorDetail, InspectionResult
from serving.routes.uploads import RAW_TYPES, TAG_NAMES, read_images, tags_for

router = APIRouter(tags=["inspect"])

_TAG_DOCS = {
    "line": "Production line",
    "station": "Station on the line",
    "camera": "Camera at the station",
    "part_id": "The part's serial or tracking id",
}
_BINARY = {"type": "string", "format": "binary"}
ERRORS = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        400: "empty image, no image field (missing_image) or a malformed multipart body",
        401: "missing or invalid API key",
        413: "body over limits.max_body_mb, image over limits.max_pixels, or too many images",
        415: "Content-Type or image format not accepted",
        422: "not an image, a corrupt or truncated image, or an invalid tag",
    }.items()
}


def _upload_docs(field: str, many: bool) -> dict:
    image = {"type": "array", "items": _BINARY} if many else _BINARY
    tags = {name: {"type": "string", "maxLength": 128, "description": text} for name, text in _TAG_DOCS.items()}
    if many:
        tags["part_id"] = {"type": "array", "items": tags["part_id"], "description": "One per image, in order"}
    content = {
        "multipart/form-data": {"schema": {"type": "object", "required": [field], "properties": {field: image, **tags}}}
    }
    parameters = []
    if not many:
        content.update({media: {"schema": _BINARY} for media in RAW_TYPES})
        parameters = [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"},
             "description": f"{_TAG_DOCS[name]} (with a raw image body; multipart sends it as a form field)"}
            for name in TAG_NAMES
        ]  # fmt: skip
    return {"requestBody": {"required": True, "content": content}, "parameters": parameters}


@router.post(
    "/v1/inspect",
    response_model=InspectionResult,
    responses=ERRORS,
    openapi_extra=_upload_docs("image", many=False),
    summary="Inspect one image",
)
async def inspect(request: Request, client: Client) -> Response:
    """One image as multipart field `image` or as a raw image body; the verdict, and a stored record."""
    svc = service(request)
    images, fields = await read_images(request, "image")
    if len(images) > 1:
        raise ApiError(400, "too_many_images", f"{len(images)} images: send one, or several to /v1/inspect/batch")
    tags = tags_for(fields, 1)[0]
    try:
        result = await svc.inspect(images[0], tags, client)
    except Refused as exc:
        raise ApiError.refused(exc, id=exc.record_id) from None
    return Response(result.model_dump_json(), media_type="application/json")


@router.post(
    "/v1/inspect/batch",
    response_model=BatchResult,
    responses=ERRORS,
    openapi_extra=_upload_docs("images", many=True),
    summary="Inspect several images",
)
async def inspect_batch(request: Request, client: Client) -> Response:
    """Several images as repeated multipart field `images`: one result each, in order; a refused image gets
    an error entry and the others are still inspected."""
    svc = service(request)
    images, fields = await read_images(request, "images")
    limit = svc.settings.limits.max_batch_images
    if len(images) > limit:
        raise ApiError(413, "too_many_images", f"{len(images)} images, over the limit of {limit} (max_batch_images)")

    async def one(image: bytes, tags) -> InspectionResult | ErrorBody:
        try:
            return await svc.inspect(image, tags, client)
        except Refused as exc:
            svc.metrics.rejected.labels(exc.reason).inc()
            return ErrorBody(error=ErrorDetail(code=exc.reason, message=str(exc), id=exc.record_id))

    results = await asyncio.gather(*(one(i, t) for i, t in zip(images, tags_for(fields, len(images)), strict=True)))
    return Response(BatchResult(results=results).model_dump_json(), media_type="application/json")
