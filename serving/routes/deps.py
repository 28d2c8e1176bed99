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
    auto_error=False, description="Basic Auth (Label Studio's ML backend, browsers): any user, the API key as password"
)
CHALLENGE = {"WWW-Authenticate": "Bearer"}
MISSING = "send an API key: Authorization: Bearer KEY, X-API-Key: KEY, or as the password of Basic Auth"
BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="lineinspect", charset="UTF-8"'}


def service(request: Request) -> Service:
    return request.app.state.service


async def client_name(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    header_key: Annotated[str | None, Security(api_key_header)],
    password: Annotated[HTTPBasicCredentials | None, Security(basic)],
) -> str | None:
    """The name of the calling client's key; None when the config says `auth: disabled`. The key may come as a
    Basic Auth password too: Label Studio and browsers send no other header."""
    return _identify(request, _key(credentials, header_key, password), CHALLENGE)


async def viewer_name(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    header_key: Annotated[str | None, Security(api_key_header)],
    password: Annotated[HTTPBasicCredentials | None, Security(basic)],
) -> str | None:
    """As `client_name` for pages: a browser without a key is asked for one (any user name, the key as password)."""
    return _identify(request, _key(credentials, header_key, password), BASIC_CHALLENGE)


def _key(credentials: HTTPAuthorizationCredentials | None, header_key: str | None, password) -> str | None:
    return password.password if password else credentials.credentials if credentials else header_key


def _identify(request: Request, key: str | None, challenge: dict[str, str]) -> str | None:
    svc = service(request)
    if svc.settings.auth.mode == "disabled":
        return None
    if not key:
        raise ApiError(401, "missing_api_key", MISSING, challenge)
    name = svc.keys.identify(key)
    if name is None:
        raise ApiError(401, "invalid_api_key", "the API key is not valid (unknown or revoked)", challenge)
    return name


Client = Annotated[str | None, Depends(client_name)]
Viewer = Annotated[str | None, Depends(viewer_name)]
