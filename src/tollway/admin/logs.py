"""The request log and usage reports: ``/api/logs``, ``/api/logs/{id}``, ``/api/usage``.

Each answers JSON, or with ``format=csv`` / ``format=jsonl`` streams an export. Costs are
exact decimal strings of USD; times are ISO 8601 in UTC.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator, BeforeValidator

from tollway.errors import NotFound
from tollway.storage import queries
from tollway.storage.queries import GroupBy, LogFilter

if TYPE_CHECKING:
    from tollway.services import Services

Format = Literal["json", "csv", "jsonl"]
_MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


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
    min_cost: Annotated[Decimal | None, Query(ge=0, description="USD, total cost")] = None,
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
            row = queries.flat(doc)
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


def log_routes(services: Services) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["logs"])

    @router.get("/logs", response_model=None)
    async def list_logs(
        where: Filter,
        cursor: Annotated[Cursor, Query(description="next_cursor of the previous page")] = None,
        limit: Annotated[
            int | None, Query(ge=1, le=1000, description="page size (default 50); exports: all")
        ] = None,
        format: Format = "json",
    ) -> dict[str, Any] | StreamingResponse:
        """Records newest first; follow ``next_cursor`` (null on the last page)."""
        if format != "json":
            rows = queries.iter_logs(services.store, where, cursor=cursor, limit=limit)
            docs = (queries.render_log(r) async for r in rows)
            return export(docs, format, queries.LOG_CSV_COLUMNS, "tollway-logs")
        page = await queries.list_logs(services.store, where, limit=limit or 50, cursor=cursor)
        return {
            "data": [queries.render_log(r) for r in page.records],
            "next_cursor": page.next_cursor,
        }

    @router.get("/logs/{request_id}")
    async def get_log(request_id: str) -> dict[str, Any]:
        """One record with its attempts and content (bodies as JSON, or text)."""
        row = await queries.get_log(services.store, request_id)
        if row is None:
            raise NotFound(f"no logged request {request_id!r} (records are written in batches)")
        return queries.render_log(row)

    @router.get("/usage", response_model=None)
    async def usage(
        where: Filter,
        group_by: GroupBy = "model",
        format: Format = "json",
    ) -> dict[str, Any] | StreamingResponse:
        """Requests, errors, tokens and cost per group; ``day`` is the UTC day."""
        groups = await queries.usage(services.store, group_by, where)
        docs = [queries.render_usage(g) for g in groups]
        if format != "json":
            return export(_aiter(docs), format, queries.USAGE_CSV_COLUMNS, "tollway-usage")
        return {
            "group_by": group_by,
            "from": queries.iso(where.since) if where.since is not None else None,
            "to": queries.iso(where.until) if where.until is not None else None,
            "data": docs,
            "total": queries.render_usage(queries.total(groups)),
        }

    return router
