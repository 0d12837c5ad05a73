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

import bisect
import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field

import zstandard

from tollway.observability import chunks
from tollway.storage.records import ContentRecord, StoredContent

MAX_KNOWN = 200_000  # chunk digests remembered, over all scopes (about 16 MB)
MAX_LAST_BYTES = 64 * 1024 * 1024  # sessions' last bodies kept to compare the next with


def scope_of(vk_id: str | None, session_id: str | None) -> str | None:
    """The chunk scope of a session: a digest of (key, session), or None without a session."""
    if not session_id:
        return None
    raw = f"{vk_id or ''}\0{session_id}".encode()
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


@dataclass(slots=True)
class _Body:
    """A scope's last body as prepared: its bytes, piece ends and encoded manifest entries
    (taken over as they are by the next body that shares the piece)."""

    data: bytes
    ends: list[int]
    entries: list[bytes]

    def start(self, j: int) -> int:
        return self.ends[j - 1] if j else 0

    def piece_at(self, offset: int) -> int | None:
        """The index of the piece that starts at ``offset``, if one does."""
        if offset == 0:
            return 0 if self.ends else None
        j = bisect.bisect_left(self.ends, offset)
        return j + 1 if j < len(self.ends) - 1 and self.ends[j] == offset else None


@dataclass(slots=True)
class _Scope:
    known: set[bytes] = field(default_factory=set)  # chunks sent in this generation
    last: _Body | None = None


class Preparer:
    """Bodies into manifests. A new body of a session is compared with the session's last
    one first: pieces of the same bytes at the start, and at the same distance from the
    end, are taken over without cutting or hashing them again (a compare is a ``memcmp``,
    many times cheaper than SHA-256), so a turn costs about what it adds."""

    def __init__(self, level: int = chunks.LEVEL, min_size: int = chunks.MIN_SIZE) -> None:
        self.generation = -1  # unknown until the store's guard names it (ChunksSwept)
        self.min_size = min_size
        self._zstd = zstandard.ZstdCompressor(level=level)
        self._scopes: OrderedDict[str, _Scope] = OrderedDict()
        self._count = 0
        self._last_bytes = 0

    def reset(self, generation: int) -> None:
        """Forget every stored chunk: the next bodies send all of theirs."""
        self.generation = generation
        self._scopes.clear()
        self._count = self._last_bytes = 0

    def compress(self, data: bytes) -> bytes:
        return self._zstd.compress(data) if data else b""

    def _scope(self, scope: str) -> _Scope:
        state = self._scopes.get(scope)
        if state is None:
            state = self._scopes[scope] = _Scope()
        else:
            self._scopes.move_to_end(scope)
        while (self._count > MAX_KNOWN or self._last_bytes > MAX_LAST_BYTES) and len(
            self._scopes
        ) > 1:
            _old, forgotten = self._scopes.popitem(last=False)
            self._count -= len(forgotten.known)
            self._last_bytes -= len(forgotten.last.data) if forgotten.last else 0
        return state

    def prepare(self, content: ContentRecord, scope: str | None) -> StoredContent:
        response = self.compress(content.response_body)
        body = content.request_body
        if scope is None:
            return StoredContent(content.request_id, content.created_at, None,
                                 self.compress(body), response, (), content)  # fmt: skip
        state = self._scope(scope)
        out = _Body(body, [], [])
        new: list[tuple[bytes, bytes]] = []
        last, start, shift = state.last, 0, 0
        view = memoryview(body)
        if last is not None:
            start = _same_start(body, last, out)
            shift = len(body) - len(last.data)
        for end in chunks.iter_cuts(body, start, self.min_size):
            # A piece of the last body that starts as far from its end as this one does,
            # with the same bytes from there to the end: the rest is taken over.
            j = last.piece_at(start - shift) if last is not None else None
            if (
                j is not None
                and last is not None
                and body.endswith(memoryview(last.data)[start - shift :])
            ):
                out.ends += [e + shift for e in last.ends[j:]]
                out.entries += last.entries[j:]
                break
            self._piece(view[start:end], state.known, out, new)
            start = end
        self._last_bytes += len(body) - (len(last.data) if last else 0)
        state.last = out
        manifest = chunks.encode_manifest(out.entries)
        return StoredContent(content.request_id, content.created_at, scope, manifest,
                             response, tuple(new), content)  # fmt: skip

    def _piece(
        self, piece: memoryview, known: set[bytes], out: _Body, new: list[tuple[bytes, bytes]]
    ) -> None:
        out.ends.append((out.ends[-1] if out.ends else 0) + len(piece))
        if len(piece) <= chunks.INLINE_MAX:
            out.entries.append(chunks.manifest_entry(len(piece), bytes(piece), True))
            return
        ref = chunks.digest(piece)
        if ref not in known:
            known.add(ref)
            self._count += 1
            new.append((ref, self._zstd.compress(piece)))
        out.entries.append(chunks.manifest_entry(len(piece), ref, False))

    def prepare_all(self, items: list[tuple[ContentRecord, str | None]]) -> list[StoredContent]:
        return [self.prepare(content, scope) for content, scope in items]


def _same_start(body: bytes, last: _Body, out: _Body) -> int:
    """Take over the last body's leading pieces that ``body`` repeats; returns where the
    first differing piece starts. The last body's final piece is never taken: it ended
    where that body did, not at a cut point. Compared in place (``memcmp``), no copies."""
    start, data = 0, memoryview(last.data)
    ends = last.ends
    j, n = 0, len(ends) - 1
    while j < n:
        end = ends[j]
        if end > len(body) or not body.startswith(data[start:end], start):
            break
        start = end
        j += 1
    out.ends += ends[:j]
    out.entries += last.entries[:j]
    return start
