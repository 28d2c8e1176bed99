"""Every error answer, built here: one shape, `{"error": {"code", "message"}}`, and every refusal counted by code."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

from serving.metrics import Metrics
from serving.refusals import Refused
from serving.routes.schemas import ErrorBody, ErrorDetail

log = logging.getLogger("lineinspect.http")

REASON_STATUS = {
    "empty_image": 400,
    "not_an_image": 422,
    "corrupt_image": 422,
    "unsupported_format": 415,
    "too_many_pixels": 413,
    "model_path_forbidden": 403,
    "model_not_found": 404,
    "unknown_template": 422,
    "idempotency_key_reused": 422,
    "unknown_gauge": 422,
    "missing_gauge": 422,
    "ocr_unavailable": 503,
}
STATUS_CODE = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}


class ApiError(HTTPException):
    """An error answer: HTTP status, a stable code for programs and a message for people."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra) -> None:
        super().__init__(status, message, headers)
        self.code, self.extra = code, extra

    @classmethod
    def refused(cls, exc: Refused, **extra) -> ApiError:
        return cls(REASON_STATUS.get(exc.reason, 422), exc.reason, str(exc), **extra)


def error_body(code: str, message: str, **extra) -> dict:
    return {"error": {"code": code, "message": message, **extra}}


def refusal_entry(exc: Refused, metrics: Metrics) -> ErrorBody:
    """A refused image's entry in a batch's results (the batch itself succeeds), counted as a refusal."""
    metrics.rejected.labels(exc.reason).inc()
    return ErrorBody(error=ErrorDetail(code=exc.reason, message=str(exc), id=exc.record_id))


def error_response(request: Request, exc: Exception, metrics: Metrics) -> JSONResponse:
    """The answer to any exception a route raised: its status and code, counted when a refusal (4xx); a database
    error is 503 `database_unavailable`; anything unexpected is logged and answered 500."""
    if isinstance(exc, ApiError):
        status, code, message, headers, extra = exc.status_code, exc.code, exc.detail, exc.headers, exc.extra
    elif isinstance(exc, HTTPException):
        status, code, message = exc.status_code, STATUS_CODE.get(exc.status_code, "error"), str(exc.detail)
        headers, extra = exc.headers, {}
    elif isinstance(exc, SQLAlchemyError):  # records still arrive: the writer spools them to disk meanwhile
        status, code, headers, extra = 503, "database_unavailable", None, {}
        message = "the database is unavailable; records are being spooled"
    elif isinstance(exc, RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        status, code, message, headers, extra = 422, "invalid_request", problems, None, {}
    else:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        status, code, headers, extra = 500, "internal_error", None, {}
        message = f"internal error ({exc.__class__.__name__}); it was logged"
    if status < 500:
        metrics.rejected.labels(code).inc()
    return JSONResponse(error_body(code, message, **extra), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI, metrics: Metrics) -> None:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return error_response(request, exc, metrics)

    for kind in (HTTPException, RequestValidationError, SQLAlchemyError, Exception):
        app.add_exception_handler(kind, handler)
