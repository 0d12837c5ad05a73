"""``tollway keys|teams|customers create|list|show|update|revoke`` and ``tollway status``.

These work on the database directly (``--db``), so they need no running gateway; a
running gateway picks changes up within a second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from tollway.admin.ops import CustomerInput, EntityOps, KeyInput, TeamInput
from tollway.cli.serve import db_url
from tollway.config import Budget, ProviderGrant, RateLimit, SessionBudget
from tollway.errors import InvalidRequest
from tollway.storage import open_store
from tollway.storage.base import Store

_KINDS = {
    "keys": ("virtual_key", KeyInput),
    "teams": ("team", TeamInput),
    "customers": ("customer", CustomerInput),
}


def parse_budget(text: str, calendar: bool) -> Budget:
    """``50/1d`` -> $50 every day."""
    amount, sep, duration = text.partition("/")
    if not sep:
        raise InvalidRequest(f"--budget {text!r}: write AMOUNT/DURATION, e.g. 50/1d or 500/1M")
    try:
        return Budget(max_limit=float(amount), reset_duration=duration, calendar_aligned=calendar)
    except ValueError as exc:
        raise InvalidRequest(f"--budget {text!r}: {exc}") from None


def _add_fields(p: argparse.ArgumentParser, kind: str) -> None:
    p.add_argument("--budget", action="append", default=None, metavar="USD/DURATION",
                   help="a budget, e.g. 50/1d; repeat for several windows")  # fmt: skip
    p.add_argument("--calendar", action="store_true", help="budgets reset on calendar bounds")
    p.add_argument("--rpm", type=int, help="requests per minute")
    p.add_argument("--tpm", type=int, help="tokens per minute")
    p.add_argument("--concurrency", type=int, help="requests in flight at once")
    if kind != "customer":
        p.add_argument("--customer", help="owning customer id")
    if kind == "virtual_key":
        p.add_argument("--team", help="owning team id")
        p.add_argument("--models", action="append", help="allowed model patterns (repeatable)")
        p.add_argument("--provider", action="append", help="allowed providers (default: any)")
        p.add_argument("--session-budget", type=float, help="USD cap per agent session")
        p.add_argument("--expires-at", help="ISO 8601 time after which the key stops working")


def _input(kind: str, args: argparse.Namespace) -> Any:
    fields: dict[str, Any] = {}
    if getattr(args, "name", None) and args.command_kind != "update":
        fields["name"] = args.name
    if getattr(args, "rename", None):
        fields["name"] = args.rename
    if args.budget:
        fields["budgets"] = [parse_budget(b, args.calendar) for b in args.budget]
    if args.rpm or args.tpm or args.concurrency:
        fields["rate_limit"] = RateLimit(request_max_limit=args.rpm, token_max_limit=args.tpm,
                                         concurrency_max=args.concurrency)  # fmt: skip
    if getattr(args, "customer", None):
        fields["customer_id"] = args.customer
    if kind == "virtual_key":
        if args.team:
            fields["team_id"] = args.team
        if args.models or args.provider:
            models = args.models or ["*"]
            fields["provider_configs"] = [ProviderGrant(provider=p, allowed_models=models)
                                          for p in (args.provider or ["*"])]  # fmt: skip
        if args.session_budget:
            fields["session_budget"] = SessionBudget(max_limit=args.session_budget)
        if args.expires_at:
            fields["expires_at"] = args.expires_at
    model: type[Any] = _KINDS[args.group][1]
    return model.model_validate(fields)


def _run(args: argparse.Namespace, body: Callable[[EntityOps, Store], Awaitable[int]]) -> int:
    async def go() -> int:
        store = open_store(db_url(args.db))
        await store.open()
        try:
            return await body(EntityOps(store), store)
        finally:
            await store.close()

    return asyncio.run(go())


def _show(record: Any, secret: str | None = None) -> None:
    doc = record.model_dump(mode="json", exclude={"key_hash"})
    if secret:
        doc["key"] = secret
    print(json.dumps(doc, indent=2))


def _command(args: argparse.Namespace) -> int:
    kind = _KINDS[args.group][0]
    action = args.command_kind

    async def body(ops: EntityOps, store: Store) -> int:
        if action == "create":
            record, secret = await ops.create(kind, _input(kind, args))
            _show(record, secret)
            if secret:
                print(
                    "\nThe key is shown once. For Claude Code:\n"
                    f"  export ANTHROPIC_API_KEY={secret}"
                )
        elif action == "list":
            for r in await ops.list(kind):
                extra = f"  {r.key_hint}" if kind == "virtual_key" else ""
                state = ""
                if kind == "virtual_key" and (r.revoked_at or not r.is_active):
                    state = "  (revoked)" if r.revoked_at else "  (inactive)"
                print(f"{r.id}  {r.name}{extra}{state}")
        elif action == "show":
            _show(await ops.get(kind, args.id))
        elif action == "update":
            _show(await ops.update(kind, args.id, _input(kind, args)))
        elif action == "revoke":
            if kind == "virtual_key":
                _show(await ops.revoke_key(args.id))
            else:
                await ops.delete(kind, args.id)
                print(f"deleted {args.id}")
        elif action == "rotate":
            record, secret = await ops.rotate_key(args.id)
            _show(record, secret)
        return 0

    return _run(args, body)


def _status(args: argparse.Namespace) -> int:
    from tollway.accounting.pricing import PriceBook
    from tollway.admin.budgets import request_now, status_json
    from tollway.config import Config
    from tollway.pipeline.admit import Admission
    from tollway.pipeline.registry import Registry

    async def body(ops: EntityOps, store: Store) -> int:
        key = await ops.get("virtual_key", args.id)
        registry = Registry(store)
        await registry.refresh(force=True)
        admission = Admission(registry, PriceBook(), Config())
        await admission.load(store)
        now = request_now(admission, key, args.model, args.body_bytes)
        doc = {
            "id": key.id,
            "name": key.name,
            "usable": key.usable(datetime.now(UTC)) is None and now["can_request"],
            "request_now": now,
            "budgets": [status_json(s) for s in admission.statuses(key)],
            "rate_limit": key.rate_limit.model_dump() if key.rate_limit else None,
            "note": "settled spend as stored; in-flight reservations live in the gateway",
        }
        print(json.dumps(doc, indent=2))  # fmt: skip
        return 0

    return _run(args, body)


def add_commands(sub: Any) -> None:
    for group, (kind, _model) in _KINDS.items():
        g = sub.add_parser(group, help=f"manage {group}")
        actions = g.add_subparsers(dest="command_kind", required=True)
        create = actions.add_parser("create")
        create.add_argument("name")
        _add_fields(create, kind)
        actions.add_parser("list")
        show = actions.add_parser("show")
        show.add_argument("id", help="id or name")
        update = actions.add_parser("update")
        update.add_argument("id", help="id or name")
        update.add_argument("--rename", help="new name")
        _add_fields(update, kind)
        revoke = actions.add_parser("revoke" if kind == "virtual_key" else "delete")
        revoke.add_argument("id", help="id or name")
        if kind == "virtual_key":
            rotate = actions.add_parser("rotate", help="new secret, same id and counters")
            rotate.add_argument("id", help="id or name")
        for p in actions.choices.values():
            p.add_argument("--db", help="database URL (default: sqlite:///tollway.db)")
            p.set_defaults(func=_command, group=group)
    status = sub.add_parser("status", help="a key's budgets and limits")
    status.add_argument("id", help="virtual key id or name")
    status.add_argument("--model", default="claude-opus-4-8",
                        help="say how large a request to this model may be now")  # fmt: skip
    status.add_argument("--body-bytes", type=int, default=80_000,
                        help="the request body size for --model (default 80,000)")  # fmt: skip
    status.add_argument("--db", help="database URL (default: sqlite:///tollway.db)")
    status.set_defaults(func=_status)
