"""The wire captures under tests/fixtures/wire, as the bytes an upstream sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tollway.audit.observe import ToolEvents
from tollway.sse import SSEParser

WIRE = Path(__file__).resolve().parent.parent / "fixtures" / "wire"


def capture(name: str) -> list[dict[str, Any]]:
    """The model calls of a capture (POSTs that were answered), in order."""
    rows = [json.loads(line) for line in (WIRE / name).read_text().splitlines() if line]
    return [r for r in rows if r["method"] == "POST" and r.get("response")]


def sse_bytes(response: dict[str, Any]) -> bytes:
    out = b""
    for event in response["sse"]:
        name = f"event: {event['event']}\n" if event.get("event") else ""
        out += (name + "data: " + json.dumps(event["data"]) + "\n\n").encode()
    return out


def body_bytes(row: dict[str, Any]) -> bytes:
    return json.dumps(row["body"]).encode()


def observed(dialect: str, stream: bytes, chunk: int = 7) -> ToolEvents:
    """The stream fed through the parser and the observer as the relay does, in small
    chunks (events split across reads)."""
    tools = ToolEvents(dialect)
    parser = SSEParser()
    for i in range(0, len(stream), chunk):
        for event in parser.feed(stream[i : i + chunk]):
            tools.observe(event)
    for event in parser.flush():
        tools.observe(event)
    return tools
