"""Request bodies as content-addressed chunks, so a session's conversation is stored once.

An agent resends the whole conversation with every request: the same tools, system
prompt and earlier messages, with a few messages appended (or, after a compaction, fewer).
``split`` cuts a body into pieces at JSON element boundaries (see ``cuts``, once a piece
has at least ``min_size`` bytes), so the pieces of a message or a tool are the same bytes
in every request that carries it. Each piece is named by its SHA-256 (truncated to 16
bytes; SHA-256 is the fastest hash here, with the CPU's SHA instructions) and stored once
per session scope; a body is stored as a manifest listing its pieces in order.

The cut points only decide how much is shared; whatever they are, the pieces joined are
the body, byte for byte (``join(split(b)) == b`` for every ``b``).

Manifest layout (``MAGIC`` first): a varint count, then per piece a varint
``length << 1 | inline`` followed by the piece itself (inline, for short tails) or its
16-byte digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import zstandard

from tollway.errors import ContentUnreadable

MAGIC = b"TWC1"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MARKER = b',"cache_control":'
DIGEST = 16
MIN_SIZE = 2048
INLINE_MAX = 64
LEVEL = 1  # zstd level: see docs/benchmarks.md "Content storage" (1: 2% larger, less CPU)


def digest(piece: bytes | memoryview) -> bytes:
    return hashlib.sha256(piece).digest()[:DIGEST]


def cuts(body: bytes, min_size: int = MIN_SIZE) -> list[int]:
    """End offsets of the pieces (the last is ``len(body)``).

    A piece ends at the first cut point at least ``min_size`` bytes after its start. Cut
    points are after ``},{`` (between array elements), before ``}]`` (the end of a content
    array) and before ``,"cache_control":``: Claude Code moves its cache marker to the
    newest message each turn, and these two keep the message before it the same bytes.
    """
    return list(iter_cuts(body, 0, min_size))


def iter_cuts(body: bytes, start: int = 0, min_size: int = MIN_SIZE) -> Iterator[int]:
    """The end offsets of ``cuts``, for the pieces from ``start`` on, one at a time.

    The scan looks for ``}`` (``find`` of one byte is ``memchr``, many times faster than
    of a longer needle) and checks the bytes after it; the marker's next position is
    remembered, so the body is scanned for it once.
    """
    n, find = len(body), body.find
    marker = find(MARKER, start)
    while start + min_size < n:
        low = start + min_size
        if 0 <= marker < low:
            marker = find(MARKER, low)
        best, i = -1, find(b"}", max(low - 3, 0))
        while i >= 0:
            after = body[i + 1 : i + 3]
            if after == b",{":
                best = i + 3
                break
            if after[:1] == b"]" and i >= low:
                best = i
                break
            i = find(b"}", i + 1)
        if marker >= 0 and (best < 0 or marker < best):
            best = marker
        if best < 0 or best == n:
            break
        yield best
        start = best
    yield n


def split(body: bytes, min_size: int = MIN_SIZE) -> list[bytes]:
    start, pieces = 0, []
    for end in cuts(body, min_size):
        pieces.append(body[start:end])
        start = end
    return pieces


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if at >= len(data):
            raise ContentUnreadable("stored body manifest is truncated")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def manifest_entry(length: int, data: bytes, inline: bool) -> bytes:
    """One piece's entry in a manifest: its length and ``data`` (the piece itself when
    ``inline``, else its digest)."""
    return _varint(length << 1 | inline) + data


def encode_manifest(entries: list[bytes]) -> bytes:
    """A manifest of ``manifest_entry`` values, in order."""
    return b"".join([MAGIC, _varint(len(entries)), *entries])


def decode_manifest(data: bytes) -> list[tuple[int, bool, bytes]]:
    """``[(length, inline, digest or piece)]``; ContentUnreadable when malformed."""
    if not data.startswith(MAGIC):
        raise ContentUnreadable("not a body manifest")
    count, at = _read_varint(data, len(MAGIC))
    out = []
    for _ in range(count):
        head, at = _read_varint(data, at)
        length, is_inline = head >> 1, bool(head & 1)
        size = length if is_inline else DIGEST
        if at + size > len(data):
            raise ContentUnreadable("stored body manifest is truncated")
        out.append((length, is_inline, data[at : at + size]))
        at += size
    if at != len(data):
        raise ContentUnreadable("stored body manifest has trailing bytes")
    return out


def manifest_digests(data: bytes) -> Iterator[bytes]:
    for _length, is_inline, ref in decode_manifest(data):
        if not is_inline:
            yield ref


def join(manifest: bytes, chunks: dict[bytes, bytes]) -> bytes:
    """The body a manifest names, from ``chunks`` (digest -> zstd data), verified."""
    dctx = zstandard.ZstdDecompressor()
    out = []
    for length, is_inline, ref in decode_manifest(manifest):
        if is_inline:
            out.append(ref)
            continue
        stored = chunks.get(ref)
        if stored is None:
            raise ContentUnreadable(f"stored body is missing chunk {ref.hex()}")
        piece = dctx.decompress(stored, max_output_size=length)
        if len(piece) != length or digest(piece) != ref:
            raise ContentUnreadable(f"stored chunk {ref.hex()} does not match its digest")
        out.append(piece)
    return b"".join(out)
