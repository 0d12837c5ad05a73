"""The request log and usage reports: ``/api/logs``, ``/api/logs/{id}``, ``/api/usage``.

Each answers JSON, or with ``format=csv`` / ``format=jsonl`` streams an export. Costs are
exact decimal strings of USD; times are ISO 8601 in UTC.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import AfterValidator, BeforeValidator

from tollway.errors import ContentUnreadable, NotFound
from tollway.limits import MAX_USD
from tollway.storage import queries
from tollway.storage.queries import GroupBy, LogFilter
from tollway.storage.schema import COST_KINDS, REQUEST_COLUMNS, TOKEN_KINDS

if TYPE_CHECKING:
    from tollway.services import Services

Format = Literal["json", "csv", "jsonl"]
_MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
_BOOLS = ("stream", "partial", "cache_hit", "cost_unknown", "cost_estimated", "simulated")
_FIXED = tuple(
    c for c in REQUEST_COLUMNS if c not in (*TOKEN_KINDS, *queries.COST_COLUMNS, *_BOOLS)
)
LOG_CSV_COLUMNS = (
    *_FIXED,
    *_BOOLS,
    *TOKEN_KINDS,
    *(f"cost_{k}_usd" for k in COST_KINDS),
    "attempts",
)
USAGE_CSV_COLUMNS = ("group", "name", "requests", "errors", "cost_unknown", *TOKEN_KINDS,
                     *(f"cost_{k}_usd" for k in COST_KINDS))  # fmt: skip


def render_usage(group: dict[str, Any]) -> dict[str, Any]:
    """A ``usage`` group as JSON: tokens and cost (USD strings) by kind."""
    return {
        "group": group["group"],
        "name": group["name"],
        "requests": group["requests"],
        "errors": group["errors"],
        "cost_unknown": group["unpriced"],
        "tokens": {k.removesuffix("_tokens"): group[k] for k in TOKEN_KINDS},
        "cost": {k: queries.usd(group[f"cost_{k}_pico"]) for k in COST_KINDS},
    }


def render_log(row: dict[str, Any]) -> dict[str, Any]:
    """A stored record as JSON: ISO times, booleans, tokens and cost (USD strings) by kind."""
    out: dict[str, Any] = {c: row[c] for c in _FIXED}
    out["started_at"] = queries.iso(row["started_at"])
    out.update({c: bool(row[c]) for c in _BOOLS})
    out["tokens"] = {k.removesuffix("_tokens"): int(row[k]) for k in TOKEN_KINDS}
    out["cost"] = {k: queries.usd(row[f"cost_{k}_pico"]) for k in COST_KINDS}
    out["attempts"] = [
        {"index": a["idx"], "started_at": queries.iso(a["started_at"]), "provider": a["provider"],
         "key_name": a["key_name"], "model": a["model"], "status": a["status"],
         "latency_ms": a["latency_ms"], "error_type": a["error_type"],
         "reason": a.get("reason")}
        for a in row.get("attempts", ())
    ]  # fmt: skip
    if "content" in row:
        out["content"] = row["content"]
    return out


def flat(doc: dict[str, Any]) -> dict[str, Any]:
    """A rendered record or usage group as one CSV row (nested kinds become columns)."""
    out: dict[str, Any] = {}
    for k, v in doc.items():
        if k == "tokens":
            out.update({f"{kind}_tokens": n for kind, n in v.items()})
        elif k == "cost":
            out.update({f"cost_{kind}_usd": amount for kind, amount in v.items()})
        elif k == "attempts":
            out["attempts"] = len(v)
        elif k != "content":
            out[k] = str(v).lower() if isinstance(v, bool) else v
    return out


def _cursor(value: str | None) -> str | None:
    if value is not None:
        queries.decode_cursor(value)
    return value


Time = Annotated[
    float | None,
    BeforeValidator(queries.parse_time),
]
Cursor = Annotated[str | None, AfterValidator(_cursor)]


def log_filter(
    key: Annotated[str | None, Query(description="virtual key id or name")] = None,
    team: Annotated[str | None, Query(description="team id or name")] = None,
    customer: Annotated[str | None, Query(description="customer id or name")] = None,
    model: Annotated[str | None, Query(description="requested or served model")] = None,
    provider: str | None = None,
    status: Annotated[int | None, Query(ge=100, le=599)] = None,
    session: Annotated[str | None, Query(description="agent session id")] = None,
    client: Annotated[str | None, Query(description="claude-code, codex, sdk, ...")] = None,
    since: Annotated[
        Time, Query(alias="from", description="ISO 8601 or epoch seconds, inclusive")
    ] = None,
    until: Annotated[
        Time, Query(alias="to", description="ISO 8601 or epoch seconds, exclusive")
    ] = None,
    min_cost: Annotated[
        Decimal | None, Query(ge=0, le=MAX_USD, description="USD, total cost")
    ] = None,
) -> LogFilter:
    return LogFilter(key=key, team=team, customer=customer, model=model, provider=provider,
                     status=status, session=session, client=client, since=since, until=until,
                     min_cost=min_cost)  # fmt: skip


Filter = Annotated[LogFilter, Depends(log_filter)]


def _csv_line(values: Iterable[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(values)
    return buf.getvalue()


async def _encode(
    docs: AsyncIterator[dict[str, Any]], fmt: Format, columns: Sequence[str]
) -> AsyncIterator[str]:
    if fmt == "csv":
        yield _csv_line(columns)
    async for doc in docs:
        if fmt == "csv":
            row = flat(doc)
            yield _csv_line(row.get(c) for c in columns)
        else:
            yield json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"


def export(
    docs: AsyncIterator[dict[str, Any]], fmt: Format, columns: Sequence[str], name: str
) -> StreamingResponse:
    """Stream ``docs`` as CSV (header row first) or JSON Lines."""
    return StreamingResponse(
        _encode(docs, fmt, columns),
        media_type=_MEDIA[fmt],
        headers={"content-disposition": f'attachment; filename="{name}.{fmt}"'},
    )


async def _aiter(docs: Iterable[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for doc in docs:
        yield doc


async def _with_content(
    services: Services, docs: AsyncIterator[dict[str, Any]]
) -> AsyncIterator[dict[str, Any]]:
    async for doc in docs:
        try:
            bodies = await queries.get_content(services.store, doc["id"])
        except ContentUnreadable as exc:
            doc["content"] = {"error": f"content not readable: {exc.message}"}
        else:
            doc["content"] = (
                None
                if bodies is None
                else {
                    "request_b64": base64.b64encode(bodies[0]).decode(),
                    "response_b64": base64.b64encode(bodies[1]).decode(),
                }
            )
        yield doc


EXPORTS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON, or with format=csv / format=jsonl an export",
        "content": {
            "application/json": {"schema": {"type": "object", "required": ["data"]}},
            "text/csv": {"schema": {"type": "string"}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


BYTES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The body as it passed",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def log_routes(services: Services) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["logs"])

    @router.get("/logs", response_model=None, responses=EXPORTS)
    async def list_logs(
        where: Filter,
        cursor: Annotated[Cursor, Query(description="next_cursor of the previous page")] = None,
        limit: Annotated[
            int | None, Query(ge=1, le=1000, description="page size (default 50); exports: all")
        ] = None,
        format: Format = "json",
        content: Annotated[
            bool, Query(description="jsonl export: each record's bodies, base64, byte for byte")
        ] = False,
    ) -> dict[str, Any] | StreamingResponse:
        """Records newest first; follow ``next_cursor`` (null on the last page)."""
        if format != "json":
            rows = queries.iter_logs(services.store, where, cursor=cursor, limit=limit)
            docs: AsyncIterator[dict[str, Any]] = (render_log(r) async for r in rows)
            if content and format == "jsonl":
                docs = _with_content(services, docs)
            return export(docs, format, LOG_CSV_COLUMNS, "tollway-logs")
        page = await queries.list_logs(services.store, where, limit=limit or 50, cursor=cursor)
        return {
            "data": [render_log(r) for r in page.records],
            "next_cursor": page.next_cursor,
        }

    @router.get("/logs/{request_id}")
    async def get_log(request_id: str) -> dict[str, Any]:
        """One record with its attempts and content (bodies as JSON, or text)."""
        row = await queries.get_log(services.store, request_id)
        if row is None:
            raise NotFound(f"no logged request {request_id!r} (records are written in batches)")
        return render_log(row)

    @router.get("/logs/{request_id}/content/{part}", response_class=Response, responses=BYTES)
    async def get_log_content(request_id: str, part: Literal["request", "response"]) -> Response:
        """A stored body byte for byte, as it passed (``application/octet-stream``)."""
        bodies = await queries.get_content(services.store, request_id)
        if bodies is None:
            raise NotFound(f"no stored content for request {request_id!r}")
        return Response(bodies[0] if part == "request" else bodies[1],
                        media_type="application/octet-stream")  # fmt: skip

    @router.get("/usage", response_model=None, responses=EXPORTS)
    async def usage(
        where: Filter,
        group_by: GroupBy = "model",
        format: Format = "json",
    ) -> dict[str, Any] | StreamingResponse:
        """Requests, errors, tokens and cost per group; ``day`` is the UTC day."""
        groups = await queries.usage(services.store, group_by, where)
        docs = [render_usage(g) for g in groups]
        if format != "json":
            return export(_aiter(docs), format, USAGE_CSV_COLUMNS, "tollway-usage")
        return {
            "group_by": group_by,
            "from": queries.iso(where.since) if where.since is not None else None,
            "to": queries.iso(where.until) if where.until is not None else None,
            "data": docs,
            "total": render_usage(queries.total(groups)),
        }

    return router
