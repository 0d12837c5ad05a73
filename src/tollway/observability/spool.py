"""Bodies spilled to disk when the writer's memory bound is reached, read back in order.

The request path appends a frame (a 4-byte length, then msgpack of the body and its
scope) with one ``write`` to an ``O_APPEND`` file: under overload that costs a page-cache
copy instead of a dropped body. The writer reads frames back on its content thread as
memory frees up, and empties the file once everything in it has been stored.
"""

from __future__ import annotations

import itertools
import os
import struct
from pathlib import Path

import msgspec

from tollway.storage.records import ContentRecord

_LEN = struct.Struct(">I")
Item = tuple[ContentRecord, str | None]
_serial = itertools.count(1)  # several writers in one process each get their own file


class Spool:
    """``spool.put(content, scope)`` on the loop; ``spool.take(n)`` on a worker thread."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / f"content-{os.getpid()}-{next(_serial)}.spool"
        self._fd: int | None = None
        self.written = 0  # bytes appended
        self.consumed = 0  # bytes read back and handed to the writer
        self.frames = 0  # frames appended and not yet read back

    @property
    def pending_bytes(self) -> int:
        return self.written - self.consumed

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC
            self._fd = os.open(self.path, flags, 0o600)
            self.written = self.consumed = self.frames = 0
        return self._fd

    def put(self, content: ContentRecord, scope: str | None) -> int:
        """Append one body; returns the bytes written. OSError (disk full...) propagates."""
        doc = (content.request_id, content.created_at, content.request_body,
               content.response_body, content.required, scope)  # fmt: skip
        payload = msgspec.msgpack.encode(doc)
        frame = _LEN.pack(len(payload)) + payload
        fd = self._open()
        done = 0
        while done < len(frame):
            done += os.write(fd, frame[done:])
        self.written += len(frame)
        self.frames += 1
        return len(frame)

    def take(
        self, start: int, end: int, max_bytes: int, max_frames: int, one: bool = False
    ) -> tuple[list[Item], int]:
        """Frames between offsets ``start`` and ``end`` (at most ``max_frames`` and
        ``max_bytes``; with ``one``, at least one), and the offset after the last one read. Runs off
        the loop; changes nothing here."""
        items: list[Item] = []
        with open(self.path, "rb") as f:
            f.seek(start)
            at = start
            while at < end and len(items) < max_frames:
                (size,) = _LEN.unpack(f.read(_LEN.size))
                if at + _LEN.size + size - start > max_bytes and not (one and not items):
                    break
                rid, created, request, response, required, scope = msgspec.msgpack.decode(
                    f.read(size)
                )
                items.append((ContentRecord(rid, created, request, response, required), scope))
                at += _LEN.size + size
        return items, at

    def consumed_to(self, offset: int, frames: int) -> None:
        """Mark frames read back; once all are, the file is emptied for reuse."""
        self.consumed = offset
        self.frames -= frames
        if self.consumed == self.written and self._fd is not None:
            os.ftruncate(self._fd, 0)
            self.written = self.consumed = 0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            if self.consumed == self.written:
                self.path.unlink(missing_ok=True)
