"""Label Studio's ML-backend protocol: predictions for a project's tasks, straight from the served model.

Label Studio calls `/health`, then `/setup` with the project's labelling config (and where it
runs and a token), then `/predict` with tasks whose images it serves. The answer must name the
project's own Choices control and one of its choices, or Label Studio silently hides it: so the
config is checked at `/setup` and at every `/predict`, and a mismatch is refused with the reason.
Images are fetched from Label Studio (uploads and local files alike) and judged by the same
engine as /v1/inspect, micro-batched with the line's traffic, but not recorded as inspections.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urljoin, urlsplit

import httpx

from annotation.labelstudio.label_config import ChoicesControl, LabelConfigError, choices_control, confidence
from annotation.verdicts import CLASSES
from serving.engine import Engine
from serving.settings import LabelStudioSettings

log = logging.getLogger("lineinspect.labelstudio")


class BackendError(Exception):
    """A request this backend cannot answer; `code` and the message go back to Label Studio."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class LabelStudioBackend:
    def __init__(self, settings: LabelStudioSettings, engine: Engine) -> None:
        self.settings, self.engine = settings, engine
        self._servers: dict[str, tuple[str, str | None]] = {}  # project id -> (hostname, token) from /setup
        self._tokens: dict[str, str] = {}  # refresh token -> access token
        self._http = httpx.AsyncClient(timeout=30.0)

    async def close(self) -> None:
        await self._http.aclose()

    @property
    def model_version(self) -> str:
        """`<name>-<version>-live`: Label Studio asks a backend only for tasks without a prediction of the version
        /setup returns, so this differs from `lineinspect labelstudio predict`'s `<name>-<version>`."""
        model = self.engine.model
        return f"{model.name}-{model.version}-live"

    def control(self, label_config: str | None) -> tuple[ChoicesControl, dict[str, str]]:
        """The project's control and our verdict -> its choice; BackendError when they cannot carry a prediction."""
        if not label_config:
            raise BackendError("no_label_config", "the request has no labelling config (label_config / schema)")
        try:
            control = choices_control(label_config, self.settings.from_name)
            return control, {v: control.choice_for(v, self.settings.label_map) for v in CLASSES}
        except LabelConfigError as exc:
            raise BackendError("label_config_mismatch", str(exc)) from None

    def setup(self, project: str, schema: str | None, hostname: str | None, token: str | None) -> str:
        self.control(schema)
        if hostname:
            self._servers[project.split(".")[0]] = (hostname.rstrip("/"), token)
        return self.model_version

    async def predict(self, tasks: list[dict], label_config: str | None, project: str | None) -> list[dict]:
        """One prediction per task, in order; a task whose image cannot be judged gets an empty result."""
        control, choices = self.control(label_config)
        server = self._server(project)
        return list(await asyncio.gather(*(self._predict_one(t, control, choices, server) for t in tasks)))

    async def _predict_one(self, task: dict, control: ChoicesControl, choices: dict, server) -> dict:
        answer = {"model_version": self.model_version, "score": 0.0, "result": []}
        try:
            reference = (task.get("data") or {}).get(control.image_key)
            if not isinstance(reference, str) or not reference:
                raise BackendError("no_image", f"the task has no {control.image_key!r} field")
            outcome = await self.engine.inspect(await self._fetch(reference, server))
            if outcome.error is not None:
                raise BackendError(outcome.error.reason, str(outcome.error))
        except BackendError as exc:
            log.warning("no prediction for Label Studio task %s: %s", task.get("id"), exc)
            return answer
        score, threshold = outcome.score, outcome.model.threshold
        answer.update(score=confidence(score, threshold), result=control.result(choices[outcome.verdict]))
        return answer

    def _server(self, project: str | None) -> tuple[str | None, str | None]:
        known = self._servers.get((project or "").split(".")[0], (None, None))
        return self.settings.url.rstrip("/") if self.settings.url else known[
            0
        ], self.settings.resolved_token() or known[1]

    async def _fetch(self, reference: str, server: tuple[str | None, str | None]) -> bytes:
        base, token = server
        if base is None:
            raise BackendError(
                "no_label_studio_url",
                "cannot fetch task images: set labelstudio.url in the service config"
                " (Label Studio has not called /setup)",
            )
        url = urljoin(base + "/", reference)
        if not url.startswith(base + "/"):
            shown = urlsplit(reference)._replace(query="", fragment="").geturl()  # a presigned URL's query is a secret
            raise BackendError("foreign_url", f"{shown} is not served by Label Studio at {base}; not fetched")
        # Label Studio sends a file without its length unless asked for a range: a cut-short image would look whole
        try:
            response = await self._http.get(url, headers={**await self._auth(base, token), "Range": "bytes=0-"})
            if response.status_code == 401 and self._tokens.pop(token or "", None):  # access token expired
                response = await self._http.get(url, headers={**await self._auth(base, token), "Range": "bytes=0-"})
        except httpx.HTTPError as exc:
            raise BackendError("label_studio_unreachable", f"cannot fetch {url}: {exc}") from None
        size = len(response.content)
        if response.status_code == 206 and response.headers.get("content-range") != f"bytes 0-{size - 1}/{size}":
            raise BackendError("image_cut_short", f"Label Studio sent part of {url}, not all of it")
        if response.status_code not in (200, 206):
            raise BackendError("image_not_served", f"Label Studio answered HTTP {response.status_code} for {url}")
        return response.content

    async def _auth(self, base: str, token: str | None) -> dict[str, str]:
        """Legacy tokens as `Token`; a personal access token (JWT refresh token) exchanged for an access token."""
        if not token:
            return {}
        if token.count(".") != 2:
            return {"Authorization": f"Token {token}"}
        if token not in self._tokens:
            response = await self._http.post(f"{base}/api/token/refresh", json={"refresh": token})
            if response.status_code != 200:
                raise BackendError(
                    "bad_token", f"Label Studio refused the personal access token ({response.status_code})"
                )
            self._tokens[token] = response.json()["access"]
        return {"Authorization": f"Bearer {self._tokens[token]}"}
