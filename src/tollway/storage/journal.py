"""The reservation journal: budget reservations that outlive the process (``kill -9``).

An append-only file beside the database. Each reservation is appended, one JSON line in
one ``write(2)``, before its request leaves for the upstream; each settlement (and budget
reset) after it, with the absolute spend it left in each budget window. What ``write(2)``
accepted is in the kernel's page cache and stays there when the process dies, so no
``fsync`` is paid per request (a power cut can lose the last few seconds; a crash of the
process cannot).

At start, ``Journal.replay`` reads it. For each budget window the last spend it records
is the truth at the time of the crash: every change to spend is journaled before the
database sees it. A reservation with no settlement is an orphan: its request was in
flight and its real cost is lost with the process, so it stays charged at its worst case
(the reservation) and gets a request record saying so. ``Journal.settle_orphans`` appends
those charges as settlements before the database is written, so a second crash during
start-up does not charge them twice.

The file is rotated once it passes ``rotate_bytes``: it becomes ``<path>.old`` and a new
file starts with the reservations still open. ``<path>.old`` is deleted once the spend
drained at the rotation is in the database (``committed``); replay reads both.

    journal = Journal(Path("tollway.db.journal"))
    replay = journal.replay()           # at start, before any request
    journal.reserved(rid, amount, keys, meta)   # on the hot path
    journal.settled(rid, [(budget_id, window_start, spent), ...])
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()
_ROTATE_BYTES = 4 * 1024 * 1024

WindowKey = tuple[str, float]  # budget id, window start (Unix seconds)


@dataclass(frozen=True, slots=True)
class Orphan:
    """A reservation whose request never settled: charged at ``amount``."""

    id: str
    amount: Decimal
    keys: tuple[WindowKey, ...]
    vk_id: str | None
    model: str | None
    at: float


@dataclass(slots=True)
class Replay:
    """What the journal knew at the crash: last spend per window, and the orphans."""

    spent: dict[WindowKey, Decimal] = field(default_factory=dict)
    orphans: list[Orphan] = field(default_factory=list)


class Journal:
    """Append-only reservation journal; see the module docstring."""

    def __init__(self, path: Path, rotate_bytes: int = _ROTATE_BYTES) -> None:
        self.path = path
        self.old = path.with_name(path.name + ".old")
        self.rotate_bytes = rotate_bytes
        # Reservation ids restart with each process; the epoch keeps them apart in the file.
        self.epoch = secrets.token_hex(4)
        self._fd: int | None = None
        self._size = 0
        self.writes = 0

    # -- start-up

    def replay(self) -> Replay:
        """Read ``<path>.old`` then ``<path>``; tolerates a torn last line."""
        replay = Replay()
        opened: dict[str, Orphan] = {}
        for path in (self.old, self.path):
            for entry in _entries(path):
                kind = entry[0]
                if kind == "R":
                    _, jid, amount, keys, vk_id, model, at = entry
                    keys = tuple((str(b), float(w)) for b, w in keys)
                    opened[jid] = Orphan(jid, Decimal(amount), keys, vk_id, model, float(at))
                elif kind == "S":
                    _, jid, values = entry
                    opened.pop(jid, None)
                    for budget_id, window, spent in values:
                        replay.spent[(str(budget_id), float(window))] = Decimal(spent)
        replay.orphans = list(opened.values())
        return replay

    def settle_orphans(
        self, charges: Iterable[tuple[Orphan, Sequence[tuple[str, float, Decimal]]]]
    ) -> None:
        """Append the orphans' charges as settlements (before the database is written)."""
        for orphan, values in charges:
            self._append(["S", orphan.id, [[b, w, str(s)] for b, w, s in values]])

    def restart(self) -> None:
        """Start an empty journal, once everything replayed is in the database."""
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.old.unlink()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        self._size = 0

    # -- the hot path

    def reserved(
        self,
        rid: int,
        amount: Decimal,
        keys: Sequence[WindowKey],
        vk_id: str | None,
        model: str | None,
        at: float,
    ) -> None:
        self._append(self.entry(rid, amount, keys, vk_id, model, at))

    def settled(self, rid: int | None, values: Sequence[tuple[str, float, Decimal]]) -> None:
        """Absolute spend after a settlement (``rid`` None: a reset or other change)."""
        jid = self._jid(rid) if rid is not None else ""
        self._append(["S", jid, [[b, w, str(s)] for b, w, s in values]])

    def wants_rotation(self) -> bool:
        return self._size >= self.rotate_bytes and not self.old.exists()

    def rotate(self, still_open: Iterable[list[Any]]) -> None:
        """Move the file aside and start a new one with the reservations still open."""
        self.close()
        os.replace(self.path, self.old)
        self._open()
        for entry in still_open:
            self._append(entry)

    def committed(self) -> None:
        """The spend drained at the last rotation is in the database: drop the old file."""
        with contextlib.suppress(FileNotFoundError):
            self.old.unlink()

    def entry(
        self,
        rid: int,
        amount: Decimal,
        keys: Sequence[WindowKey],
        vk_id: str | None,
        model: str | None,
        at: float,
    ) -> list[Any]:
        return ["R", self._jid(rid), str(amount), [list(k) for k in keys], vk_id, model, at]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _jid(self, rid: int) -> str:
        return f"{self.epoch}.{rid}"

    def _open(self) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._size = os.fstat(self._fd).st_size

    def _append(self, entry: list[Any]) -> None:
        if self._fd is None:
            self._open()
        assert self._fd is not None
        line = _encoder.encode(entry) + b"\n"
        os.write(self._fd, line)  # O_APPEND: one write(2), whole lines even when torn at EOF
        self._size += len(line)
        self.writes += 1


def _entries(path: Path) -> Iterable[list[Any]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for line in data.split(b"\n"):
        if not line:
            continue
        try:
            entry = msgspec.json.decode(line)
        except msgspec.DecodeError:
            continue  # a line torn by a crash mid-write: it never reached its request
        if isinstance(entry, list) and entry and entry[0] in ("R", "S"):
            yield entry


def journal_path_for(url: str) -> Path:
    """Beside a SQLite database (``tollway.db.journal``); ``./tollway.journal`` otherwise."""
    if url.startswith("sqlite:"):
        path = Path(url.removeprefix("sqlite:///").removeprefix("sqlite://") or "tollway.db")
        return path.with_name(path.name + ".journal")
    return Path("tollway.journal")
