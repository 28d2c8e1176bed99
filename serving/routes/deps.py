"""What routes get from the request: the running service and the client its API key names."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer

from serving.routes.errors import ApiError

if TYPE_CHECKING:
    from serving.app import Service

bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY (from `lineinspect keys create`)")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The same key, as X-API-Key")
basic = HTTPBasic(
    auto_error=False, description="Label Studio's ML-backend connection (Basic Auth): any user, the API key as password"
)
CHALLENGE = {"WWW-Authenticate": "Bearer"}


def service(request: Request) -> Service:
    return request.app.state.service


async def client_name(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    header_key: Annotated[str | None, Security(api_key_header)],
) -> str | None:
    """The name of the calling client's key; None when the config says `auth: disabled`."""
    return _identify(request, credentials.credentials if credentials else header_key)


async def backend_client_name(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    header_key: Annotated[str | None, Security(api_key_header)],
    password: Annotated[HTTPBasicCredentials | None, Security(basic)],
) -> str | None:
    """As `client_name`, and the key may come as a Basic Auth password: Label Studio sends no other header."""
    return _identify(request, password.password if password else credentials.credentials if credentials else header_key)


def _identify(request: Request, key: str | None) -> str | None:
    svc = service(request)
    if svc.settings.auth.mode == "disabled":
        return None
    if not key:
        raise ApiError(
            401, "missing_api_key", "send an API key: Authorization: Bearer KEY or X-API-Key: KEY", CHALLENGE
        )
    name = svc.keys.identify(key)
    if name is None:
        raise ApiError(401, "invalid_api_key", "the API key is not valid (unknown or revoked)", CHALLENGE)
    return name


Client = Annotated[str | None, Depends(client_name)]
BackendClient = Annotated[str | None, Depends(backend_client_name)]
