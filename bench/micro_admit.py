"""Admission's hot-path additions, timed alone: the request bound and the reservation journal.

    .venv/bin/python -m bench.micro_admit [--quick]

Per request, admission now reads the body's shape (``accounting/bounds.read_shape``: the
output caps, ``n``, tools, and a walk of system/messages/input for provider-side content
and cache markers), prices its bound, and appends two journal lines (reserve, settle) to a
file with one ``write(2)`` each. Each is timed against what it replaced or sits beside:
the old bound (body length plus a fixed default) and a ledger reserve + settle. Prints
JSON: microseconds per operation, best of several repeats.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.payloads import anthropic_small, claude_code
from tollway.accounting.bounds import decode_body, read_shape, request_bound
from tollway.accounting.cost import input_token_upper_bound, worst_case_cost
from tollway.accounting.limits import model_limits
from tollway.accounting.pricing import PriceBook
from tollway.governance.ledger import BudgetSpec, Ledger
from tollway.governance.windows import parse_duration
from tollway.storage.journal import Journal
from tollway.surfaces.base import read_fields


def _best_us(fn: Callable[[], Any], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def _bound_times(book: PriceBook, body: bytes, number: int, repeat: int) -> dict[str, Any]:
    model = json.loads(body)["model"]
    price = book.lookup(model)
    assert price is not None
    limits = model_limits(model)
    return {
        "body_bytes": len(body),
        "old_bound_us": _best_us(
            lambda: worst_case_cost(price, input_token_upper_bound(len(body)), 64_000),
            number, repeat),
        "read_shape_us": _best_us(lambda: read_shape(body, "anthropic"), number, repeat),
        # the handler's routing fields and admission's shape: two parses, or one shared
        "fields_and_shape_two_parses_us": _best_us(
            lambda: (read_fields(body), read_shape(body, "anthropic")), number, repeat),
        "fields_and_shape_one_parse_us": _best_us(
            lambda: read_shape(body, "anthropic", decode_body(body)), number, repeat),
        "request_bound_us": _best_us(
            lambda: request_bound(read_shape(body, "anthropic"), price, limits), number, repeat),
    }  # fmt: skip


def run(number: int, repeat: int) -> dict[str, Any]:
    book = PriceBook()
    out: dict[str, Any] = {}
    for name, shape in (("claude-code-stream", claude_code()),
                        ("anthropic-small", anthropic_small())):  # fmt: skip
        out[name] = _bound_times(book, shape.body, number, repeat)
    ledger = Ledger()
    now = datetime.now(UTC)
    specs = [BudgetSpec(f"vk:k/{d}", "vk:k", Decimal(10**9), parse_duration(d), False, now)
             for d in ("1d", "1M")]  # fmt: skip

    def reserve_settle() -> None:
        r = ledger.reserve(specs, Decimal("2.09"), now)
        assert not isinstance(r, type(None))
        ledger.settle(r, Decimal("0.05"), now)  # type: ignore[arg-type]

    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        journal = Journal(Path(tmp) / "bench.journal", rotate_bytes=1 << 40)
        journal.restart()
        keys = [("vk:k_0123456789abcdef/1d", 1764547200.0), ("vk:k_0123456789abcdef/1M",
                                                              1764547200.0)]  # fmt: skip
        spent = [(b, w, Decimal("123.456789")) for b, w in keys]
        ids = iter(range(1, 10**9))

        def journal_pair() -> None:
            rid = next(ids)
            journal.reserved(rid, Decimal("2.0904"), keys, "k_0123456789abcdef",
                             "claude-opus-4-8", 1764590000.123)  # fmt: skip
            journal.settled(rid, spent)

        out["ledger_reserve_settle_us"] = _best_us(reserve_settle, number, repeat)
        out["journal_reserve_settle_us"] = _best_us(journal_pair, number, repeat)
        out["journal_bytes_per_request"] = journal._size / max(1, journal.writes // 2)
        journal.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    number, repeat = (200, 3) if args.quick else (2000, 7)
    json.dump(run(number, repeat), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
