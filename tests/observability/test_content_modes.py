"""Per-key ``content`` through the whole gateway: what is stored, spilled, dropped, read back."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import httpx
import pytest

from inprocess import running

SESSION = "9d1c3a57-0000-4000-8000-00000000c0de"


def turn(n: int) -> bytes:
    """The n-th request of one conversation: each resends the messages before it."""
    messages = []
    for i in range(n):
        messages += [
            {"role": "user", "content": [{"type": "text", "text": f"step {i} " * 300}]},
            {"role": "assistant", "content": [{"type": "text", "text": "ok " * 200}]},
        ]
    messages.append(
        {
            "role": "user",
            "content": [{"type": "text", "text": "go on", "cache_control": {"type": "ephemeral"}}],
        }
    )
    doc = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 50,
        "stream": True,
        "messages": messages,
        "system": [{"type": "text", "text": "You are Claude Code. " * 400}],
    }
    return json.dumps(doc, separators=(",", ":")).encode()  # fmt: skip


async def test_required_spills_best_effort_drops_off_stores_nothing(tmp_path: Path) -> None:
    config = (
        "providers: {simulated: {}}\n"
        f"logging: {{content_queue_mb: 0.001, spool_mb: 0, spool_dir: '{tmp_path / 'spool'}'}}\n"
    )  # every body is past the memory bound: spilled if it may not be dropped
    async with running(tmp_path, config) as gw:
        keys = {mode: await gw.key(mode, content=mode)
                for mode in ("required", "best_effort", "off")}  # fmt: skip
        sent: dict[str, list[bytes]] = {m: [] for m in keys}
        for n in range(6):
            for mode, key in keys.items():
                body = turn(n)
                headers = {"x-api-key": key, "x-claude-code-session-id": SESSION}
                r = await gw.client.post("/v1/messages", content=body, headers=headers)
                assert r.status_code == 200 and "message_stop" in r.text
                sent[mode].append(body)
        writer = gw.services.writer
        assert writer.spilled_contents == 6 and writer.dropped_contents == 6
        while writer.pending_contents:  # memory for one body at a time: a flush each
            await writer.flush()
        for mode in keys:
            logs = (await gw.client.get(f"/api/logs?key={mode}&limit=50", headers=gw.admin)).json()
            ids = [row["id"] for row in reversed(logs["data"])]
            assert len(ids) == 6  # every request is recorded, whatever its content setting
            for rid, body in zip(ids, sent[mode], strict=True):
                r = await gw.client.get(f"/api/logs/{rid}/content/request", headers=gw.admin)
                if mode == "required":
                    assert r.status_code == 200 and r.content == body  # byte for byte
                    resp = await gw.client.get(f"/api/logs/{rid}/content/response",
                                               headers=gw.admin)  # fmt: skip
                    assert b"message_stop" in resp.content
                else:
                    assert r.status_code == 404
        r = await gw.client.get("/api/logs?key=required&format=jsonl&content=true",
                                headers=gw.admin)  # fmt: skip
        exported = [json.loads(line) for line in r.text.splitlines()]
        assert [base64.b64decode(d["content"]["request_b64"]) for d in reversed(exported)] == sent[
            "required"
        ]
        text = (await gw.client.get("/metrics")).text
        assert "tollway_log_contents_spilled 6.0" in text
        assert "tollway_log_contents_dropped 6.0" in text
        # Stored once: the six turns of the session take about what the last one does.
        rows = await gw.services.store.query("SELECT SUM(LENGTH(data)) AS n FROM content_chunks")
        whole = await gw.services.store.query("SELECT COUNT(*) AS n FROM content_chunks")
        assert int(whole[0]["n"]) > 0 and int(rows[0]["n"]) < len(sent["required"][-1])


async def test_required_key_is_held_back_while_the_backlog_is_full(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = (
        "providers: {simulated: {}}\ngateway: {concurrency_wait_s: 0.2}\n"
        "logging: {content_queue_mb: 0.001, spool_mb: 0.001, flush_interval_ms: 600000, "
        f"spool_dir: '{tmp_path / 'spool'}'}}\n"
    )  # the writer never drains by itself here: only the test's flushes store bodies
    async with running(tmp_path, config) as gw:
        required = await gw.key("audited", content="required")
        best_effort = await gw.key("casual", content="best_effort")
        headers = {"x-claude-code-session-id": SESSION, "anthropic-version": "2023-06-01"}

        async def post(key: str) -> httpx.Response:
            return await gw.client.post("/v1/messages", content=turn(3),
                                        headers={**headers, "x-api-key": key})  # fmt: skip

        assert (await post(required)).status_code == 200  # its body fills the spool
        writer = gw.services.writer
        assert writer.backlogged
        r = await post(required)  # waits 0.2 s for room, then is told to come back
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        error = r.json()["error"]
        assert error["type"] == "overloaded_error" and "key audited" in error["message"]
        assert (await post(best_effort)).status_code == 200  # may lose its body: not held
        assert writer.dropped_contents == 1 and writer.held_back == 1
        text = (await gw.client.get("/metrics")).text
        assert "tollway_log_content_held_back 1.0" in text
        assert "tollway_log_content_refused 1.0" in text
        assert "holding back requests of keys whose content is required" in caplog.text
        waiting = asyncio.create_task(post(required))  # held until the flush below
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await writer.flush()
        assert (await waiting).status_code == 200
        while writer.pending_contents:
            await writer.flush()
        logs = (await gw.client.get("/api/logs?key=audited&limit=9", headers=gw.admin)).json()
        statuses = [row["status"] for row in reversed(logs["data"])]
        assert statuses == [200, 503, 200]  # the refusal is logged too
        for row, status in zip(reversed(logs["data"]), statuses, strict=True):
            r = await gw.client.get(f"/api/logs/{row['id']}/content/request", headers=gw.admin)
            assert (r.status_code, r.content) == (
                (200, turn(3)) if status == 200 else (404, r.content)
            )
        assert writer.dropped_contents == 1  # the best-effort body only
