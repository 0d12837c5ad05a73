"""Turning raw bodies into what the store keeps, on the writer's content thread.

``Preparer.prepare`` stores a request body that has a session scope (same virtual key and
session id) as a manifest of chunks (observability/chunks.py), sending only the chunks this
process has not stored in that scope yet; other bodies, and every response, are zstd
frames. Which chunks are stored is remembered per scope (bounded, least recently used
scopes forgotten first) for one sweep generation: a sweep (observability/retention.py)
may delete chunks, so when the generation moves everything is sent again.

Not thread-safe: one content thread calls it, and the writer resets it only while no
preparation runs.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import zstandard

from tollway.observability import chunks
from tollway.storage.records import ContentRecord, StoredContent

MAX_KNOWN = 200_000  # chunk digests remembered, over all scopes (about 16 MB)


def scope_of(vk_id: str | None, session_id: str | None) -> str | None:
    """The chunk scope of a session: a digest of (key, session), or None without a session."""
    if not session_id:
        return None
    raw = f"{vk_id or ''}\0{session_id}".encode()
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


class Preparer:
    def __init__(self, level: int = chunks.LEVEL, min_size: int = chunks.MIN_SIZE) -> None:
        self.generation = -1  # unknown until the store's guard names it (ChunksSwept)
        self.min_size = min_size
        self._zstd = zstandard.ZstdCompressor(level=level)
        self._known: OrderedDict[str, set[bytes]] = OrderedDict()
        self._count = 0

    def reset(self, generation: int) -> None:
        """Forget every stored chunk: the next bodies send all of theirs."""
        self.generation = generation
        self._known.clear()
        self._count = 0

    def compress(self, data: bytes) -> bytes:
        return self._zstd.compress(data) if data else b""

    def _scope(self, scope: str) -> set[bytes]:
        known = self._known.get(scope)
        if known is None:
            known = self._known[scope] = set()
        else:
            self._known.move_to_end(scope)
        while self._count > MAX_KNOWN and len(self._known) > 1:
            _old, forgotten = self._known.popitem(last=False)
            self._count -= len(forgotten)
        return known

    def prepare(self, content: ContentRecord, scope: str | None) -> StoredContent:
        response = self.compress(content.response_body)
        body = content.request_body
        if scope is None:
            return StoredContent(content.request_id, content.created_at, None,
                                 self.compress(body), response, (), content)  # fmt: skip
        known = self._scope(scope)
        view = memoryview(body)
        entries: list[tuple[int, bytes]] = []
        inline: list[bool] = []
        new: list[tuple[bytes, bytes]] = []
        start = 0
        for end in chunks.cuts(body, self.min_size):
            piece = view[start:end]
            start = end
            if len(piece) <= chunks.INLINE_MAX:
                entries.append((len(piece), bytes(piece)))
                inline.append(True)
                continue
            ref = chunks.digest(piece)
            if ref not in known:
                known.add(ref)
                self._count += 1
                new.append((ref, self._zstd.compress(piece)))
            entries.append((len(piece), ref))
            inline.append(False)
        manifest = chunks.encode_manifest(entries, inline)
        return StoredContent(content.request_id, content.created_at, scope, manifest,
                             response, tuple(new), content)  # fmt: skip

    def prepare_all(self, items: list[tuple[ContentRecord, str | None]]) -> list[StoredContent]:
        return [self.prepare(content, scope) for content, scope in items]
