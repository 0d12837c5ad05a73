"""AWS Bedrock for Claude: InvokeModel and InvokeModelWithResponseStream.

The pipeline hands this provider an Anthropic Messages request; on the wire it becomes
Bedrock's: ``POST /model/{model id, URL-encoded}/invoke`` (or ``/invoke-with-response-
stream``), a body without ``model`` and ``stream`` but with ``anthropic_version:
"bedrock-2023-05-31"`` and the betas Bedrock takes as a body ``anthropic_beta`` list, signed
with SigV4 (botocore) or sent with a Bedrock API key as a bearer token. The answer comes
back as the Anthropic API's: a JSON message as is, the binary event stream decoded to SSE
(``eventstream.py``), errors as Anthropic error JSON. ``count_tokens`` uses Bedrock's
CountTokens. Betas and fields Bedrock rejects are dropped here only (``betas.py``).
A model id whose vendor is not Anthropic (``meta.``, ``amazon.``, ``mistral.``, ...) goes
to the Converse API instead (``converse.py``), answered in the same Anthropic shape.
"""

from __future__ import annotations

import base64
import logging
from urllib.parse import quote

import msgspec
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tollway.errors import InvalidRequest
from tollway.providers import converse
from tollway.providers.base import (
    ANTHROPIC,
    AwsKey,
    KeyChoice,
    UpstreamRequest,
    UpstreamResponse,
)
from tollway.providers.betas import BetaPolicy, BodyEdit, header_betas
from tollway.providers.cloud_models import bedrock_id
from tollway.providers.eventstream import CONTENT_TYPE as EVENT_STREAM
from tollway.providers.eventstream import to_sse
from tollway.providers.http import HTTPProvider, HTTPResponse, Outgoing, UpstreamLimits
from tollway.providers.reshape import ReshapedResponse

log = logging.getLogger("tollway.providers")
VERSION = "bedrock-2023-05-31"
_json = msgspec.json.Encoder()


class _Error(msgspec.Struct):
    message: str = ""
    Message: str = ""


class _Count(msgspec.Struct):
    inputTokens: int  # noqa: N815 (Bedrock's field name)


_error = msgspec.json.Decoder(_Error)
_count = msgspec.json.Decoder(_Count)


def bedrock_body(
    request: UpstreamRequest, policy: BetaPolicy, *, count: bool = False
) -> tuple[bytes, list[str]]:
    """The InvokeModel body for an Anthropic request, and what was dropped for Bedrock."""
    edit = BodyEdit.parse(request.body)
    betas = header_betas(request.headers) + edit.pop_betas()
    kept, dropped = policy.split(betas)
    edit.remove("model", "stream")
    edit.set("anthropic_version", VERSION)
    if kept:
        edit.set("anthropic_beta", kept)
    edit.apply(policy, dropped)
    if count and "max_tokens" not in edit.doc:
        edit.set("max_tokens", 1)  # CountTokens takes an InvokeModel body, which needs it
    notes = [f"beta {b}" for b in dropped] + [f"field {f}" for f in edit.dropped]
    return edit.encode(), notes


def read_error(body: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[str, str | None]:
    kind = None
    for name, value in headers:
        if name == b"x-amzn-errortype":
            kind = value.decode("latin-1").split(":", 1)[0]
    try:
        parsed = _error.decode(body)
        message = parsed.message or parsed.Message
    except msgspec.DecodeError:
        message = body[:500].decode("utf-8", "replace")
    return message or "no message", kind


def _count_body(body: bytes) -> bytes:
    try:
        return _json.encode({"input_tokens": _count.decode(body).inputTokens})
    except msgspec.DecodeError:
        return body


class BedrockProvider(HTTPProvider):
    """``BedrockProvider("bedrock", region="us-east-1", keys=[...], aws={key: AwsKey(..)})``."""

    def __init__(
        self,
        name: str,
        *,
        region: str,
        keys: list[KeyChoice],
        base_url: str | None = None,
        aws: dict[KeyChoice, AwsKey] | None = None,
        policy: BetaPolicy | None = None,
        model_map: dict[str, str] | None = None,
        inference_profile: str | None = None,
        limits: UpstreamLimits | None = None,
    ) -> None:
        super().__init__(
            name, kind="bedrock", keys=keys, limits=limits, dialects=frozenset({ANTHROPIC}),
            base_url=base_url or f"https://bedrock-runtime.{region}.amazonaws.com",
        )  # fmt: skip
        self.region = region
        self._aws = aws or {}
        self.policy = policy or BetaPolicy.of(None)
        self._model_map = model_map or {}
        self._profile = inference_profile

    def _model_id(self, request: UpstreamRequest) -> str:
        if request.model not in self._model_map and converse.is_converse(request.model):
            return request.model  # a non-Claude id is sent as given (with any profile in it)
        return bedrock_id(request.model, self._model_map, self._profile)

    def _path(self, request: UpstreamRequest) -> str:
        model = self._model_id(request)
        target = quote(model, safe="")
        if request.path.endswith("/count_tokens"):
            if converse.is_converse(model):
                raise InvalidRequest(
                    f"provider {self.name} (bedrock): token counting is not available for "
                    f"{model} (Converse models have no count-tokens operation)"
                )
            return f"/model/{target}/count-tokens"
        if request.path != "/v1/messages":
            raise InvalidRequest(f"provider {self.name} (bedrock) serves /v1/messages only")
        if converse.is_converse(model):
            return f"/model/{target}/converse-stream" if request.stream else (
                f"/model/{target}/converse"
            )  # fmt: skip
        return f"/model/{target}/invoke-with-response-stream" if request.stream else (
            f"/model/{target}/invoke"
        )  # fmt: skip

    async def prepare(self, request: UpstreamRequest, key: KeyChoice) -> Outgoing:
        count = request.path.endswith("/count_tokens")
        url = self.base_url + self._path(request)
        if converse.is_converse(self._model_id(request)):
            body, dropped = converse.converse_body(request.body)
            notes = [f"field {f}" for f in dropped]
        else:
            body, notes = bedrock_body(request, self.policy, count=count)
        if notes:
            log.info("provider %s (bedrock) dropped %s: Bedrock does not accept them",
                     self.name, ", ".join(notes))  # fmt: skip
        if count:
            encoded = base64.b64encode(body).decode("ascii")
            body = _json.encode({"input": {"invokeModel": {"body": encoded}}})
        accept = "application/vnd.amazon.eventstream" if request.stream and not count else (
            "application/json"
        )  # fmt: skip
        headers = {"Content-Type": "application/json", "Accept": accept}
        creds = self._aws.get(key)
        if creds is None:  # a Bedrock API key (AWS_BEARER_TOKEN_BEDROCK)
            headers["Authorization"] = f"Bearer {key.secret}"
        else:
            signed = AWSRequest(method="POST", url=url, data=body, headers=headers)
            secret = Credentials(creds.access_key_id, key.secret, creds.session_token)
            SigV4Auth(secret, "bedrock", self.region).add_auth(signed)
            headers = dict(signed.headers.items())
        return Outgoing(url, list(headers.items()), body)

    def wrap(self, resp: HTTPResponse, request: UpstreamRequest) -> UpstreamResponse:
        if request.path.endswith("/count_tokens"):
            return ReshapedResponse(resp, provider=self.name, read_error=read_error,
                                    convert_body=_count_body)  # fmt: skip
        streamed = request.stream and any(
            k == b"content-type" and v.startswith(EVENT_STREAM) for k, v in resp.headers
        )
        model = self._model_id(request)
        if converse.is_converse(model):
            return ReshapedResponse(
                resp, provider=self.name, read_error=read_error,
                stream=(lambda chunks: converse.to_sse(chunks, self.name, model))
                if streamed else None,
                content_type=b"text/event-stream" if streamed else b"application/json",
                convert_body=None if streamed else (lambda b: converse.message_body(b, model)),
            )  # fmt: skip
        return ReshapedResponse(
            resp, provider=self.name, read_error=read_error,
            stream=(lambda chunks: to_sse(chunks, self.name)) if streamed else None,
            content_type=b"text/event-stream" if streamed else None,
        )  # fmt: skip
