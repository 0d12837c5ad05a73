"""Bounded decoding of an upstream body: gzip, deflate or identity, never past a limit.

The gateway decodes upstream bodies itself rather than forwarding the client's
``accept-encoding``: metering, the content log and the OpenAI usage-chunk filter all need
the plain bytes, so a compressed pass-through would be decoded once anyway (and would need
a decoder for every encoding any client accepts). Decoding is incremental and bounded: no
single piece is larger than ``PIECE`` bytes, and past ``limit`` decoded bytes (or raw
bytes) the response fails with ``UpstreamError``. A 1 MB gzip bomb therefore costs at
most ``limit`` bytes of work and ``PIECE`` bytes of memory at a time.

    decoder = BoundedDecoder("gzip", limit=32 << 20, provider="anthropic")
    for data in raw_chunks:
        for piece in decoder.feed(data):
            relay(piece)
    decoder.finish()
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from tollway.errors import UpstreamError

PIECE = 256 * 1024


class BoundedDecoder:
    """Decodes one body; ``feed`` yields plain pieces, ``finish`` checks it ended whole."""

    __slots__ = ("_encoding", "_limit", "_provider", "_z", "_raw", "_out")

    def __init__(self, encoding: str, *, limit: int, provider: str) -> None:
        self._encoding = encoding.strip().lower()
        if self._encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise UpstreamError(
                f"provider {provider} answered with content-encoding {encoding!r}, which the "
                "gateway did not ask for and cannot decode"
            )
        self._limit = limit
        self._provider = provider
        self._z: zlib._Decompress | None = None
        if self._encoding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._raw = 0
        self._out = 0

    @property
    def decoded_bytes(self) -> int:
        return self._out

    def _grow(self, n: int) -> None:
        self._out += n
        if self._out > self._limit:
            raise UpstreamError(
                f"provider {self._provider} sent a response larger than the gateway accepts "
                f"({self._limit} bytes decoded; max_response_mb in the provider's config)"
            )

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._raw += len(data)
        if self._raw > self._limit:
            self._grow(self._raw)  # raises: the raw body alone is over the limit
        if self._encoding in ("", "identity"):
            self._grow(len(data))
            yield data
            return
        if self._z is None:  # deflate: zlib-wrapped as RFC 9110 says, or raw as some send
            wrapped = len(data) > 0 and data[0] & 0x0F == 8
            self._z = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        try:
            while data:
                piece = self._z.decompress(data, PIECE)
                if piece:
                    self._grow(len(piece))
                    yield piece
                data = self._z.unconsumed_tail
                if self._z.eof and self._z.unused_data:
                    data = self._next_member()
        except zlib.error as exc:
            raise UpstreamError(
                f"provider {self._provider} sent a corrupt {self._encoding} body: {exc}"
            ) from None

    def _next_member(self) -> bytes:
        """gzip allows several members back to back; deflate has no trailing data."""
        assert self._z is not None
        rest = self._z.unused_data
        if self._encoding == "deflate":
            raise zlib.error("data after the end of the deflate stream")
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return rest

    def finish(self) -> None:
        """The body ended: a compressed one must have ended at a stream boundary."""
        if self._z is not None and not self._z.eof and self._raw:
            raise UpstreamError(
                f"provider {self._provider} ended a {self._encoding} body before its end"
            )
