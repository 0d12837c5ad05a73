"""``tollway keys|teams|customers ...``: create, list, show, update, revoke or delete.

They reach the same state as the gateway (cli/context.py): its admin API when it runs,
else its database. Teams and customers are named by id or name alike.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from tollway.cli.backend import Backend
from tollway.cli.common import run, show, table
from tollway.config import Budget, ProviderGrant, RateLimit, SessionBudget
from tollway.errors import InvalidRequest
from tollway.limits import first_problem
from tollway.storage.queries import LogFilter

KINDS = {"keys": "virtual_key", "teams": "team", "customers": "customer"}
_SINGULAR = {"virtual_key": "virtual key", "team": "team", "customer": "customer"}


def parse_budget(text: str, calendar: bool) -> Budget:
    """``50/1d`` -> $50 every day."""
    amount, sep, duration = text.partition("/")
    if not sep:
        raise InvalidRequest(f"--budget {text!r}: write AMOUNT/DURATION, e.g. 50/1d or 500/1M")
    try:
        return Budget(max_limit=amount, reset_duration=duration, calendar_aligned=calendar)
    except ValidationError as exc:
        raise InvalidRequest(f"--budget {text!r}: {first_problem(exc)}") from None


def _add_fields(p: argparse.ArgumentParser, kind: str) -> None:
    p.add_argument("--budget", action="append", default=None, metavar="USD/DURATION",
                   help="a budget, e.g. 50/1d (windows m h d w M Q Y); repeatable")  # fmt: skip
    p.add_argument("--calendar", action="store_true",
                   help="budgets reset on calendar bounds (midnight, Monday, the 1st)")  # fmt: skip
    p.add_argument("--rpm", type=int, help="requests per minute")
    p.add_argument("--tpm", type=int, help="tokens per minute")
    p.add_argument("--concurrency", type=int, help="requests in flight at once")
    if kind != "customer":
        p.add_argument("--customer", metavar="ID_OR_NAME", help="the owning customer")
    if kind == "virtual_key":
        p.add_argument("--team", metavar="ID_OR_NAME", help="the owning team")
        p.add_argument("--models", action="append", metavar="PATTERN",
                       help="allowed models: exact, glob or regex:...; repeatable")  # fmt: skip
        p.add_argument("--provider", action="append",
                       help="allowed providers (default: any); repeatable")  # fmt: skip
        p.add_argument("--session-budget", metavar="USD",
                       help="USD cap per agent session")  # fmt: skip
        p.add_argument("--expires-at", metavar="TIME",
                       help="ISO 8601 time after which the key stops working")  # fmt: skip


async def _fields(kind: str, args: argparse.Namespace, backend: Backend) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if args.action == "create":
        fields["name"] = args.name
    if getattr(args, "rename", None):
        fields["name"] = args.rename
    if args.budget:
        fields["budgets"] = [parse_budget(b, args.calendar) for b in args.budget]
    if args.rpm or args.tpm or args.concurrency:
        try:
            fields["rate_limit"] = RateLimit(request_max_limit=args.rpm, token_max_limit=args.tpm,
                                             concurrency_max=args.concurrency)  # fmt: skip
        except ValidationError as exc:
            raise InvalidRequest(f"--rpm/--tpm/--concurrency: {first_problem(exc)}") from None
    if getattr(args, "customer", None):
        fields["customer_id"] = (await backend.get("customer", args.customer))["id"]
    if kind == "virtual_key":
        if args.team:
            fields["team_id"] = (await backend.get("team", args.team))["id"]
        if args.models or args.provider:
            models = args.models or ["*"]
            fields["provider_configs"] = [ProviderGrant(provider=p, allowed_models=models)
                                          for p in (args.provider or ["*"])]  # fmt: skip
        if args.session_budget:
            try:
                fields["session_budget"] = SessionBudget(max_limit=args.session_budget)
            except ValidationError as exc:
                msg = first_problem(exc)
                raise InvalidRequest(f"--session-budget {args.session_budget!r}: {msg}") from None
        if args.expires_at:
            fields["expires_at"] = args.expires_at
    return {k: _plain(v) for k, v in fields.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def state_of(doc: dict[str, Any], now: datetime) -> str:
    if doc.get("revoked_at"):
        return "revoked"
    if doc.get("is_active") is False:
        return "inactive"
    expires = doc.get("expires_at")
    if expires and datetime.fromisoformat(expires.replace("Z", "+00:00")) <= now:
        return "expired"
    return "active"


def _budget_cell(statuses: list[dict[str, Any]]) -> str:
    cells = []
    for s in statuses:
        window = s["budget_id"].rsplit("/", 1)[-1]
        cells.append(f"${s['spent']}/${s['max_limit']} {window}")
    return ", ".join(cells) or "-"


async def list_keys(backend: Backend, fmt: str) -> str:
    """Keys with their state, team, budgets (spent of limit per window) and total spend."""
    keys = await backend.list_all("virtual_key")
    teams = {t["id"]: t["name"] for t in await backend.list_all("team")}
    budgets = await backend.budgets()
    spend = {g["group"]: g for g in (await backend.usage("key", LogFilter()))["data"]}
    now = datetime.now(UTC)
    docs = []
    for k in keys:
        own = [
            b
            for b in budgets
            if b["scope"] == f"vk:{k['id']}" or b["scope"].startswith(f"pc:{k['id']}:")
        ]
        used = spend.get(k["id"])
        docs.append({"id": k["id"], "name": k["name"], "key_hint": k.get("key_hint"),
                     "team": teams.get(k.get("team_id") or "", k.get("team_id")),
                     "state": state_of(k, now), "budgets": own,
                     "requests": used["requests"] if used else 0,
                     "spend": used["cost"]["total"] if used else "0"})  # fmt: skip
    if fmt == "json":
        return json.dumps(docs, indent=2)
    rows = [[d["name"], d["id"], d["key_hint"] or "-", d["team"] or "-", d["state"],
             _budget_cell(d["budgets"]), str(d["requests"]), "$" + d["spend"]]
            for d in docs]  # fmt: skip
    head = ["NAME", "ID", "KEY", "TEAM", "STATE", "BUDGETS (spent/limit)", "REQUESTS", "SPEND"]
    return table(head, rows, numeric=frozenset({6, 7}))


def _simple_list(docs: list[dict[str, Any]]) -> str:
    rows = [[d["name"], d["id"], ", ".join(f"${b['max_limit']}/{b['reset_duration']}"
                                           for b in d.get("budgets") or []) or "-"]
            for d in docs]  # fmt: skip
    return table(["NAME", "ID", "BUDGETS"], rows)


async def _act(kind: str, args: argparse.Namespace, backend: Backend) -> int:
    action = args.action
    if action == "create":
        doc = await backend.create(kind, await _fields(kind, args, backend))
        show(doc)
        if doc.get("key"):
            print(f"\nThe key is shown once. For Claude Code:\n"
                  f"  export ANTHROPIC_API_KEY={doc['key']}\n"
                  f"Other clients: tollway codex|cursor|openai|anthropic|curl env|config "
                  f"--key {doc['key']}")  # fmt: skip
    elif action == "list":
        if kind == "virtual_key":
            print(await list_keys(backend, args.format))
        elif args.format == "json":
            show(await backend.list_all(kind))
        else:
            print(_simple_list(await backend.list_all(kind)))
    elif action == "show":
        show(await backend.get(kind, args.id))
    elif action == "update":
        show(await backend.update(kind, args.id, await _fields(kind, args, backend)))
    elif action == "revoke":
        show(await backend.revoke(args.id))
    elif action == "delete":
        await backend.delete(kind, args.id)
        print(f"deleted {_SINGULAR[kind]} {args.id}")
    elif action == "rotate":
        show(await backend.rotate(args.id))
    return 0


def _command(args: argparse.Namespace) -> int:
    kind = KINDS[args.group]

    async def body(backend: Backend) -> int:
        return await _act(kind, args, backend)

    return run(args, body, may_create=args.action == "create")


def _status(args: argparse.Namespace) -> int:
    async def body(backend: Backend) -> int:
        show(await backend.key_status(args.id, args.model, args.body_bytes))
        return 0

    return run(args, body)


def add_commands(sub: Any) -> None:
    for group, kind in KINDS.items():
        what = _SINGULAR[kind]
        g = sub.add_parser(group, help=f"create, list, show, update and remove {what}s",
                           description=f"Manage {what}s.")  # fmt: skip
        actions = g.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = actions.add_parser("create", help=f"create a {what}")
        create.add_argument("name", help=f"the {what}'s name (unique)")
        _add_fields(create, kind)
        listing = actions.add_parser("list", help=f"list {what}s" + (
            " with state, budgets and spend" if kind == "virtual_key" else ""))  # fmt: skip
        listing.add_argument("--format", choices=("table", "json"), default="table",
                             help="output format (default: table)")  # fmt: skip
        show_p = actions.add_parser("show", help=f"one {what} as JSON")
        show_p.add_argument("id", help=f"the {what}'s id or name")
        update = actions.add_parser("update", help=f"change a {what}; only the flags given")
        update.add_argument("id", help=f"the {what}'s id or name")
        update.add_argument("--rename", metavar="NAME", help="a new name")
        _add_fields(update, kind)
        if kind == "virtual_key":
            revoke = actions.add_parser("revoke", help="stop the key at once; records stay")
            revoke.add_argument("id", help="the key's id or name")
            rotate = actions.add_parser("rotate", help="new secret, same id and counters")
            rotate.add_argument("id", help="the key's id or name")
        else:
            delete = actions.add_parser("delete", help=f"delete a {what}")
            delete.add_argument("id", help=f"the {what}'s id or name")
        for p in actions.choices.values():
            p.set_defaults(func=_command, group=group)
    status = sub.add_parser("status", help="a key's budgets (spent, reserved, left), limits, and "
                            "whether it can make a request now")  # fmt: skip
    status.add_argument("id", help="the virtual key's id or name")
    status.add_argument("--model", default="claude-opus-4-8",
                        help="say how large a request to this model may be now")  # fmt: skip
    status.add_argument("--body-bytes", type=int, default=80_000,
                        help="the request body size for --model (default 80,000)")  # fmt: skip
    status.set_defaults(func=_status)
