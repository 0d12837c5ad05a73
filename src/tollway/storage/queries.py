"""Reads over the request log: filters, cursor pages and usage totals, for both backends.

    page = await list_logs(store, LogFilter(model="gpt-5", since=t0), limit=50)
    more = await list_logs(store, LogFilter(model="gpt-5", since=t0), cursor=page.next_cursor)
    groups = await usage(store, "model", LogFilter(since=t0))

The SQL uses ``?`` placeholders and what SQLite and PostgreSQL share, but for the one
expression that buckets a time into a (UTC) day. Money leaves the database as integer
picodollars; it is summed as integers and shown as exact decimal strings of USD.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import zlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import zstandard

from tollway.errors import ContentUnreadable
from tollway.observability import chunks
from tollway.storage.base import Store
from tollway.storage.schema import COST_KINDS, PICO, TOKEN_KINDS, from_pico

GroupBy = Literal[
    "key", "team", "customer", "model", "provider", "day", "session", "client", "user"
]
COST_COLUMNS = tuple(f"cost_{k}_pico" for k in COST_KINDS)
_SPLIT = 1_000_000
_DAY = {
    "sqlite": "strftime('%Y-%m-%d', started_at, 'unixepoch')",
    "postgres": "to_char(to_timestamp(started_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}
# group -> (the SQL expression grouped on, a name column shown beside it)
_GROUPS: dict[str, tuple[str, str | None]] = {
    "key": ("vk_id", "vk_name"),
    "team": ("team_id", "team_name"),
    "customer": ("customer_id", "customer_name"),
    "model": ("COALESCE(served_model, requested_model)", None),
    "provider": ("provider", None),
    "session": ("session_id", None),
    "client": ("client", None),
    "user": ("user_id", None),
}


@dataclass(frozen=True, slots=True)
class LogFilter:
    """What to select; ``None`` means any. ``since`` is inclusive, ``until`` exclusive.

    ``key``, ``team`` and ``customer`` match an id or a name; ``model`` the requested or
    the served model.
    """

    key: str | None = None
    team: str | None = None
    customer: str | None = None
    model: str | None = None
    provider: str | None = None
    status: int | None = None
    session: str | None = None
    client: str | None = None
    since: float | None = None
    until: float | None = None
    min_cost: Decimal | None = None

    def where(self) -> tuple[str, list[Any]]:
        """`` WHERE ...`` (or nothing) and its parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        for value, a, b in (
            (self.key, "vk_id", "vk_name"),
            (self.team, "team_id", "team_name"),
            (self.customer, "customer_id", "customer_name"),
            (self.model, "requested_model", "served_model"),
        ):
            if value is not None:
                clauses.append(f"({a} = ? OR {b} = ?)")
                params += [value, value]
        conditions: tuple[tuple[object, str, str], ...] = (
            (self.provider, "provider", "="),
            (self.status, "status", "="),
            (self.session, "session_id", "="),
            (self.client, "client", "="),
            (self.since, "started_at", ">="),
            (self.until, "started_at", "<"),
        )
        for condition, column, op in conditions:
            if condition is not None:
                clauses.append(f"{column} {op} ?")
                params.append(condition)
        if self.min_cost is not None:
            # Stored amounts are whole picodollars: ">= x" is ">= ceil(x in pico)".
            clauses.append("cost_total_pico >= ?")
            # past the largest stored amount nothing matches: clamp, never overflow int64
            params.append(min(math.ceil(self.min_cost * PICO), 2**63 - 1))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


@dataclass(frozen=True, slots=True)
class LogPage:
    records: list[dict[str, Any]]
    next_cursor: str | None


_FIRST_SECOND = datetime(1, 1, 2, tzinfo=UTC).timestamp()
_LAST_SECOND = datetime(9999, 12, 30, tzinfo=UTC).timestamp()


def parse_time(value: str | float | None) -> float | None:
    """ISO 8601 (naive means UTC) or epoch seconds -> epoch seconds; ValueError if neither."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = datetime.fromisoformat(value.strip())
            except ValueError:
                raise ValueError(
                    f"{value!r} is neither ISO 8601 (2025-01-31T12:00:00Z) nor epoch seconds"
                ) from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = when.timestamp()
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a finite time")
    if not _FIRST_SECOND <= seconds <= _LAST_SECOND:
        raise ValueError(f"{value!r} is outside the years 1 to 9999")
    return seconds


def encode_cursor(started_at: float, request_id: str) -> str:
    raw = json.dumps([started_at, request_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """ValueError unless ``cursor`` came from ``encode_cursor``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        started_at, request_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError, RecursionError):
        raise ValueError("not a cursor given by this API (use next_cursor as is)") from None
    if (
        isinstance(started_at, bool)
        or not isinstance(started_at, int | float)
        or not math.isfinite(started_at)
        or not isinstance(request_id, str)
    ):
        raise ValueError("not a cursor given by this API (use next_cursor as is)")
    return float(started_at), request_id


def usd(pico: int | Decimal | None) -> str:
    """Picodollars as an exact decimal string of USD, without exponent: 1500000 -> 0.0000015."""
    return format(from_pico(int(pico or 0)).normalize(), "f")


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


async def list_logs(
    store: Store, where: LogFilter, *, limit: int = 50, cursor: str | None = None
) -> LogPage:
    """Newest first, by ``(started_at, id)``: a page stays stable while records arrive."""
    clause, params = where.where()
    if cursor is not None:
        started_at, request_id = decode_cursor(cursor)
        clause += " AND " if clause else " WHERE "
        clause += "(started_at < ? OR (started_at = ? AND id < ?))"
        params += [started_at, started_at, request_id]
    sql = f"SELECT * FROM requests{clause} ORDER BY started_at DESC, id DESC LIMIT ?"
    rows = await store.query(sql, [*params, limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    await _attach_attempts(store, rows)
    last = rows[-1] if more else None
    return LogPage(rows, encode_cursor(last["started_at"], last["id"]) if last else None)


async def iter_logs(
    store: Store, where: LogFilter, *, cursor: str | None = None, limit: int | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Every matching record (at most ``limit``), newest first, fetched a page at a time."""
    left = math.inf if limit is None else limit
    while left > 0:
        page = await list_logs(store, where, limit=int(min(left, 500)), cursor=cursor)
        for row in page.records:
            yield row
        left -= len(page.records)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


async def get_log(store: Store, request_id: str) -> dict[str, Any] | None:
    """One record with its attempts and, under ``content``, its bodies (or None)."""
    rows = await store.query("SELECT * FROM requests WHERE id = ?", (request_id,))
    if not rows:
        return None
    await _attach_attempts(store, rows)
    row = rows[0]
    row["content"] = None
    try:
        bodies = await get_content(store, request_id)
    except ContentUnreadable as exc:
        row["content"] = {"error": f"content not readable: {exc.message}"}
        return row
    if bodies is not None:
        row["content"] = {"request": _body(bodies[0]), "response": _body(bodies[1])}
    return row


async def get_content(store: Store, request_id: str) -> tuple[bytes, bytes] | None:
    """The request and response bodies exactly as they passed, or None if not kept.

    ContentUnreadable if a stored body cannot be rebuilt (a chunk missing or corrupt).
    """
    rows = await store.query(
        "SELECT request_body, response_body, scope FROM contents WHERE request_id = ?",
        (request_id,),
    )
    if not rows:
        return None
    row = rows[0]
    request = bytes(row["request_body"])
    if request.startswith(chunks.MAGIC):
        request = await _join(store, row["scope"], request)
    else:
        request = _unpack(request)
    return request, _unpack(bytes(row["response_body"]))


async def _join(store: Store, scope: str | None, manifest: bytes) -> bytes:
    wanted = sorted(set(chunks.manifest_digests(manifest)))
    found: dict[bytes, bytes] = {}
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        marks = ", ".join("?" for _ in part)
        for r in await store.query(
            f"SELECT digest, data FROM content_chunks WHERE scope = ? AND digest IN ({marks})",
            [scope, *part],
        ):
            found[bytes(r["digest"])] = bytes(r["data"])
    return chunks.join(manifest, found)


def _unpack(blob: bytes) -> bytes:
    """A whole stored body: zstd (this version), zlib (before), or empty."""
    if not blob:
        return b""
    try:
        if blob.startswith(chunks.ZSTD_MAGIC):
            return zstandard.ZstdDecompressor().decompress(blob, max_output_size=1 << 31)
        return zlib.decompress(blob)
    except (zstandard.ZstdError, zlib.error) as exc:
        raise ContentUnreadable(f"stored body is not zstd or zlib data ({exc})") from None


async def _attach_attempts(store: Store, rows: list[dict[str, Any]]) -> None:
    by_id: dict[str, list[dict[str, Any]]] = {r["id"]: [] for r in rows}
    ids = list(by_id)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        found = await store.query(
            f"SELECT * FROM attempts WHERE request_id IN ({marks}) ORDER BY request_id, idx",
            chunk,
        )
        for a in found:
            by_id[a["request_id"]].append(a)
    for r in rows:
        r["attempts"] = by_id[r["id"]]


def _body(raw: bytes) -> Any:
    """A body: parsed JSON when it is JSON, else its text (SSE streams are text)."""
    if not raw:
        return None
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


async def usage(
    store: Store, group_by: GroupBy, where: LogFilter | None = None
) -> list[dict[str, Any]]:
    """Per group: requests, errors (status >= 400), unpriced, token and picodollar sums.

    Ordered by total cost, dearest first; ``day`` is the UTC calendar day.
    """
    dialect = "postgres" if store.url.startswith(("postgresql:", "postgres:")) else "sqlite"
    expr, name = _GROUPS.get(group_by) or (_DAY[dialect], None)
    name_sql = f"MAX({name})" if name else "NULL"
    # Money is summed in two parts so SQLite's 64-bit SUM holds totals past $9.2 million.
    sums = ", ".join([*(f"SUM({c}) AS {c}" for c in TOKEN_KINDS),
                      *(f"SUM({c} / {_SPLIT}) AS {c}_hi, SUM({c} % {_SPLIT}) AS {c}_lo"
                        for c in COST_COLUMNS)])  # fmt: skip
    clause, params = (where or LogFilter()).where()
    sql = (
        f"SELECT {expr} AS grp, {name_sql} AS grp_name, COUNT(*) AS requests, "
        "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors, "
        f"SUM(cost_unknown) AS unpriced, {sums} FROM requests{clause} GROUP BY {expr}"
    )
    rows = await store.query(sql, params)
    groups = [
        {"group": r["grp"], "name": r["grp_name"],
         **{c: int(r[c] or 0) for c in ("requests", "errors", "unpriced", *TOKEN_KINDS)},
         **{c: int(r[f"{c}_hi"] or 0) * _SPLIT + int(r[f"{c}_lo"] or 0) for c in COST_COLUMNS}}
        for r in rows
    ]  # fmt: skip
    groups.sort(key=lambda g: (-g["cost_total_pico"], g["group"] is None, str(g["group"])))
    return groups


def total(groups: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The sum of ``usage`` groups (exact: integers)."""
    keys = ("requests", "errors", "unpriced", *TOKEN_KINDS, *COST_COLUMNS)
    return {"group": None, "name": None, **{k: sum(g[k] for g in groups) for k in keys}}
