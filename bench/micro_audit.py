"""What the audit costs the request path: in-process, CPU per request and per stream.

    .venv/bin/python -m bench.micro_audit [--requests 1500] [--rounds 5] [--streams 2000]

1. The whole request path (bench/micro_pipeline.py's harness: the ASGI app, the simulated
   provider, the recorded 77 KB Claude Code request streamed, and the small OpenAI one)
   with ``audit.enabled`` false and true.
2. The two ways of reading tool calls off an Anthropic stream, per stream: the observer the
   gateway uses (audit/observe.py: keep only tool-call events as they pass, parse them on
   the audit thread) against keeping every chunk and re-parsing the stream later. Two
   streams: text only (most responses) and one with a 16 KB ``Write`` tool call.
Prints JSON; differences, not totals, are the point.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench.micro_pipeline import _best
from bench.payloads import claude_code, openai_small
from tollway.admin.ops import EntityOps, KeyInput
from tollway.app import build_app
from tollway.audit.actions import proposed_calls
from tollway.audit.observe import ToolEvents
from tollway.config import parse_config
from tollway.services import Services
from tollway.sse import SSEParser
from tollway.storage import open_store

CONFIG = "providers: {simulated: {}}\nlogging: {content: false}\naudit: {enabled: %s}\n"


async def pipeline(enabled: bool, n: int, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(CONFIG % ("true" if enabled else "false"))
        services = Services(config, open_store(f"sqlite:///{tmp}/b.db"))
        services.admin_token = "bench"
        await services.start()
        try:
            app = build_app(services)
            _rec, key = await EntityOps(services.store).create("virtual_key", KeyInput(name="b"))
            await services.registry.refresh()
            assert key is not None
            out = {}
            for shape in (claude_code(), openai_small()):
                await _best(app, shape, key, max(50, n // 10), 1)  # warm up
                out[f"{shape.name}_cpu_us"] = round(await _best(app, shape, key, n, rounds), 1)
            return out
        finally:
            await services.stop()


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def stream(tool_bytes: int) -> list[bytes]:
    """An Anthropic stream as chunks: 300 text deltas, then a Write of ``tool_bytes``."""
    text = {"type": "text", "text": ""}
    out = [_event("message_start", {"type": "message_start", "message": {"id": "m"}}),
           _event("content_block_start", {"type": "content_block_start", "index": 0,
                                          "content_block": text})]  # fmt: skip
    for i in range(300):
        out.append(_event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                  "delta": {"type": "text_delta",
                                                            "text": f"word{i} "}}))  # fmt: skip
    out.append(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
    if tool_bytes:
        args = json.dumps({"file_path": "/w/p/a.py", "content": "x" * tool_bytes})
        out.append(_event("content_block_start", {"type": "content_block_start", "index": 1,
                                                  "content_block": {"type": "tool_use",
                                                  "id": "toolu_1", "name": "Write",
                                                  "input": {}}}))  # fmt: skip
        for j in range(0, len(args), 64):
            delta = {"type": "input_json_delta", "partial_json": args[j : j + 64]}
            out.append(_event("content_block_delta", {"type": "content_block_delta",
                                                      "index": 1, "delta": delta}))  # fmt: skip
        out.append(_event("content_block_stop", {"type": "content_block_stop", "index": 1}))
    out.append(_event("message_stop", {"type": "message_stop"}))
    return out


def _per(fn: Callable[[], object], n: int) -> float:
    best = float("inf")
    for _ in range(7):
        start = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - start) / n * 1e6)
    return round(best, 1)


def observers(n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for label, chunks in (("text", stream(0)), ("write16k", stream(16_384))):

        def parse_only(chunks: list[bytes] = chunks) -> None:
            parser = SSEParser()
            for c in chunks:
                parser.feed(c)

        def observe(chunks: list[bytes] = chunks) -> ToolEvents:
            parser, tools = SSEParser(), ToolEvents("anthropic")
            for c in chunks:
                for e in parser.feed(c):
                    tools.observe(e)
            return tools

        def keep(chunks: list[bytes] = chunks) -> list[bytes]:
            parser, kept = SSEParser(), []
            for c in chunks:
                parser.feed(c)
                kept.append(c)
            return kept

        kept_events = observe().events
        kept_bytes = b"".join(chunks)

        def later_from_events(kept_events: list[bytes] = kept_events) -> None:
            proposed_calls("anthropic", kept_events, None)

        def later_from_bytes(kept_bytes: bytes = kept_bytes) -> None:
            events = SSEParser().feed(kept_bytes)
            proposed_calls("anthropic", [e.data for e in events], None)

        base = _per(parse_only, n)
        out[f"{label}_parse_us"] = base
        out[f"{label}_observer_extra_us"] = round(_per(observe, n) - base, 1)
        out[f"{label}_keep_bytes_extra_us"] = round(_per(keep, n) - base, 1)
        out[f"{label}_background_from_events_us"] = _per(later_from_events, n)
        out[f"{label}_background_from_bytes_us"] = _per(later_from_bytes, n)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the audit's cost on the request path")
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--observers-only", action="store_true", help="skip the pipeline runs")
    args = parser.parse_args()
    result: dict[str, Any] = {"observers": observers(args.streams)}
    runs = () if args.observers_only else (False, True, False, True)
    for enabled in runs:  # alternating, to see the noise
        key = f"pipeline_audit_{'on' if enabled else 'off'}"
        result.setdefault(key, []).append(asyncio.run(pipeline(enabled, args.requests,
                                                               args.rounds)))  # fmt: skip
    print(json.dumps(result, indent=1))
