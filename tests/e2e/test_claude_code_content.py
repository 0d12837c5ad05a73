"""Claude Code's own multi-turn session through the gateway: every body it sent is stored
once per session and reads back byte for byte (the audit trail of a ``required`` key)."""

from __future__ import annotations

import sqlite3
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import GatewayServer
from test_claude_code import claude_bin, run_claude  # noqa: F401  (claude_bin: a fixture)
from upstream_mock import (
    MockUpstream,
    RecordedRequest,
    Reply,
    anthropic_events,
    text_block,
    tool_use_block,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
TOOL_CALLS_PER_PROMPT = 4


def _reading_files(req: RecordedRequest) -> Reply | None:
    """Each prompt: read a few files with the Bash tool, one per turn, then answer."""
    if req.method != "POST" or req.path != "/v1/messages":
        return None
    body = req.json()
    if "Bash" not in [t.get("name") for t in body.get("tools", [])]:
        return None
    text = str([m for m in body["messages"] if m.get("role") == "user"])
    prompts = text.count("Read the notes")
    results = text.count("tool_use_id")
    model = body.get("model", "claude-opus-4-5")
    if results < prompts * TOOL_CALLS_PER_PROMPT:
        command = {"command": f"cat notes/{results % 3}.txt", "description": "Read a note"}
        blocks = [text_block("Reading the next note."), tool_use_block("Bash", command)]
    else:
        blocks = [text_block("I have read the notes.")]
    return Reply(events=anthropic_events(blocks, model=model))


def _stored(gateway: GatewayServer, key_name: str, want: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=gateway.base_url, headers=gateway.admin_headers()) as c:
        while True:
            rows = c.get("/api/logs", params={"key": key_name, "limit": 1000}).json()["data"]
            rows = [r for r in rows if r["surface"] == "anthropic" and r["status"] == 200]
            if len(rows) >= want or time.monotonic() > deadline:
                return rows
            time.sleep(0.3)


def test_a_multi_turn_session_reads_back_byte_for_byte(
    claude_bin: Path,  # noqa: F811
    gateway_server: GatewayServer,
    mock_upstream: MockUpstream,
    tmp_path: Path,
) -> None:
    mock_upstream.responder = _reading_files
    created = gateway_server.create_key("audited", content="required")
    home = tmp_path / "home"
    notes = home / "notes"
    notes.mkdir(parents=True)
    for i in range(3):
        (notes / f"{i}.txt").write_text(f"note {i}: " + "the writer batches records. " * 200)
    flags = ("--allowedTools", "Bash")
    first = run_claude(claude_bin, gateway_server, created["key"], home,
                       "-p", "Read the notes one by one.", *flags)  # fmt: skip
    run_claude(claude_bin, gateway_server, created["key"], home, "-p",
               "Read the notes again.", "--resume", first["session_id"], *flags)  # fmt: skip
    sent = [r.body for r in mock_upstream.calls("/v1/messages", "POST")]
    assert len(sent) >= 2 * TOOL_CALLS_PER_PROMPT + 2, len(sent)
    rows = _stored(gateway_server, "audited", len(sent))
    assert len(rows) == len(sent)
    stored = []
    with httpx.Client(
        base_url=gateway_server.base_url, headers=gateway_server.admin_headers()
    ) as c:
        for row in rows:
            r = c.get(f"/api/logs/{row['id']}/content/request")
            assert r.status_code == 200, r.text
            stored.append(r.content)
    assert sorted(stored) == sorted(sent)  # every body, byte for byte
    db = sqlite3.connect(gateway_server.config_path.parent / "t.db")
    manifests, chunks = db.execute(
        "SELECT (SELECT SUM(LENGTH(request_body)) FROM contents),"
        " (SELECT SUM(LENGTH(data)) FROM content_chunks)"
    ).fetchone()
    db.close()
    raw = sum(len(b) for b in sent)
    whole = sum(len(zlib.compress(b, 1)) for b in sent)  # how bodies were stored before
    # The session is stored once: far less than even one compressed copy of each body.
    assert (manifests + chunks) * 8 < raw, (manifests, chunks, raw)
    print(
        f"\nstorage of {len(sent)} Claude Code request bodies: {raw:,} B raw, {whole:,} B "
        f"as whole zlib-1 bodies, {manifests + chunks:,} B stored "
        f"({manifests:,} manifests + {chunks:,} chunks): {whole / (manifests + chunks):.1f}x "
        f"smaller than whole bodies, {raw / (manifests + chunks):.1f}x smaller than raw"
    )
