"""A cloud's answer re-expressed as the Anthropic API's, so relay and meter see one shape.

``ReshapedResponse`` wraps the HTTP response: an error body becomes Anthropic error JSON
(the cloud's message kept, its own error name in brackets), and a stream may be decoded
from the cloud's framing (Bedrock's binary event stream) into Anthropic SSE.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import msgspec

from tollway.providers.base import UpstreamResponse

_json = msgspec.json.Encoder()
_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 408: "timeout_error", 413: "request_too_large",
    429: "rate_limit_error", 503: "overloaded_error", 529: "overloaded_error",
}  # fmt: skip

StreamConverter = Callable[[AsyncIterator[bytes]], AsyncIterator[bytes]]
ErrorReader = Callable[[bytes, list[tuple[bytes, bytes]]], tuple[str, str | None]]


def error_type(status: int) -> str:
    return _TYPES.get(status, "api_error")


def anthropic_error(status: int, message: str) -> bytes:
    error = {"type": error_type(status), "message": message}
    return _json.encode({"type": "error", "error": error})


def is_anthropic_error(body: bytes) -> bool:
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return False
    return isinstance(doc, dict) and doc.get("type") == "error" and "error" in doc


class ReshapedResponse:
    """``ReshapedResponse(resp, provider="bedrock-us", read_error=..., stream=...)``."""

    def __init__(
        self,
        inner: UpstreamResponse,
        *,
        provider: str,
        read_error: ErrorReader,
        stream: StreamConverter | None = None,
        content_type: bytes | None = None,
        convert_body: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self._inner = inner
        self._convert_body = convert_body
        self._provider = provider
        self._read_error = read_error
        self._stream = stream if inner.status == 200 else None
        self.status = inner.status
        headers = inner.headers
        if content_type is not None and inner.status == 200:
            headers = [(k, v) for k, v in headers if k != b"content-type"]
            headers.append((b"content-type", content_type))
        elif inner.status != 200:
            headers = [(k, v) for k, v in headers if k != b"content-type"]
            headers.append((b"content-type", b"application/json"))
        self.headers = headers

    async def chunks(self) -> AsyncIterator[bytes]:
        if self.status != 200:
            yield await self.read()
            return
        source = self._inner.chunks()
        if self._convert_body is not None:
            yield await self.read()
            return
        if self._stream is None:
            async for chunk in source:
                yield chunk
            return
        async for chunk in self._stream(source):
            yield chunk

    async def read(self) -> bytes:
        body = await self._inner.read()
        if self.status == 200:
            return self._convert_body(body) if self._convert_body is not None else body
        if is_anthropic_error(body):
            return body
        message, kind = self._read_error(body, self._inner.headers)
        named = f" ({kind})" if kind else ""
        return anthropic_error(self.status, f"provider {self._provider}{named}: {message}")

    def close(self) -> None:
        self._inner.close()
