"""What pricing adds to one request: the price book's resolve and the cost arithmetic.

    .venv/bin/python -m bench.micro_prices [--n 100000] [--rounds 5]

Admission resolves the price once (the worst case) and metering once more with the cost;
a lookup is cached per model, provider and minute, so the uncached figure is paid by the
first request for a model in each minute. Prints JSON: CPU microseconds per call, best of
the rounds.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

from tollway.accounting.cost import compute_cost
from tollway.accounting.pricing import PriceBook
from tollway.accounting.usage import Usage


def _best(fn: Callable[[], object], n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - t) / n * 1e6)
    return round(best, 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    book = PriceBook()
    book.bind_providers({"anthropic": ("anthropic", None)})
    usage = Usage(input_tokens=19_405, output_tokens=5, cache_read_tokens=100)

    def resolve() -> object:
        return book.resolve("claude-opus-4-8", "anthropic", at=datetime.now(UTC))

    def priced() -> object:
        return compute_cost(usage, resolve())

    def uncached() -> object:
        book._cache.clear()  # noqa: SLF001 - the cold path on purpose
        return resolve()

    print(json.dumps({
        "resolve_us": _best(resolve, args.n, args.rounds),
        "resolve_and_cost_us": _best(priced, args.n, args.rounds),
        "uncached_resolve_us": _best(uncached, max(1, args.n // 100), args.rounds),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
