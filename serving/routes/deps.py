"""What routes get from the request: the running service and the client its API key names."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from serving.routes.errors import ApiError

if TYPE_CHECKING:
    from serving.app import Service

bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY (from `lineinspect keys create`)")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The same key, as X-API-Key")
CHALLENGE = {"WWW-Authenticate": "Bearer"}


def service(request: Request) -> Service:
    return request.app.state.service


async def client_name(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    header_key: Annotated[str | None, Security(api_key_header)],
) -> str | None:
    """The name of the calling client's key; None when the config says `auth: disabled`."""
    svc = service(request)
    if svc.settings.auth.mode == "disabled":
        return None
    key = credentials.credentials if credentials else header_key
    if not key:
        raise ApiError(
            401, "missing_api_key", "send an API key: Authorization: Bearer KEY or X-API-Key: KEY", CHALLENGE
        )
    name = svc.keys.identify(key)
    if name is None:
        raise ApiError(401, "invalid_api_key", "the API key is not valid (unknown or revoked)", CHALLENGE)
    return name


Client = Annotated[str | None, Depends(client_name)]
