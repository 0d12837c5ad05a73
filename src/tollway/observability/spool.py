"""Bodies spilled to disk when the writer's memory bound is reached, read back in order.

The request path appends a frame (a 4-byte length, then msgpack of the body and its
scope) with one ``write`` to an ``O_APPEND`` file: under overload that costs a page-cache
copy instead of a dropped body. The writer reads frames back on its content thread as
memory frees up; a frame counts as done only once the batch holding it has committed
(``commit``), and the file is emptied when every frame in it is done.

A process that dies (``kill -9``, OOM) leaves its file behind. Each file is held under an
``flock`` by the process writing it, so at the next start ``Spool.orphans`` finds the files
nobody holds, and the writer stores their bodies before it empties and removes them. A
frame cut short by the death is ignored. Storing a body twice is harmless (the store
keeps the first), so a crash between a commit and ``commit`` loses nothing either. Frames
are not fsynced: they survive the process, not a power cut.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import secrets
import struct
import time
from pathlib import Path

import msgspec

from tollway.storage.records import ContentRecord

log = logging.getLogger("tollway.writer")
_LEN = struct.Struct(">I")
Item = tuple[ContentRecord, str | None]
_serial = itertools.count(1)  # several writers in one process each get their own file
PATTERN = "content-*.spool"
EMPTY_ORPHAN_AGE_S = 60.0  # an empty unlocked file this old is left over, not being opened


class SpoolCorrupt(Exception):
    """A frame that does not decode: the file is set aside, never replayed again."""


class Spool:
    """``spool.put(content, scope)`` on the loop; ``spool.take(...)`` on a worker thread;
    ``spool.commit(offset)`` once what was taken is stored."""

    def __init__(self, directory: Path, path: Path | None = None) -> None:
        name = f"content-{os.getpid()}-{next(_serial)}-{secrets.token_hex(4)}.spool"
        self.path = path or directory / name
        self.adopted = path is not None  # left by a process that died: read only
        self._fd: int | None = None
        self.written = 0  # end of the last whole frame
        self.read = 0  # frames before this offset have been handed to the writer
        self.committed = 0  # ... and stored
        self.frames = 0  # frames after ``read``

    @property
    def pending_bytes(self) -> int:
        return self.written - self.committed

    @property
    def done(self) -> bool:
        return self.committed == self.written

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)  # ours while we live (an orphan scan waits)
            self._fd = fd
            self.written = self.read = self.committed = self.frames = 0
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
        ``max_bytes``; with ``one``, at least one), and the offset after the last one
        read. Runs off the loop; changes nothing here. SpoolCorrupt on a bad frame."""
        items: list[Item] = []
        fd = self._fd
        if fd is None:
            return items, start
        at = start
        while at < end and len(items) < max_frames:
            (size,) = _LEN.unpack(os.pread(fd, _LEN.size, at))
            if at + _LEN.size + size - start > max_bytes and not (one and not items):
                break
            payload = os.pread(fd, size, at + _LEN.size)
            try:
                rid, created, request, response, required, scope = msgspec.msgpack.decode(payload)
                items.append((ContentRecord(rid, created, request, response, required), scope))
            except (msgspec.DecodeError, ValueError, TypeError) as exc:
                raise SpoolCorrupt(f"{self.path}: frame at offset {at}: {exc}") from exc
            at += _LEN.size + size
        return items, at

    def taken(self, offset: int, frames: int) -> None:
        """Frames up to ``offset`` are with the writer (not stored yet)."""
        self.read = offset
        self.frames -= frames

    def commit(self, offset: int) -> None:
        """Frames up to ``offset`` are stored; once all are, the file is emptied for reuse."""
        self.committed = max(self.committed, offset)
        if self.done and self._fd is not None and not self.adopted:
            os.ftruncate(self._fd, 0)
            self.written = self.read = self.committed = 0

    def set_aside(self) -> None:
        """Keep a file that does not decode for inspection (``.corrupt``); stop reading it."""
        log.error("spool file %s has a frame that does not decode; kept as %s.corrupt and "
                  "not read further (%d bodies in it unread)", self.path, self.path.name,
                  self.frames)  # fmt: skip
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.path.rename(self.path.with_name(self.path.name + ".corrupt"))
        self.frames = 0
        self.read = self.committed = self.written

    def close(self) -> None:
        if self._fd is not None:
            if self.done:
                self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None

    @classmethod
    def orphans(cls, directory: Path) -> list[Spool]:
        """Files in ``directory`` that no live process holds: left by one that died."""
        out = []
        for path in sorted(directory.glob(PATTERN)):
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:  # closed by its owner meanwhile
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a live writer's
                os.close(fd)
                continue
            spool = cls(directory, path)
            spool._fd = fd
            spool.written, spool.frames = _whole_frames(fd)
            if spool.frames:
                out.append(spool)
                continue
            if time.time() - os.fstat(fd).st_mtime > EMPTY_ORPHAN_AGE_S or os.fstat(fd).st_size:
                path.unlink(missing_ok=True)  # nothing whole in it, and not just created
            os.close(fd)
        return out


def _whole_frames(fd: int) -> tuple[int, int]:
    """The end of the last whole frame, and how many: a frame cut by a crash is left out."""
    size = os.fstat(fd).st_size
    at = frames = 0
    while at + _LEN.size <= size:
        (length,) = _LEN.unpack(os.pread(fd, _LEN.size, at))
        if at + _LEN.size + length > size:
            break
        at += _LEN.size + length
        frames += 1
    return at, frames
