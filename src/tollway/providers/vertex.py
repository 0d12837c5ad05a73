"""Google Vertex AI for Claude: rawPredict and streamRawPredict.

An Anthropic Messages request goes to ``/v1/projects/{project}/locations/{region}/
publishers/anthropic/models/{model}:rawPredict`` (``:streamRawPredict`` when streaming)
with ``anthropic_version: "vertex-2023-10-16"`` in the body and no ``model``; the answer
is already the Anthropic API's (JSON or SSE), errors in Google's shape are turned into
Anthropic error JSON. Credentials come through google-auth: a key's value is either a
service-account JSON document (exchanged for an access token at its ``token_uri``,
refreshed before it expires) or an OAuth access token; a provider without keys uses the
application default credentials. Betas Vertex rejects are dropped here only.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import google.auth
from google.auth import exceptions as google_exceptions
from google.auth.credentials import Credentials
from google.auth.transport.requests import Request
from google.oauth2 import service_account

from tollway.errors import InvalidRequest, UpstreamError
from tollway.providers.base import ANTHROPIC, KeyChoice, UpstreamRequest, UpstreamResponse
from tollway.providers.betas import BetaPolicy, BodyEdit, header_betas
from tollway.providers.cloud_models import vertex_id
from tollway.providers.http import HTTPProvider, HTTPResponse, Outgoing, UpstreamLimits
from tollway.providers.reshape import ReshapedResponse

log = logging.getLogger("tollway.providers")
VERSION = "vertex-2023-10-16"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
APPLICATION_DEFAULT = "application-default"


def read_error(body: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[str, str | None]:
    try:
        doc: Any = json.loads(body)
    except ValueError:
        return body[:500].decode("utf-8", "replace") or "no message", None
    if isinstance(doc, list) and doc:
        doc = doc[0]
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict):
        return str(err.get("message") or "no message"), str(err.get("status") or "") or None
    return body[:500].decode("utf-8", "replace"), None


def _credentials(key: KeyChoice) -> Credentials | None:
    """A key's google-auth credentials; None for a plain access token."""
    text = key.secret.strip()
    if not text.startswith("{"):
        return None
    try:
        info = json.loads(text)
        creds: Credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=SCOPES
        )
    except (ValueError, KeyError) as exc:
        raise UpstreamError(
            f"key {key.name!r} is not a usable service-account JSON document "
            f"({exc.__class__.__name__})"
        ) from None
    return creds


class VertexProvider(HTTPProvider):
    """``VertexProvider("vertex", project="p", region="us-east5", keys=[...])``."""

    def __init__(
        self,
        name: str,
        *,
        project: str,
        region: str,
        keys: list[KeyChoice],
        base_url: str | None = None,
        policy: BetaPolicy | None = None,
        model_map: dict[str, str] | None = None,
        limits: UpstreamLimits | None = None,
    ) -> None:
        default = (
            "https://aiplatform.googleapis.com"
            if region == "global"
            else f"https://{region}-aiplatform.googleapis.com"
        )
        if not keys:
            keys = [KeyChoice(APPLICATION_DEFAULT, "")]
        super().__init__(name, kind="vertex", base_url=base_url or default, keys=keys,
                         limits=limits, dialects=frozenset({ANTHROPIC}))  # fmt: skip
        self.project = project
        self.region = region
        self.policy = policy or BetaPolicy.of(None)
        self._model_map = model_map or {}
        self._creds: dict[KeyChoice, Credentials] = {}
        self._locks: dict[KeyChoice, asyncio.Lock] = {}

    async def token(self, key: KeyChoice) -> str:
        """The bearer token for ``key``, refreshed (off the event loop) when it expires."""
        creds = self._creds.get(key)
        if creds is None:
            if key.name == APPLICATION_DEFAULT and not key.secret:
                creds = await asyncio.to_thread(self._default)
            else:
                creds = _credentials(key)
            if creds is None:
                return key.secret
            self._creds[key] = creds
        if creds.valid:
            return str(creds.token)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if not creds.valid:
                try:
                    await asyncio.to_thread(creds.refresh, Request())
                except google_exceptions.GoogleAuthError as exc:
                    raise UpstreamError(
                        f"provider {self.name}: cannot get a Google access token for key "
                        f"{key.name!r}: {str(exc)[:300]}"
                    ) from None
        return str(creds.token)

    def _default(self) -> Credentials:
        try:
            creds, _ = google.auth.default(scopes=list(SCOPES))
        except google_exceptions.DefaultCredentialsError as exc:
            raise UpstreamError(
                f"provider {self.name} has no keys and no application default credentials: "
                f"{str(exc)[:300]}"
            ) from None
        return creds

    def _url(self, request: UpstreamRequest) -> str:
        root = (f"{self.base_url}/v1/projects/{self.project}/locations/{self.region}"
                "/publishers/anthropic/models/")  # fmt: skip
        if request.path.endswith("/count_tokens"):
            return root + "count-tokens:rawPredict"
        if request.path != "/v1/messages":
            raise InvalidRequest(f"provider {self.name} (vertex) serves /v1/messages only")
        verb = "streamRawPredict" if request.stream else "rawPredict"
        return f"{root}{vertex_id(request.model, self._model_map)}:{verb}"

    async def prepare(self, request: UpstreamRequest, key: KeyChoice) -> Outgoing:
        edit = BodyEdit.parse(request.body)
        kept, dropped = self.policy.split(header_betas(request.headers) + edit.pop_betas())
        edit.set("anthropic_version", VERSION)
        if request.path.endswith("/count_tokens"):
            edit.set("model", vertex_id(request.model, self._model_map))
        else:
            edit.remove("model")
        edit.apply(self.policy, dropped)
        notes = [f"beta {b}" for b in dropped] + [f"field {f}" for f in edit.dropped]
        if notes:
            log.info("provider %s (vertex) dropped %s: Vertex AI does not accept them",
                     self.name, ", ".join(notes))  # fmt: skip
        replaced = ("anthropic-beta", "content-type")
        headers = [(k, v) for k, v in request.headers if k.lower() not in replaced]
        headers.append(("content-type", "application/json"))
        if kept:
            headers.append(("anthropic-beta", ",".join(kept)))
        headers.append(("authorization", f"Bearer {await self.token(key)}"))
        return Outgoing(self._url(request), headers, edit.encode())

    def wrap(self, resp: HTTPResponse, request: UpstreamRequest) -> UpstreamResponse:
        return ReshapedResponse(resp, provider=self.name, read_error=read_error)
