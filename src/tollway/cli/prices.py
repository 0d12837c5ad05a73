"""``tollway prices show MODEL`` and ``tollway prices check``: the price book from the shell.

Both build the price book the gateway would: genai-prices' bundled data, Tollway's
``prices.json``, the config file's ``pricing:`` (``--config``) and the overrides stored
through the admin API (``--db``), with the providers of that config.

``check`` reads the request log and lists every (provider, model) it has seen that has no
price, or only an assumption (a Tollway glob) or the fallback price; it exits 1 when there
is any, so it can run in CI or cron.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import Any

from tollway.accounting.pricing import ModelPrice, PriceBook
from tollway.admin.pricing import apply_stored_prices
from tollway.cli.serve import db_url
from tollway.config import Config, load_config, price_providers
from tollway.errors import InvalidRequest
from tollway.storage import open_store, queries
from tollway.storage.base import Store

_SEEN = (
    "SELECT provider, COALESCE(served_model, requested_model) AS model, COUNT(*) AS requests, "
    "MAX(started_at) AS last_seen, SUM(cost_unknown) AS unknown, "
    "SUM(cost_estimated) AS estimated FROM requests "
    "WHERE COALESCE(served_model, requested_model) IS NOT NULL AND simulated = 0{since} "
    "GROUP BY provider, COALESCE(served_model, requested_model) ORDER BY requests DESC"
)


async def _book(config: Config, store: Store | None) -> PriceBook:
    book = PriceBook(overrides=config.pricing, fallback=config.gateway.fallback_price)
    book.bind_providers(price_providers(config))
    if store is not None:
        await apply_stored_prices(store, book)
    return book


def _at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(queries.parse_time(value) or 0, UTC)
    except ValueError as exc:
        raise InvalidRequest(f"--at: {exc}") from None


def _show(args: argparse.Namespace) -> int:
    config = load_config(args.config)

    async def body() -> ModelPrice | None:
        store = open_store(db_url(args.db)) if args.db else None
        if store is not None:
            await store.open()
        try:
            book = await _book(config, store)
        finally:
            if store is not None:
                await store.close()
        return book.resolve(args.model, args.provider, at=_at(args.at))

    price = asyncio.run(body())
    if price is None:
        print(
            f"tollway: no price for {args.model!r}"
            + (f" at provider {args.provider!r}" if args.provider else "")
            + ": under a budget it is refused; set one under `pricing:` in the config, "
            "with PUT /api/pricing/MODEL, or set gateway.fallback_price",
            file=sys.stderr,
        )
        return 1
    doc = {"requested": args.model, **price.as_dict()}
    if args.format == "json":
        print(json.dumps(doc, indent=2))
    else:
        print(_text(doc))
    return 0


def _text(doc: dict[str, Any]) -> str:
    source = doc["source"]
    lines = [
        f"{doc['requested']} -> {doc['model']} ({doc['provider']})",
        f"  layer     {source['layer']}: {source['name']}",
        f"  version   {source['version']}",
    ]
    base = source.get("base")
    if base:
        lines.append(f"  over      {base['layer']}: {base['name']} ({base['version']})")
    lines.append(f"  source    {source.get('url') or (base or {}).get('url') or '-'}")
    lines.append(f"  checked   {source.get('checked') or (base or {}).get('checked') or '-'}")
    if doc.get("assumption"):
        lines.append(f"  ASSUMPTION {doc['assumption']}")
    if doc.get("estimated"):
        lines.append("  ESTIMATED the fallback price for a model without one")
    lines.append("  USD per 1M tokens:")
    for kind in ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "reasoning"):
        if kind in doc:
            lines.append(f"    {kind:<15} {doc[kind]}")
    if "long_context" in doc:
        tier = doc["long_context"]
        lines.append(f"  above {tier['above_input_tokens']:,} prompt tokens: "
                     f"input {tier['input']}, output {tier['output']}")  # fmt: skip
    for name, tier in doc.get("service_tiers", {}).items():
        lines.append(f"  service tier {name}: input {tier['input']}, output {tier['output']}, "
                     f"cache read {tier['cache_read']}")  # fmt: skip
    for tool, fee in doc.get("tool_fees", {}).items():
        lines.append(f"  {tool}: ${fee} per use")
    if "context_window" in doc:
        lines.append(f"  context window {doc['context_window']:,} tokens")
    return "\n".join(lines)


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        since = queries.parse_time(args.since)
    except ValueError as exc:
        raise InvalidRequest(f"--from: {exc}") from None

    async def body() -> list[dict[str, Any]]:
        store = open_store(db_url(args.db))
        await store.open()
        try:
            book = await _book(config, store)
            clause, params = (" AND started_at >= ?", [since]) if since is not None else ("", [])
            rows = await store.query(_SEEN.format(since=clause), params)
        finally:
            await store.close()
        return [found for row in rows if (found := _problem(book, row)) is not None]

    problems = asyncio.run(body())
    if args.format == "json":
        print(json.dumps(problems, indent=2))
    elif not problems:
        print("every model in the log has a published or configured price")
    else:
        print(f"{'provider':<14} {'model':<40} {'requests':>8}  problem")
        for p in problems:
            print(f"{p['provider'] or '-':<14} {p['model']:<40} {p['requests']:>8}  {p['problem']}")
    return 1 if problems else 0


def _problem(book: PriceBook, row: dict[str, Any]) -> dict[str, Any] | None:
    provider, model = row["provider"], row["model"]
    price = book.lookup(model, provider)
    out = {
        "provider": provider,
        "model": model,
        "requests": int(row["requests"]),
        "last_seen": queries.iso(row["last_seen"]),
        "recorded_unknown": int(row["unknown"] or 0),
        "recorded_estimated": int(row["estimated"] or 0),
    }
    if price is None:
        fallback = " (charged at the fallback price)" if book.fallback else ""
        return {**out, "problem": f"no price{fallback}", "price": None}
    if price.assumption:
        return {**out, "problem": f"assumption: {price.assumption}", "price": price.as_dict()}
    return None


def add_commands(sub: Any) -> None:
    db_help = "sqlite:///FILE or postgresql://... (default: TOLLWAY_DB, else ./tollway.db)"
    prices = sub.add_parser("prices", help="model prices: show one, check the log for gaps")
    actions = prices.add_subparsers(dest="prices_command", required=True)
    show = actions.add_parser("show", help="a model's price, its source and the layer that won")
    show.add_argument("model", help="a model id, e.g. claude-sonnet-4-5 or openai/gpt-5.2")
    show.add_argument("--provider", help="a configured provider name (default: from the model)")
    show.add_argument("--at", help="price at this time (ISO 8601 or epoch seconds)")
    show.add_argument("--config", help="the gateway's config file (for pricing: and providers)")
    show.add_argument("--db", help=db_help + "; adds overrides set through the admin API")
    show.add_argument("--format", choices=("text", "json"), default="text",
                      help="output format (default: text)")  # fmt: skip
    show.set_defaults(func=_show)
    check = actions.add_parser(
        "check", help="models in the request log with no price or only an assumption (exit 1)"
    )
    check.add_argument("--config", help="the gateway's config file (for pricing: and providers)")
    check.add_argument("--db", help=db_help)
    check.add_argument("--from", dest="since", help="only requests since (ISO 8601 or epoch)")
    check.add_argument("--format", choices=("table", "json"), default="table",
                       help="output format (default: table)")  # fmt: skip
    check.set_defaults(func=_check)
