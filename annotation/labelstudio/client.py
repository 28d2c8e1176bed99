"""Connect to a Label Studio and say what to do when it fails: wrong URL, server down, bad token.

The SDK (label-studio-sdk 2.x) takes legacy tokens and personal access tokens (JWT refresh
tokens) alike; what it does not do is explain a refusal. Every call the round trip makes goes
through `call`, which turns transport and API errors into a `LabelStudioError` with a fix; a
server that answered and then stopped is a `LabelStudioGone`, to which the command adds what it
had done by then, so the user knows what a re-run will find.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urljoin

import httpx
import jwt
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError
from label_studio_sdk.core.request_options import RequestOptions

from annotation.errors import LineInspectError
from annotation.labelstudio.server import DEFAULT_PORT, read_info

T = TypeVar("T")
# For writes that add something: the SDK re-sends a request whose answer was lost, which may add it twice.
ONCE: RequestOptions = {"max_retries": 0}


class LabelStudioError(LineInspectError):
    """Label Studio refused or could not be reached; the message says what to do."""


class LabelStudioGone(LabelStudioError):
    """Label Studio answered, then stopped in the middle of a command: callers add what was done before."""


def default_connection(data_dir: Path | None) -> tuple[str, str | None]:
    """URL and token: LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY, else the server `labelstudio up` started."""
    info = read_info(data_dir) if data_dir else None
    url = os.environ.get("LABEL_STUDIO_URL") or (info.url if info else f"http://127.0.0.1:{DEFAULT_PORT}")
    token = os.environ.get("LABEL_STUDIO_API_KEY") or (info.token if info else None)
    return url, token


class Connection:
    """A checked connection to one Label Studio."""

    def __init__(self, url: str, token: str | None, timeout: float = 60.0) -> None:
        if not token:
            raise LabelStudioError(
                "no Label Studio API token: pass --token, set LABEL_STUDIO_API_KEY, or start a local server "
                "with `lineinspect labelstudio up` (its token is found automatically)"
            )
        if not url.startswith(("http://", "https://")):
            raise LabelStudioError(f"Label Studio URL {url!r} must start with http:// or https://")
        self.url, self.token = url.rstrip("/"), token
        self.answered = False  # once it has, a failure to reach it means it went away
        try:
            self.sdk = LabelStudio(base_url=self.url, api_key=token, timeout=timeout)
        except ApiError as exc:  # the SDK checks a JWT's expiry as it starts
            raise LabelStudioError(f"the API token is not usable: {_detail(exc)}; make a new one in the UI") from None
        self.user = self.call(self.sdk.users.whoami, "check the token")
        self.answered = True

    def call(self, fn: Callable[..., T], doing: str, *args, not_found: str | None = None, **kwargs) -> T:
        """`fn(*args, **kwargs)` with Label Studio's failures as LabelStudioError (404 -> `not_found` if given)."""
        try:
            return fn(*args, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc, doing) from None
        except httpx.HTTPError as exc:
            raise LabelStudioError(f"cannot {doing}: {_reason(exc)}") from None
        except ApiError as exc:
            raise self._api_error(exc, doing, not_found) from None

    def download(self, reference: str) -> bytes:
        """The bytes of an image Label Studio serves (an upload or a local-files path), all of them.

        Label Studio sends a file without its length and closes the connection at the end, so a file
        cut short by a dying server would look whole. Asked for the range `0-`, it sends the length."""
        url = urljoin(self.url + "/", reference)
        if not url.startswith(self.url + "/"):
            raise LabelStudioError(f"{reference!r} is not served by {self.url}; refusing to fetch it")
        # the SDK's auth, access token refreshed when needed
        headers = {**self.sdk._client_wrapper.get_headers(), "Range": "bytes=0-"}
        response = self.call(httpx.get, f"download {reference}", url, headers=headers, timeout=60.0)
        size = len(response.content)
        if response.status_code == 206 and response.headers.get("content-range") != f"bytes 0-{size - 1}/{size}":
            raise LabelStudioError(
                f"Label Studio sent part of image {reference} ({response.headers.get('content-range')}), not all of it"
            )
        if response.status_code not in (200, 206):
            hint = ""
            if "/data/local-files" in reference:
                hint = (
                    ": for local-files storage, Label Studio must run with"
                    " LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true and LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"
                    " set to a folder that holds the file"
                )
            raise LabelStudioError(f"Label Studio cannot serve image {reference} (HTTP {response.status_code}){hint}")
        return response.content

    def _unreachable(self, exc: httpx.TransportError, doing: str) -> LabelStudioError:
        timed_out = isinstance(exc, httpx.TimeoutException)
        if self.answered:
            why = "no answer in time" if timed_out else _reason(exc)
            return LabelStudioGone(f"Label Studio stopped answering at {self.url} (while trying to {doing}: {why})")
        if isinstance(exc, httpx.ConnectError):
            return LabelStudioError(
                f"cannot {doing}: nothing answers at {self.url}. Is Label Studio running there? "
                "(`lineinspect labelstudio up` starts a local one; check --url or LABEL_STUDIO_URL)"
            )
        if timed_out:
            return LabelStudioError(f"cannot {doing}: {self.url} did not answer in time")
        return LabelStudioError(f"cannot {doing}: {_reason(exc)}")

    def _api_error(self, exc: ApiError, doing: str, not_found: str | None) -> LabelStudioError:
        status = exc.status_code
        if status == 401:
            return LabelStudioError(
                f"cannot {doing}: Label Studio at {self.url} refused the token. {_token_hint(self.token)}"
            )
        if said := _translated(_detail(exc)):
            return LabelStudioError(f"cannot {doing}: {said}")
        if status == 404 and not_found:
            return LabelStudioError(not_found)
        if status == 404:
            return LabelStudioError(
                f"cannot {doing}: {self.url} answered 404. Is this the address of Label Studio (not of a page in it)?"
            )
        if status == 403 and "reserved network" in _detail(exc):
            return LabelStudioError(
                f"cannot {doing}: {_detail(exc)}. Label Studio refuses loopback and private addresses unless it runs "
                "with USE_DEFAULT_BANNED_SUBNETS=false (`lineinspect labelstudio up` sets it); or use an address "
                "Label Studio may reach"
            )
        if status == 403:
            return LabelStudioError(f"cannot {doing}: the token's user may not do this (HTTP 403): {_detail(exc)}")
        return LabelStudioError(f"cannot {doing}: Label Studio answered HTTP {status}: {_detail(exc)}")


def _token_hint(token: str) -> str:
    try:
        kind = jwt.decode(token, options={"verify_signature": False}).get("token_type")
    except jwt.InvalidTokenError:
        kind = None
    if kind is None:
        return (
            "It is a legacy token: either it is wrong, or legacy tokens are disabled in this organization "
            "(Organization > API Tokens Settings > legacy tokens, or start Label Studio with "
            "--enable-legacy-api-token the first time). Or use a personal access token from Account & Settings."
        )
    return "It is a personal access token: it was revoked, or it belongs to another Label Studio; make a new one."


def _reason(exc: Exception) -> str:
    """The exception in one line: the CLI prints errors on one line."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _detail(exc: ApiError) -> str:
    """Label Studio's reason on one line, without the HTML it puts in some."""
    body = exc.body
    if isinstance(body, dict):
        body = body.get("validation_errors") or body.get("detail") or body
    text = " ".join(_messages(body)) if isinstance(body, dict | list) else str(body)
    return " ".join(re.sub(r"<[^>]*>", "", text).split())[:500]


def _messages(detail: dict | list | str) -> list[str]:
    """The sentences of a validation error (`{"field": ["sentence", ...]}`), field names left out."""
    if isinstance(detail, dict):
        return [m for value in detail.values() for m in _messages(value)]
    if isinstance(detail, list):
        return [m for value in detail for m in _messages(value)]
    return [str(detail)]


def _unreachable_why(info: str) -> str:
    """Why Label Studio could not reach a URL, from the text of its `requests` error."""
    if "Connection refused" in info:
        return "connection refused: nothing listens there"
    if re.search(r"Failed to resolve|Name or service not known|Temporary failure in name resolution", info):
        return "its host name does not resolve on Label Studio's machine"
    if "timed out" in info.lower():
        return "no answer in the time Label Studio waits: a firewall, or the service is busy"
    if m := re.search(r"(\d{3}) Client Error", info):
        return f"it answered HTTP {m[1]}: is this the address of a lineinspect service?"
    return "no answer"


# Label Studio's own sentences for mistakes a user can make, and what to say instead.
_SENTENCES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (
        re.compile(r"Can't connect to ML backend (\S+), health check failed\..*Additional info: (.*)"),
        lambda m: (
            f"Label Studio cannot reach the ML backend at {m[1]} ({_unreachable_why(m[2])}). Start the "
            "service (`lineinspect serve`) and give --service-url as Label Studio's machine reaches it"
        ),
    ),
    (
        re.compile(r"Able to connect to ML Server, but authentication parameters were either not provided or"),
        lambda m: (
            "the service refused the key: give an API key of the service as --service-key "
            "(`lineinspect keys create NAME --config SERVICE.yaml` makes one)"
        ),
    ),
    (
        re.compile(
            r"Successfully connected to (\S+) but it doesn't look like a valid ML backend\. Reason: (.*?)\.? Check"
        ),
        lambda m: f"the ML backend at {m[1]} refused the project ({m[2]}); the service's log says why",
    ),
    (
        re.compile(r'Absolute local path "(.*?)" must be a subdirectory of LOCAL_FILES_DOCUMENT_ROOT="(.*?)"'),
        lambda m: (
            f"{m[1]} is not under Label Studio's document root {m[2]}, so it cannot serve it: move the folder "
            "under that root, or restart Label Studio with a root that holds it "
            "(`lineinspect labelstudio up --document-root FOLDER`)"
        ),
    ),
    (
        re.compile(r"Can't resolve hostname (\S+)"),
        lambda m: (
            f"Label Studio cannot resolve the host name {m[1]} on its machine: give --service-url with an address "
            "Label Studio's machine knows (an IP address, or a name its DNS or hosts file has)"
        ),
    ),
    (
        re.compile(r'Absolute local path "(.*?)" does not exist'),
        lambda m: (
            f"{m[1]} does not exist on Label Studio's machine: local-files storage reads folders where Label Studio "
            "runs; import with --mode upload, or give the folder as Label Studio's machine sees it"
        ),
    ),
    (
        re.compile(r"LOCAL_FILES_SERVING_ENABLED is disabled|Serving local files can be dangerous"),
        lambda m: (
            "this Label Studio does not serve local files: restart it with LOCAL_FILES_SERVING_ENABLED=true "
            "(`lineinspect labelstudio up` sets it), or import with --mode upload"
        ),
    ),
    (
        re.compile(r'Absolute local path "(.*?)" cannot be the same as LOCAL_FILES_DOCUMENT_ROOT'),
        lambda m: f"{m[1]} is Label Studio's document root itself: put the images in a folder under it and import that",
    ),
]


def _translated(detail: str) -> str | None:
    """Our sentence for one of Label Studio's that we know, else None."""
    for pattern, say in _SENTENCES:
        if m := pattern.search(detail):
            return say(m)
    return None
