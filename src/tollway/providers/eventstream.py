"""AWS's binary event stream (``application/vnd.amazon.eventstream``), both ways.

Bedrock's InvokeModelWithResponseStream sends frames: a prelude (total and header
lengths, CRC32), typed headers (``:message-type`` event|exception, ``:event-type``
chunk), a payload ``{"bytes": "<base64 of one Anthropic stream event>"}`` and a CRC32 of
the whole frame. Decoding uses botocore's parser (checksums verified); ``frame`` writes
one, for the Bedrock client surface.

    for headers, payload in decoder.feed(data): ...
    frame({":message-type": "event", ":event-type": "chunk"}, payload)
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping

import msgspec

from tollway.errors import UpstreamError

CONTENT_TYPE = b"application/vnd.amazon.eventstream"
_json = msgspec.json.Encoder()


class _Chunk(msgspec.Struct):
    bytes: str = ""


class _Typed(msgspec.Struct):
    type: str = ""


class _Message(msgspec.Struct):
    message: str = ""
    Message: str = ""


_chunk = msgspec.json.Decoder(_Chunk)
_typed = msgspec.json.Decoder(_Typed)
_message = msgspec.json.Decoder(_Message)


class EventStreamDecoder:
    """Frames out of a byte stream cut anywhere; ``finish`` fails on a partial frame."""

    def __init__(self, provider: str) -> None:
        # botocore is imported where a stream is decoded: only Bedrock providers need it.
        from botocore.eventstream import EventStreamBuffer, ParserError

        self._parser_error: type[Exception] = ParserError
        self._buffer = EventStreamBuffer()
        self._provider = provider
        self._pending = 0  # bytes fed that no whole frame has used yet

    def feed(self, data: bytes) -> Iterator[tuple[Mapping[str, object], bytes]]:
        self._buffer.add_data(data)
        self._pending += len(data)
        try:
            for message in self._buffer:
                self._pending -= message.prelude.total_length
                yield message.headers, message.payload
        except self._parser_error as exc:
            raise UpstreamError(
                f"provider {self._provider} sent a corrupt event stream frame "
                f"({exc.__class__.__name__})"
            ) from None

    def finish(self) -> None:
        if self._pending:
            raise UpstreamError(
                f"provider {self._provider} ended its event stream in the middle of a frame"
            )


def frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event stream message with string headers (value type 7)."""
    head = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        head += struct.pack(">B", len(raw_name)) + raw_name
        head += struct.pack(">BH", 7, len(raw_value)) + raw_value
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack(">II", total, len(head))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + bytes(head) + payload
    return body + struct.pack(">I", zlib.crc32(body))


def chunk_frame(event_json: bytes) -> bytes:
    """An Anthropic stream event, framed as Bedrock sends it."""
    payload = _json.encode({"bytes": base64.b64encode(event_json).decode("ascii")})
    return frame(
        {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"},
        payload,
    )


def exception_frame(kind: str, message: str) -> bytes:
    return frame(
        {":exception-type": kind, ":content-type": "application/json",
         ":message-type": "exception"},
        _json.encode({"message": message}),
    )  # fmt: skip


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def frame_to_sse(headers: Mapping[str, object], payload: bytes, provider: str) -> bytes:
    """One Bedrock frame as Anthropic SSE bytes; an exception frame raises UpstreamError."""
    kind = _text(headers.get(":message-type", "event"))
    if kind != "event":
        name = _text(headers.get(":exception-type") or headers.get(":error-code") or kind)
        try:
            parsed = _message.decode(payload)
            text = parsed.message or parsed.Message
        except msgspec.DecodeError:
            text = payload[:500].decode("utf-8", "replace")
        raise UpstreamError(f"provider {provider} stream failed ({name}): {text}")
    if _text(headers.get(":event-type", "")) != "chunk":
        return b""
    try:
        data = base64.b64decode(_chunk.decode(payload).bytes, validate=True)
        event = _typed.decode(data).type
    except (msgspec.DecodeError, ValueError):
        raise UpstreamError(f"provider {provider} sent an unreadable stream chunk") from None
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


async def to_sse(chunks: AsyncIterator[bytes], provider: str) -> AsyncIterator[bytes]:
    """Bedrock's event stream in, Anthropic SSE out (one piece per upstream chunk)."""
    decoder = EventStreamDecoder(provider)
    async for data in chunks:
        out: list[bytes] = []
        try:
            for headers, payload in decoder.feed(data):
                out.append(frame_to_sse(headers, payload, provider))
        except UpstreamError:
            if out:  # the events before the failure still reach the client
                yield b"".join(out)
            raise
        if out:
            yield b"".join(out)
    decoder.finish()
