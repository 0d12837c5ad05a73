"""Secrets are redacted in the audit copy only: what passes through the gateway is intact."""

from __future__ import annotations

import json
from pathlib import Path

from inprocess import running
from tollway.audit import store as sql
from tollway.audit.redact import redact
from upstream_mock import MockUpstream, Reply, anthropic_events, text_block, tool_use_block

SECRET = "sk-ant-api03-" + "S3cr3t" * 8
OUTPUT_SECRET = "sk-proj-" + "Q" * 40


def test_redact_keeps_the_shape_around_each_secret() -> None:
    assert redact(f"curl -H 'x-api-key: {SECRET}' https://a") == (
        "curl -H 'x-api-key: [REDACTED]' https://a"
    )
    assert redact("export GITHUB_TOKEN=ghp_" + "a" * 36) == "export GITHUB_TOKEN=[REDACTED]"
    assert redact("Authorization: Bearer abc.def-123") == "Authorization: Bearer [REDACTED]"
    assert redact("key tw-" + "k" * 43 + " and AKIAABCDEFGHIJKLMNOP") == (
        "key [REDACTED] and [REDACTED]"
    )
    assert redact("DB_PASSWORD='hunter22' make") == "DB_PASSWORD='[REDACTED]' make"
    assert redact("echo hello world") == "echo hello world"


async def test_forwarded_bytes_keep_secrets_the_audit_copy_does_not(tmp_path: Path) -> None:
    command = f"curl -H 'x-api-key: {SECRET}' https://api.example.com"
    with MockUpstream() as mock:
        blocks = [text_block("Calling."), tool_use_block("Bash", {"command": command}, "toolu_s1")]
        mock.enqueue(Reply(events=anthropic_events(blocks, model="claude-sonnet-4-5")),
                     Reply(events=anthropic_events("done", model="claude-sonnet-4-5")))  # fmt: skip
        config = (f"providers: {{anthropic: {{base_url: '{mock.base_url}', "
                  "keys: [{value: sk-ant-upstream}]}}")  # fmt: skip
        async with running(tmp_path, config) as gw:
            key = await gw.key("alice")
            headers = {"x-api-key": key, "anthropic-version": "2023-06-01",
                       "x-claude-code-session-id": "sess-r"}  # fmt: skip
            first = {"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": True,
                     "messages": [{"role": "user", "content": "go"}]}  # fmt: skip
            r = await gw.client.post("/v1/messages", json=first, headers=headers)
            assert r.status_code == 200
            assert r.content == mock.requests[-1].reply_body  # byte for byte, secret and all
            result = {"type": "tool_result", "tool_use_id": "toolu_s1",
                      "content": f"token {OUTPUT_SECRET}"}  # fmt: skip
            second = dict(first, messages=[
                *first["messages"], {"role": "assistant", "content": blocks},
                {"role": "user", "content": [result]}])  # fmt: skip
            r = await gw.client.post("/v1/messages", json=second, headers=headers)
            assert r.status_code == 200
            assert OUTPUT_SECRET.encode() in mock.requests[-1].body  # forwarded untouched
            await gw.services.audit.flush()
            acts = await sql.actions(gw.services.store, "sess-r")
            assert [(a["id"], a["status"], a["command"]) for a in acts] == [
                ("toolu_s1", "executed",
                 "curl -H 'x-api-key: [REDACTED]' https://api.example.com"),
            ]  # fmt: skip
            entries = [e.public() async for e in sql.entries(gw.services.store)]
            text = json.dumps(entries)
            assert SECRET not in text and OUTPUT_SECRET not in text and key not in text
            kinds = [e["kind"] for e in entries]
            assert kinds == ["request", "action.proposed", "action.executed", "request"]
