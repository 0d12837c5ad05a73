"""Read the wire captures under tests/fixtures/wire and turn them into bytes and events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tollway.sse import SSEEvent, SSEParser
from tollway.translate import Translator

WIRE = Path(__file__).resolve().parent.parent / "fixtures" / "wire"


def rows(name: str) -> list[dict[str, Any]]:
    with (WIRE / name).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def row(name: str, seq: int) -> dict[str, Any]:
    return next(r for r in rows(name) if r["seq"] == seq)


def body(name: str, seq: int) -> bytes:
    return json.dumps(row(name, seq)["body"]).encode()


def sse_bytes(name: str, seq: int) -> bytes:
    """The captured reply stream, as the upstream sent it."""
    out = b""
    for event in row(name, seq)["response"]["sse"]:
        head = f"event: {event['event']}\n" if event.get("event") else ""
        data = event["data"] if isinstance(event["data"], str) else json.dumps(event["data"])
        out += f"{head}data: {data}\n\n".encode()
    return out


def parse(stream: bytes) -> list[SSEEvent]:
    parser = SSEParser()
    return parser.feed(stream) + parser.flush()


def translate_stream(
    translator: Translator, stream: bytes, pieces: list[int] | None = None
) -> bytes:
    """The client bytes for an upstream stream, fed in pieces cut at ``pieces`` offsets."""
    cuts = sorted(set(pieces or [])) + [len(stream)]
    parser = SSEParser()
    st = translator.stream()
    out = b""
    start = 0
    for cut in cuts:
        for event in parser.feed(stream[start:cut]):
            out += b"".join(st.feed(event))
        start = cut
    for event in parser.flush():
        out += b"".join(st.feed(event))
    return out + b"".join(st.close(True))


def datas(stream: bytes) -> list[Any]:
    """The JSON data of each event (``[DONE]`` kept as the string)."""
    out = []
    for event in parse(stream):
        text = event.data.decode()
        out.append(text if text == "[DONE]" else json.loads(text))
    return out
