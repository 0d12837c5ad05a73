"""Per-key ``content`` through the whole gateway: what is stored, spilled, dropped, read back."""

from __future__ import annotations

import base64
import json
from pathlib import Path

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
