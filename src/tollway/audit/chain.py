"""The tamper-evident log's hash chain: pure functions, no I/O.

Each entry's hash is SHA-256 over its canonical content (sequence number, time, kind,
actor, subject, document) and the previous entry's hash; the first entry follows
``GENESIS``. Signed checkpoints (audit/signing.py) fix the head at intervals, so that
rewriting the chain from some row on, or cutting its end, is found as well.

    entries = link(head, drafts)            # hashes for new entries
    problems = verify(rows, checkpoints, public_key)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
_WINDOW = 64  # how far from its place a moved row is looked for


@dataclass(frozen=True, slots=True)
class Draft:
    """An entry before it is numbered: ``kind`` e.g. request, action.proposed, policy.deny,
    admin.virtual_key.update; ``doc`` is already redacted."""

    at: float
    kind: str
    actor: str
    subject: str
    doc: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    at: float
    kind: str
    actor: str
    subject: str
    doc: str  # canonical JSON, stored as is
    prev_hash: str
    hash: str

    def row(self) -> tuple[Any, ...]:
        return (self.seq, self.at, self.kind, self.actor, self.subject, self.doc,
                self.prev_hash, self.hash)  # fmt: skip

    def public(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "kind": self.kind, "actor": self.actor,
                "subject": self.subject, "doc": json.loads(self.doc),
                "prev_hash": self.prev_hash, "hash": self.hash}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Head:
    seq: int = 0
    hash: str = GENESIS


def canonical(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(seq: int, at: float, kind: str, actor: str, subject: str, doc: str,
               prev: str) -> str:  # fmt: skip
    content = canonical([seq, repr(float(at)), kind, actor, subject, doc, prev])
    return hashlib.sha256(content.encode()).hexdigest()


def link(head: Head, drafts: Iterable[Draft]) -> list[Entry]:
    out: list[Entry] = []
    seq, prev = head.seq, head.hash
    for d in drafts:
        seq += 1
        doc = canonical(d.doc)
        h = entry_hash(seq, d.at, d.kind, d.actor, d.subject, doc, prev)
        out.append(Entry(seq, float(d.at), d.kind, d.actor, d.subject, doc, prev, h))
        prev = h
    return out


def entry_of(row: dict[str, Any]) -> Entry:
    return Entry(int(row["seq"]), float(row["at"]), str(row["kind"]), str(row["actor"]),
                 str(row["subject"]), str(row["doc"]), str(row["prev_hash"]),
                 str(row["hash"]))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    at: float
    key_id: str
    signature: str  # base64


def checkpoint_message(seq: int, hash_: str, at: float) -> bytes:
    return f"tollway-audit-checkpoint\n{seq}\n{hash_}\n{float(at)!r}".encode()


def verify_rows(rows: Sequence[Entry]) -> list[str]:
    """Every break in the chain, each naming the row: changed, deleted, inserted, moved."""
    problems: list[str] = []
    expected, prev = 1, GENESIS
    by_hash = {r.hash: r.seq for r in rows}
    for r in rows:
        if r.seq > expected:
            gone = str(expected) if r.seq == expected + 1 else f"{expected}..{r.seq - 1}"
            problems.append(f"row {gone} missing: deleted from the log")
        own = entry_hash(r.seq, r.at, r.kind, r.actor, r.subject, r.doc, r.prev_hash)
        if own != r.hash:
            problems.append(_changed(r, by_hash))
        elif r.prev_hash != prev and r.seq == expected:
            after = by_hash.get(r.prev_hash)
            where = f" (it follows row {after})" if after is not None else ""
            problems.append(f"row {r.seq} does not follow row {r.seq - 1}: inserted or "
                            f"reordered{where}")  # fmt: skip
        expected, prev = r.seq + 1, r.hash
    return problems


def _changed(r: Entry, by_hash: dict[str, int]) -> str:
    """A row whose hash fails: moved from another position (its hash holds at the number
    it was written with), else edited."""
    after = 0 if r.prev_hash == GENESIS else by_hash.get(r.prev_hash)
    near = range(max(1, r.seq - _WINDOW), r.seq + _WINDOW + 1)
    candidates = ([after + 1] if after is not None else []) + list(near)
    for origin in candidates:
        if origin == r.seq:
            continue
        if entry_hash(origin, r.at, r.kind, r.actor, r.subject, r.doc, r.prev_hash) == r.hash:
            return (f"row {r.seq} is out of place: it was written as row {origin} (rows "
                    "inserted before it, or reordered)")  # fmt: skip
    return f"row {r.seq} was changed: its content does not match its hash"
