"""`Refused`: what the service refuses (an image, a model file, an OCR template or gauge), raised by the domain
modules (engine, service, OCR) and answered by serving/routes/errors.py, which maps each reason to its HTTP status."""

from __future__ import annotations

from annotation.errors import LineInspectError


class Refused(LineInspectError):
    """An image or model file the service refuses; `reason` is the error code clients and metrics see."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.record_id: str | None = None  # set once the refusal is recorded
