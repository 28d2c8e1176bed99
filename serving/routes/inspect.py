"""POST /v1/inspect, the route every camera posts every part to, and POST /v1/inspect/batch.

The body is read by hand (one read, multipart or raw) and the answer serialised once, so the hot
path pays for no form parsing into temporary files and no response re-validation. /v1/inspect is
answered by `CameraLane`, an ASGI layer inside the service's own middleware (body limit, CORS,
request metrics) that skips FastAPI's routing, dependency solving and exception machinery: under
load that machinery cost as much of the event loop as everything else a request needs. Its
OpenAPI operation is written out in `OPENAPI_PATHS`.
"""

from __future__ import annotations

import asyncio
from inspect import cleandoc

from fastapi import APIRouter, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.metrics import Metrics
from serving.refusals import Refused
from serving.routes.deps import CHALLENGE, Client, identify, service
from serving.routes.errors import ApiError, error_response, refusal_entry
from serving.routes.schemas import BatchResult, ErrorBody, InspectionResult, ModelRef, OcrStep, Timings
from serving.routes.uploads import (
    IDEMPOTENCY_KEY,
    MAX_KEY_LENGTH,
    TAG_NAMES,
    idempotency_key,
    option,
    read_image,
    read_images,
    tags_for,
    upload_docs,
)
from serving.service import Inspection
from vision.ocr import LabelTemplate

router = APIRouter(tags=["inspect"])

ERRORS = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        400: "empty image, no image field (missing_image), a malformed multipart body or an invalid Idempotency-Key",
        401: "missing or invalid API key",
        413: "body over limits.max_body_mb, image over limits.max_pixels, or too many images",
        415: "Content-Type or image format not accepted",
        422: "not an image, a corrupt or truncated image, an invalid tag, an unknown ocr template, or an "
        "Idempotency-Key first sent with another image (idempotency_key_reused)",
    }.items()
}
OCR_OPTION = {"ocr": ("Also read the part's label with this template (configs/ocr/labels/NAME.yaml)", "default")}
FIELDS = (*TAG_NAMES, "ocr")
KEY_DOCS = {
    "name": IDEMPOTENCY_KEY,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": MAX_KEY_LENGTH},
    "description": "One key per part, sent again with every retry of its request: the part is stored once (the "
    "record id is the key's), and a retry of a stored one is answered with `Idempotent-Replayed: true`",
}
PATH = "/v1/inspect"


async def inspect_one(request: Request) -> Response:
    """One image as multipart field `image` or as a raw image body; the verdict, and a stored record.
    With `ocr=TEMPLATE` the label is read from the same image: its fields are in the answer and the record."""
    svc = service(request)
    client = identify(request, CHALLENGE)
    key = idempotency_key(request)
    image, fields = await read_image(request, FIELDS)
    tags, template = tags_for(fields, 1)[0], _template(request, fields)
    try:
        inspection = await svc.inspect(image, tags, client, template, key)
    except Refused as exc:
        raise ApiError.refused(exc, id=exc.record_id) from None
    headers = {"Idempotent-Replayed": "true"} if inspection.retry else None
    return Response(inspection_result(inspection).model_dump_json(), media_type="application/json", headers=headers)


def inspection_result(inspection: Inspection) -> InspectionResult:
    """The answer to an inspection, from its record."""
    record, label = inspection.record, inspection.label
    return InspectionResult(
        id=record.id,
        verdict=record.verdict,
        score=record.score,
        threshold=record.threshold,
        label=record.label,
        probabilities=inspection.probabilities,
        model=ModelRef(name=record.model_name, version=record.model_version),
        timings_ms=Timings(
            decode=record.decode_ms,
            preprocess=record.preprocess_ms,
            queue=record.queue_ms,
            infer=record.infer_ms,
            total=record.total_ms,
        ),
        ocr=None if label is None else OcrStep(**label.__dict__),
    )


class CameraLane:
    """Answers `POST /v1/inspect` with `inspect_one`; passes everything else on to FastAPI."""

    path = PATH  # the route label of the request metrics

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        scope["route"] = self
        request = Request(scope, receive)
        try:
            if request.method != "POST":
                raise ApiError(405, "method_not_allowed", f"{PATH} takes POST", {"Allow": "POST"})
            response = await inspect_one(request)
        except Exception as exc:
            response = error_response(request, exc, self.metrics)
        await response(scope, receive, send)


def _operation() -> dict:
    """The OpenAPI operation FastAPI would write for `inspect_one` as a route (its models are in the schema's
    components through /v1/inspect/batch)."""

    def ref(model: type) -> dict:
        return {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}

    responses = {"200": {"description": "The verdict; the record is stored", "content": ref(InspectionResult)}}
    responses |= {
        str(status): {"description": e["description"], "content": ref(ErrorBody)} for status, e in ERRORS.items()
    }
    return {
        "tags": ["inspect"],
        "summary": "Inspect one image",
        "description": cleandoc(inspect_one.__doc__),
        "operationId": "inspect_v1_inspect_post",
        "responses": responses,
        **_docs(many=False),
    }


def _docs(many: bool) -> dict:
    """The upload's OpenAPI, with the idempotency key's header."""
    docs = upload_docs("images" if many else "image", many=many, options=OCR_OPTION)
    docs["parameters"].append(KEY_DOCS)
    return docs


OPENAPI_PATHS = {PATH: {"post": _operation()}}


@router.post(
    "/v1/inspect/batch",
    response_model=BatchResult,
    responses=ERRORS,
    openapi_extra=_docs(many=True),
    summary="Inspect several images",
)
async def inspect_batch(request: Request, client: Client) -> Response:
    """Several images as repeated multipart field `images`: one result each, in order; a refused image gets
    an error entry and the others are still inspected. `ocr=TEMPLATE` reads every image's label."""
    svc = service(request)
    key = idempotency_key(request)
    images, fields = await read_images(request, "images", FIELDS)
    limit = svc.settings.limits.max_batch_images
    if len(images) > limit:
        raise ApiError(413, "too_many_images", f"{len(images)} images, over the limit of {limit} (max_batch_images)")
    all_tags, template = tags_for(fields, len(images)), _template(request, fields)

    async def one(index: int, image: bytes, tags) -> InspectionResult | ErrorBody:
        image_key = None if key is None else f"{key}\n{index}"  # no key sent alone holds a line break
        try:
            return inspection_result(await svc.inspect(image, tags, client, template, image_key))
        except Refused as exc:
            return refusal_entry(exc, svc.metrics)

    results = await asyncio.gather(*(one(k, i, t) for k, (i, t) in enumerate(zip(images, all_tags, strict=True))))
    return Response(BatchResult(results=results).model_dump_json(), media_type="application/json")


def _template(request: Request, fields: dict[str, list[str]]) -> LabelTemplate | None:
    """The label template `ocr` names, checked before any inference; None without `ocr`."""
    name = option(request, fields, "ocr")
    try:
        return None if name is None else service(request).ocr.template(name)
    except Refused as exc:
        raise ApiError.refused(exc) from None
