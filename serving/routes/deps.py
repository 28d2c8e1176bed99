"""What routes get from the request: the running service and the client its API key names.

The key is read from the headers by one plain dependency (no sub-dependencies to solve on every
request); `SECURITY_SCHEMES` documents the three ways to send it in the OpenAPI schema.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from typing import Annotated, Any

from fastapi import Depends, Request

from serving.routes.errors import ApiError
from serving.service import Service

SECURITY_SCHEMES = {
    "HTTPBearer": {
        "type": "http", "scheme": "bearer", "description": "Authorization: Bearer KEY (from `lineinspect keys create`)"
    },
    "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "The key as X-API-Key"},
    "HTTPBasic": {
        "type": "http", "scheme": "basic",
        "description": "Basic Auth (Label Studio's ML backend, browsers): any user, the API key as password",
    },
}  # fmt: skip
OPEN_PATHS = ("/healthz", "/readyz")  # the probes need no key
CHALLENGE = {"WWW-Authenticate": "Bearer"}
MISSING = "send an API key: Authorization: Bearer KEY, X-API-Key: KEY, or as the password of Basic Auth"
BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="lineinspect", charset="UTF-8"'}


def service(request: Request) -> Service:
    return request.app.state.service


async def client_name(request: Request) -> str | None:
    """The name of the calling client's key; None when the config says `auth: disabled`. The key may come as a
    Basic Auth password too: Label Studio and browsers send no other header."""
    return identify(request, CHALLENGE)


async def viewer_name(request: Request) -> str | None:
    """As `client_name` for pages: a browser without a key is asked for one (any user name, the key as password)."""
    return identify(request, BASIC_CHALLENGE)


def identify(request: Request, challenge: dict[str, str]) -> str | None:
    svc = service(request)
    if svc.settings.auth.mode == "disabled":
        return None
    key = _key(request, challenge)
    if not key:
        raise ApiError(401, "missing_api_key", MISSING, challenge)
    name = svc.keys.identify(key)
    if name is None:
        raise ApiError(401, "invalid_api_key", "the API key is not valid (unknown or revoked)", challenge)
    return name


def _key(request: Request, challenge: dict[str, str]) -> str | None:
    """Authorization: Bearer KEY, Authorization: Basic (the password), else X-API-Key."""
    scheme, _, credentials = request.headers.get("authorization", "").strip().partition(" ")
    scheme, credentials = scheme.lower(), credentials.strip()
    if scheme == "bearer" and credentials:
        return credentials
    if scheme == "basic" and credentials:
        try:
            user_password = b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            user_password = ""
        _, colon, password = user_password.partition(":")
        if not colon:
            raise ApiError(401, "invalid_api_key", "Basic Auth credentials are not base64 of user:password", challenge)
        return password
    return request.headers.get("x-api-key")


Client = Annotated[str | None, Depends(client_name)]
Viewer = Annotated[str | None, Depends(viewer_name)]


def document_security(schema: dict[str, Any]) -> None:
    """The three ways to send a key, in an OpenAPI schema: required by every operation but the open probes."""
    schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    schema["security"] = [{name: []} for name in SECURITY_SCHEMES]
    for path in OPEN_PATHS:
        for operation in schema["paths"].get(path, {}).values():
            operation["security"] = []
