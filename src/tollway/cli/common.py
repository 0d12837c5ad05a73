"""What every state-reading command shares: reach the state, run, close; print JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from tollway.cli.backend import Backend, open_backend
from tollway.cli.context import resolve


def run(
    args: argparse.Namespace, body: Callable[[Backend], Awaitable[int]], may_create: bool = False
) -> int:
    """Resolve ``--url``/``--db`` (see cli/context.py), open the backend, run ``body``."""
    target = resolve(args, may_create=may_create)

    async def go() -> int:
        backend = await open_backend(target)
        try:
            return await body(backend)
        finally:
            await backend.close()

    return asyncio.run(go())


def show(doc: Any) -> None:
    print(json.dumps(doc, indent=2))


def table(head: list[str], rows: list[list[str]], numeric: frozenset[int] = frozenset()) -> str:
    """Aligned columns; columns in ``numeric`` are right-aligned."""
    lines = [head, *rows]
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.rjust(w) if i in numeric else cell.ljust(w)
                  for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
        for row in lines
    )  # fmt: skip
