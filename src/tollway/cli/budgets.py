"""``tollway budgets list|reset|top-up``: a budget by its id, or by its owner's name.

With a gateway running these go through its admin API, so a reset or top-up takes effect
on the next request; on the database alone they are recorded and applied at the next start.
"""

from __future__ import annotations

import argparse
import getpass
from decimal import Decimal, InvalidOperation
from typing import Any

from tollway.cli.backend import Backend
from tollway.cli.common import run, show, table
from tollway.errors import InvalidRequest, NotFound

_OWNERS = (("key", "virtual_key", "vk"), ("team", "team", "team"),
           ("customer", "customer", "customer"))  # fmt: skip


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text.removeprefix("$"))
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount in USD") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the amount must be positive")
    return value


async def _scope(args: argparse.Namespace, backend: Backend) -> tuple[str, str] | None:
    """(scope, what to call it) for --key/--team/--customer, else None."""
    for flag, kind, prefix in _OWNERS:
        ref = getattr(args, flag, None)
        if ref:
            doc = await backend.get(kind, ref)
            return f"{prefix}:{doc['id']}", f"{flag} {doc['name']!r}"
    return None


async def _selected(args: argparse.Namespace, backend: Backend) -> list[dict[str, Any]]:
    budgets = await backend.budgets()
    budget_id = getattr(args, "budget_id", None)
    if budget_id:
        chosen = [b for b in budgets if b["budget_id"] == budget_id]
        if not chosen:
            raise NotFound(f"no budget {budget_id!r}; list them with `tollway budgets list`")
        return chosen
    scope = await _scope(args, backend)
    if scope is None:
        if args.budgets_command == "list":
            return budgets
        raise InvalidRequest("name the budget: its BUDGET_ID, or --key/--team/--customer NAME")
    chosen = [b for b in budgets if b["scope"] == scope[0]]
    window = getattr(args, "window", None)
    if window:
        chosen = [b for b in chosen if b["budget_id"].endswith("/" + window)]
    if not chosen:
        raise NotFound(f"{scope[1]} has no budget" + (f" with window {window}" if window else ""))
    return chosen


def _rows(budgets: list[dict[str, Any]]) -> str:
    rows = [[b["budget_id"], b["spent"], b["reserved"], b["max_limit"], b["top_up"],
             b["remaining"], b["resets_at"] or "-"] for b in budgets]  # fmt: skip
    head = ["BUDGET", "SPENT", "RESERVED", "LIMIT", "TOP-UP", "REMAINING", "RESETS AT"]
    return table(head, rows, numeric=frozenset({1, 2, 3, 4, 5}))


def _budgets(args: argparse.Namespace) -> int:
    async def body(backend: Backend) -> int:
        chosen = await _selected(args, backend)
        command = args.budgets_command
        if command == "top-up" and len(chosen) > 1:
            windows = ", ".join(b["budget_id"].rsplit("/", 1)[-1] for b in chosen)
            raise InvalidRequest(f"several budgets match ({windows}): choose one with --window")
        if command == "reset":
            chosen = [await backend.reset(b["budget_id"], args.actor) for b in chosen]
        elif command == "top-up":
            chosen = [await backend.top_up(chosen[0]["budget_id"], args.amount, args.actor)]
        if args.format == "json":
            show(chosen)
        else:
            print(_rows(chosen))
        return 0

    return run(args, body)


def _target(p: argparse.ArgumentParser, optional_id: bool = True) -> None:
    p.add_argument("budget_id", nargs="?" if optional_id else None, metavar="BUDGET_ID",
                   help="a budget id as `budgets list` shows it (e.g. vk:vk_0123/1d)")  # fmt: skip
    for flag, kind, _prefix in _OWNERS:
        p.add_argument(f"--{flag}", metavar="ID_OR_NAME",
                       help=f"the budgets of this {kind.replace('_', ' ')}")  # fmt: skip
    p.add_argument("--window", metavar="DURATION", help="only the budget with this window (1d, 1M)")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="output format (default: table)")  # fmt: skip


def add_commands(sub: Any) -> None:
    budgets = sub.add_parser("budgets", help="list budgets; reset one or top it up",
                             description=__doc__)  # fmt: skip
    actions = budgets.add_subparsers(dest="budgets_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="spent, reserved, limit and reset time per budget")
    _target(listing)
    actor = f"cli:{getpass.getuser()}"
    reset = actions.add_parser("reset", help="zero the current window's spend (recorded)")
    _target(reset)
    reset.add_argument("--actor", default=actor, help=f"who did it, for the record ({actor})")
    top_up = actions.add_parser("top-up", help="raise the limit until the window ends (recorded)")
    top_up.add_argument("amount", type=_amount, metavar="USD", help="the amount added, e.g. 10")
    _target(top_up)
    top_up.add_argument("--actor", default=actor, help=f"who did it, for the record ({actor})")
    for p in actions.choices.values():
        p.set_defaults(func=_budgets)
