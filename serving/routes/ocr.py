"""POST /v1/ocr/label and /v1/ocr/gauge: read a label's fields, a display's digits or a dial's needle.

Images arrive as for /v1/inspect (multipart field `image` or a raw body) and are refused for the
same reasons; a fine image with nothing readable in it is a 200 with an empty value and a reason.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from serving.refusals import Refused
from serving.routes.deps import client_name, service
from serving.routes.errors import ApiError
from serving.routes.schemas import DialAnswer, DisplayAnswer, ErrorBody, GaugeAnswer, LabelAnswer
from serving.routes.uploads import option, read_image, upload_docs
from vision.ocr import DialResult

router = APIRouter(tags=["ocr"], dependencies=[Depends(client_name)])
ERRORS = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        400: "empty image, no image field (missing_image) or a malformed multipart body",
        401: "missing or invalid API key",
        413: "body over limits.max_body_mb or image over limits.max_pixels",
        415: "Content-Type or image format not accepted",
        422: "not an image, a corrupt or truncated image, or an unknown template or gauge",
        503: "OCR unavailable here (no tesseract, or no traineddata for the template's languages)",
    }.items()
}
TEMPLATE = {"template": ("Label template: configs/ocr/labels/NAME.yaml (default: default)", "default")}
GAUGE = {
    "gauge": (
        "Gauge config, digital or analog: configs/ocr/gauges/NAME.yaml (required). An analog config with only "
        "min_value and max_value (no angles) has its scale's ends found on the dial's tick marks; the answer's "
        "`notes` say where, or that the 270-degree sweep was assumed",
        "pressure-0-10bar",
    )
}


@router.post(
    "/v1/ocr/label",
    response_model=LabelAnswer,
    responses=ERRORS,
    openapi_extra=upload_docs("image", tags=False, options=TEMPLATE),
    summary="Read a product label",
)
async def read_label(request: Request) -> Response:
    """The label's text, each word with its box and confidence, and the template's fields, validated;
    required fields missing or invalid are listed in `problems`, never guessed."""
    svc = service(request)
    image, fields = await read_image(request, tuple(TEMPLATE))
    try:
        template = svc.ocr.template(option(request, fields, "template") or "default")
        result = await svc.ocr.read_label(image, template)
    except Refused as exc:
        raise ApiError.refused(exc) from None
    return Response(LabelAnswer.model_validate(result.to_dict()).model_dump_json(), media_type="application/json")


@router.post(
    "/v1/ocr/gauge",
    response_model=GaugeAnswer,
    responses=ERRORS,
    openapi_extra=upload_docs("image", tags=False, options=GAUGE),
    summary="Read a digital display or an analog dial",
)
async def read_gauge(request: Request) -> Response:
    """A seven-segment display (value, per-digit confidences) or an analog dial (value, needle angle,
    confidence), as the gauge config says; no display or no needle gives a null value and a reason.
    A dial config that gives only the values has the scale's ends found on the dial (see `notes`)."""
    svc = service(request)
    image, fields = await read_image(request, tuple(GAUGE))
    name = option(request, fields, "gauge")
    try:
        result = await svc.ocr.read_gauge(image, svc.ocr.gauge(name))
    except Refused as exc:
        raise ApiError.refused(exc) from None
    answer = DialAnswer if isinstance(result, DialResult) else DisplayAnswer
    return Response(
        answer.model_validate({**result.to_dict(), "gauge": name}).model_dump_json(), media_type="application/json"
    )
