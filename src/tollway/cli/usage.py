"""``tollway usage`` and ``tollway logs tail``: reports on the request log.

Like the key commands they reach the gateway's state (cli/context.py): its admin API when
it runs, else its database. Records are written in batches, a moment after their requests
end.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tollway.admin.logs import USAGE_CSV_COLUMNS, flat, render_log
from tollway.cli.backend import Backend
from tollway.cli.backend_db import DbBackend
from tollway.cli.common import run
from tollway.errors import InvalidRequest
from tollway.storage import queries
from tollway.storage.base import Store
from tollway.storage.queries import LogFilter

GROUPS = ("key", "team", "customer", "model", "provider", "day", "session", "client", "user")
API_PAGE = 1000  # the admin API's largest page; ``tail --follow`` over it sees this many
LOOKBACK_S = 660.0  # a record is written when its request ends: up to the 600 s timeout
SLACK_S = 30.0  # how late a record may reach the database after its request ended


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive count")
    return value


def _time(flag: str, value: str | None) -> float | None:
    try:
        return queries.parse_time(value)
    except ValueError as exc:
        raise InvalidRequest(f"{flag}: {exc}") from None


def _usage(args: argparse.Namespace) -> int:
    where = LogFilter(key=args.key, since=_time("--from", args.since),
                      until=_time("--to", args.until))  # fmt: skip

    async def body(backend: Backend) -> int:
        if args.key:  # a name or an id, checked so a typo is an error, not an empty table
            await backend.get("virtual_key", args.key)
        doc = await backend.usage(args.group_by, where)
        docs = doc["data"]
        if args.format == "json":
            print(json.dumps(docs, indent=2))
        elif args.format == "csv":
            writer = csv.writer(sys.stdout)
            writer.writerow(USAGE_CSV_COLUMNS)
            for d in docs:
                row = flat(d)
                writer.writerow([row.get(c) for c in USAGE_CSV_COLUMNS])
        else:
            print(usage_table(docs, doc["total"], args.group_by))
        return 0

    return run(args, body)


def usage_table(docs: list[dict[str, Any]], total: dict[str, Any], group_by: str) -> str:
    """Aligned columns, one line per group and a total line."""
    head = [group_by, "requests", "errors", "input", "output", "cache read", "cache write",
            "cost USD"]  # fmt: skip
    lines = [head]
    for doc in [*docs, {**total, "group": "TOTAL"}]:
        t = doc["tokens"]
        label = doc["group"] if doc["group"] is not None else "-"
        if doc.get("name") and doc["name"] != label:
            label = f"{label} ({doc['name']})"
        cache_write = t["cache_write_5m"] + t["cache_write_1h"]
        counts = (doc["requests"], doc["errors"], t["input"], t["output"], t["cache_read"])
        lines.append([str(label), *map(str, counts), str(cache_write), doc["cost"]["total"]])
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w)
                  in enumerate(zip(row, widths, strict=True)))
        for row in lines
    )  # fmt: skip


def log_line(row: dict[str, Any]) -> str:
    """One stored record on one line, as ``logs tail`` prints it."""
    return line_of(render_log(row))


def line_of(doc: dict[str, Any]) -> str:
    """One record, as the admin API renders it, on one line."""
    who = doc["vk_name"] or doc["vk_id"] or "-"
    model = doc["served_model"] or doc["requested_model"] or "-"
    tokens = doc["tokens"]
    cost = "unpriced" if doc["cost_unknown"] else "$" + doc["cost"]["total"]
    error = f"  {doc['error_type']}" if doc["error_type"] else ""
    return (
        f"{doc['started_at']}  {doc['status']}  {who}  {model}  in={tokens['input']} "
        f"out={tokens['output']}  {cost}  {doc['latency_ms']:.0f}ms  {doc['id']}{error}"
    )


async def tail(
    store: Store,
    where: LogFilter,
    limit: int,
    *,
    follow: bool = False,
    interval: float = 1.0,
    polls: int | None = None,
    out: Callable[[str], None] = lambda line: print(line, flush=True),
) -> None:
    """Print the last ``limit`` records, oldest first; then, with ``follow``, new ones.

    ``polls`` bounds the follow loop (tests); otherwise it runs until interrupted.
    """
    page = await queries.list_logs(store, where, limit=limit)
    seen = {r["id"]: float(r["started_at"]) for r in page.records}
    for row in reversed(page.records):
        out(log_line(row))
    checked = time.time()
    while follow and (polls is None or polls > 0):
        polls = None if polls is None else polls - 1
        await asyncio.sleep(interval)
        now = time.time()
        clause, params = where.where()
        clause += (" AND " if clause else " WHERE ") + (
            "started_at >= ? AND started_at + latency_ms / 1000.0 >= ?"
        )
        rows = await store.query(
            f"SELECT * FROM requests{clause} ORDER BY started_at, id",
            [*params, now - LOOKBACK_S, checked - SLACK_S],
        )
        for row in rows:
            if row["id"] not in seen:
                seen[row["id"]] = float(row["started_at"])
                out(log_line(row))
        seen = {k: v for k, v in seen.items() if v >= now - LOOKBACK_S}
        checked = now


async def tail_api(
    backend: Backend, where: LogFilter, limit: int, *, follow: bool, interval: float = 1.0
) -> None:
    """``tail`` over the admin API: the newest records, then a poll of the last minutes."""
    shown: set[str] = set()
    for doc in reversed(await backend.logs(where, limit)):
        shown.add(doc["id"])
        print(line_of(doc), flush=True)
    while follow:
        await asyncio.sleep(interval)
        recent = replace(where, since=time.time() - LOOKBACK_S)
        for doc in reversed(await backend.logs(recent, API_PAGE)):
            if doc["id"] not in shown:
                shown.add(doc["id"])
                print(line_of(doc), flush=True)


def _tail(args: argparse.Namespace) -> int:
    where = LogFilter(key=args.key)

    async def body(backend: Backend) -> int:
        if isinstance(backend, DbBackend):
            await tail(backend.store, where, args.limit, follow=args.follow)
        else:
            await tail_api(backend, where, args.limit, follow=args.follow)
        return 0

    try:
        return run(args, body)
    except KeyboardInterrupt:
        return 0


def add_commands(sub: Any) -> None:
    usage = sub.add_parser("usage", help="requests, tokens and cost per group",
                           description="Requests, errors, tokens and cost per group.")  # fmt: skip
    usage.add_argument("--group-by", choices=GROUPS, default="model",
                       help="one line per (default: model); user: x-tollway-user")  # fmt: skip
    usage.add_argument("--key", metavar="ID_OR_NAME", help="only this virtual key's requests")
    usage.add_argument("--from", dest="since", metavar="TIME",
                       help="ISO 8601 or epoch seconds (inclusive)")  # fmt: skip
    usage.add_argument("--to", dest="until", metavar="TIME",
                       help="ISO 8601 or epoch seconds (exclusive)")  # fmt: skip
    usage.add_argument("--format", choices=("table", "csv", "json"), default="table",
                       help="output format (default: table)")  # fmt: skip
    usage.set_defaults(func=_usage)

    logs = sub.add_parser("logs", help="the request log", description="The request log.")
    actions = logs.add_subparsers(dest="logs_command", required=True, metavar="ACTION")
    tail_p = actions.add_parser("tail", help="the latest requests, oldest first")
    tail_p.add_argument("--follow", "-f", action="store_true", help="keep printing new ones")
    tail_p.add_argument("--key", metavar="ID_OR_NAME", help="only this virtual key")
    tail_p.add_argument("--limit", "-n", type=_positive, default=20, help="how many (default 20)")
    tail_p.set_defaults(func=_tail)
