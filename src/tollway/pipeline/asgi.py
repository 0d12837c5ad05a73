"""Small ASGI helpers for the hot path (no framework on the request path)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec

from tollway.errors import Overloaded, PayloadTooLarge

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"


class ClientDisconnected(Exception):
    """The client went away before its request was read; nothing can be answered."""


class BodyBytes:
    """Request body bytes held in memory across all requests, with a ceiling.

    A request's bytes count from the chunk that brought them until the request ends.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, n: int) -> None:
        if self.used + n > self.limit:
            raise Overloaded(
                f"the gateway is holding {self.used} bytes of request bodies, its limit "
                f"(gateway.max_body_bytes_in_flight {self.limit}); retry in a moment"
            )
        self.used += n

    def release(self, n: int) -> None:
        self.used = max(0, self.used - n)


async def read_body(receive: Receive, limit: int, held: BodyBytes | None = None) -> bytes:
    """The whole body, at most `limit` bytes, counted in `held` (released on failure)."""
    size = 0
    parts: list[bytes] = []
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(_too_large(limit))
            if held is not None and chunk:
                held.take(len(chunk))
            parts.append(chunk)
            if not message.get("more_body", False):
                break
    except BaseException:
        if held is not None:
            held.release(sum(len(p) for p in parts))
        raise
    return parts[0] if len(parts) == 1 else b"".join(parts)


_PEEK_BYTES = 64 * 1024
_PEEK_S = 1.0
_MODEL = re.compile(rb'^\s*\{\s*"model"\s*:\s*"([^"\\]{1,200})"')
_model_only = msgspec.json.Decoder(dict[str, msgspec.Raw])


async def peek_model(receive: Receive) -> str | None:
    """The ``model`` a refused request named, from at most 64 KiB read within 1 s.

    Used only to log who asked for what when the key is refused; never buffers more.
    """
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(_PEEK_S):
            while size < _PEEK_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunk = message.get("body", b"")
                parts.append(chunk[: _PEEK_BYTES - size])
                size += len(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        pass
    head = b"".join(parts)
    found = _MODEL.match(head)
    if found:
        return found.group(1).decode("utf-8", "replace")
    try:
        value = _model_only.decode(head).get("model")
        model = msgspec.json.decode(value) if value is not None else None
    except (msgspec.DecodeError, ValueError):
        return None
    return model[:200] if isinstance(model, str) else None


def _too_large(limit: int) -> str:
    return (
        f"the request body is larger than this gateway accepts ({limit} bytes); "
        "raise gateway.max_body_bytes in the config or send less"
    )


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = JSON,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    raw = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if headers:
        raw.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
