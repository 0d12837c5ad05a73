"""Governed tool calls: the log row, content switches, rate limits, prices against budgets,
curated group endpoints and sessions bound to their key."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from conftest import GatewayServer
from mcp_harness import ToolServerProcess, session, texts, tool_server, wait_for, wait_for_calls

pytestmark = pytest.mark.timeout(120)
ACCESS = {"keys": {n: {"allow": ["tools__*"], "deny": ["tools__delete_everything"]}
                   for n in ("dev", "quiet", "other", "limited")}}  # fmt: skip


@pytest.fixture
def upstream() -> Iterator[ToolServerProcess]:
    server = tool_server()
    try:
        yield server
    finally:
        server.kill()


def start(factory: Callable[..., GatewayServer], url: str, **mcp: Any) -> GatewayServer:
    servers = {"tools": {"url": url, **mcp.pop("server", {})}}
    gw = factory({"mcp": {"servers": servers, "access": ACCESS, **mcp}})
    wait_for(gw, "tools", "up")
    return gw


async def test_a_call_is_logged_with_its_key_and_session(
    gateway_factory: Callable[..., GatewayServer], upstream: ToolServerProcess
) -> None:
    gw = start(gateway_factory, upstream.url)
    created = gw.create_key("dev")
    headers = {"X-Claude-Code-Session-Id": "cc-session-1"}
    async with session(gw.base_url + "/mcp", created["key"], headers=headers) as client:
        await client.call_tool("tools__echo", {"text": "hello"})
        await client.call_tool("tools__add", {"a": 1, "b": 2})
    async with session(gw.base_url + "/mcp", created["key"]) as client:
        await client.call_tool("tools__echo", {"text": "again"})
    rows = wait_for_calls(gw, 3, key=created["id"])
    first, second, third = sorted(rows, key=lambda r: r["started_at"])
    assert first["vk_id"] == created["id"] and first["vk_name"] == "dev"
    assert first["agent_session_id"] == "cc-session-1" and third["agent_session_id"] is None
    assert first["mcp_session_id"] and len(first["mcp_session_id"]) == 32
    assert first["mcp_session_id"] == second["mcp_session_id"] != third["mcp_session_id"]
    assert (first["endpoint"], first["server"], first["tool"], first["exposed_name"]) == (
        "/mcp", "tools", "echo", "tools__echo")  # fmt: skip
    assert first["outcome"] == "ok" and first["error_message"] is None
    assert json.loads(first["arguments"]) == {"text": "hello"}
    assert first["arguments_bytes"] == len(first["arguments"].encode())
    result = json.loads(first["result"])
    assert result["content"] == [{"type": "text", "text": "echo: hello"}]
    assert first["result_bytes"] == len(first["result"].encode())
    assert first["latency_ms"] > 0 and first["cost"] == "0"
    by_session = wait_for_calls(gw, 2, session="cc-session-1")
    assert len(by_session) == 2


async def test_content_follows_the_keys_log_content_switch(
    gateway_factory: Callable[..., GatewayServer], upstream: ToolServerProcess
) -> None:
    gw = start(gateway_factory, upstream.url)
    key = str(gw.create_key("quiet", log_content=False)["key"])
    async with session(gw.base_url + "/mcp", key) as client:
        await client.call_tool("tools__echo", {"text": "private"})
    (row,) = wait_for_calls(gw, 1, key="quiet")
    assert row["arguments"] is None and row["result"] is None
    assert row["arguments_bytes"] == len('{"text":"private"}') and row["result_bytes"] > 0


async def test_tool_calls_are_rate_limited_per_key(
    gateway_factory: Callable[..., GatewayServer], upstream: ToolServerProcess
) -> None:
    gw = start(gateway_factory, upstream.url, rate_limit={"calls": 2, "per": "1h"})
    async with session(gw.base_url + "/mcp", gw.key("limited")) as client:
        for _ in range(2):
            assert not (await client.call_tool("tools__echo", {"text": "x"})).is_error
        refused = await client.call_tool("tools__echo", {"text": "x"})
        assert refused.is_error
        assert "MCP tool call rate limit of the virtual key" in texts(refused)[0]
    async with session(gw.base_url + "/mcp", gw.key("other")) as client:  # its own limit
        assert not (await client.call_tool("tools__echo", {"text": "x"})).is_error
    rows = wait_for_calls(gw, 3, key="limited")
    assert sorted(r["outcome"] for r in rows) == ["ok", "ok", "rate_limited"]
    with httpx.Client(timeout=10) as http:
        metrics = http.get(f"{gw.base_url}/metrics").text
    assert 'tollway_mcp_tool_calls_total{outcome="ok",server="tools"} 3.0' in metrics
    assert 'tollway_mcp_tool_calls_total{outcome="rate_limited",server="tools"} 1.0' in metrics
    assert 'tollway_mcp_tool_call_duration_seconds_count{server="tools"} 4.0' in metrics
    assert "tollway_mcp_upstreams_up 1.0" in metrics


async def test_a_price_per_call_counts_against_the_budget(
    gateway_factory: Callable[..., GatewayServer], upstream: ToolServerProcess
) -> None:
    gw = start(gateway_factory, upstream.url, server={"price_per_call": "0.01"})
    created = gw.create_key("dev", budgets=[{"max_limit": 0.025, "reset_duration": "1d"}])
    async with session(gw.base_url + "/mcp", created["key"]) as client:
        for _ in range(2):
            assert not (await client.call_tool("tools__echo", {"text": "x"})).is_error
        refused = await client.call_tool("tools__echo", {"text": "x"})
        assert refused.is_error and "budget exceeded" in texts(refused)[0]
        assert "costs $0.01" in texts(refused)[0]
    rows = wait_for_calls(gw, 3, key="dev")
    assert sorted((r["outcome"], r["cost"]) for r in rows) == [
        ("budget", "0"), ("ok", "0.01"), ("ok", "0.01")]  # fmt: skip
    with httpx.Client(timeout=10) as http:
        status = http.get(f"{gw.base_url}/api/virtual-keys/{created['id']}/status",
                          headers=gw.admin_headers()).json()  # fmt: skip
    assert "0.02" in json.dumps(status), status


async def test_curated_group_endpoint(
    gateway_factory: Callable[..., GatewayServer], upstream: ToolServerProcess
) -> None:
    groups = {"readonly": ["tools__echo", "tools__whoami", "tools__delete_everything"]}
    gw = start(gateway_factory, upstream.url, groups=groups)
    key = gw.key("dev")
    async with session(gw.base_url + "/mcp/readonly", key) as client:
        listed = await client.list_tools()
        assert [t.name for t in listed.tools] == ["tools__echo", "tools__whoami"]
        with pytest.raises(Exception, match="unknown tool 'tools__add'"):
            await client.call_tool("tools__add", {"a": 1, "b": 1})
    (row,) = wait_for_calls(gw, 1, key="dev")
    assert row["endpoint"] == "/mcp/readonly" and row["outcome"] == "denied"
    with httpx.Client(timeout=10) as http:
        resp = http.post(gw.base_url + "/mcp/nope", json={}, headers={"x-api-key": key})
        assert resp.status_code == 404 and "readonly" in resp.json()["error"]["message"]
        anonymous = http.post(gw.base_url + "/mcp/nope", json={})
        assert anonymous.status_code == 401 and "readonly" not in anonymous.text


def _initialize(http: httpx.Client, url: str, key: str) -> str:
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}}  # fmt: skip
    resp = http.post(url, json=body, headers=_headers(key))
    assert resp.status_code == 200, resp.text
    return resp.headers["mcp-session-id"]


def _headers(key: str, sid: str | None = None) -> dict[str, str]:
    out = {"authorization": f"Bearer {key}", "accept": "application/json, text/event-stream",
           "mcp-protocol-version": "2025-11-25"}  # fmt: skip
    return {**out, "mcp-session-id": sid} if sid else out


def test_a_session_belongs_to_the_key_that_opened_it(
    gateway_factory: Callable[..., GatewayServer], upstream: ToolServerProcess
) -> None:
    gw = start(gateway_factory, upstream.url)
    mine, theirs = gw.key("dev"), gw.key("other")
    url = gw.base_url + "/mcp"
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    with httpx.Client(timeout=10) as http:
        sid = _initialize(http, url, mine)
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert http.post(url, json=note, headers=_headers(mine, sid)).status_code == 202
        stolen = http.post(url, json=listing, headers=_headers(theirs, sid))
        assert stolen.status_code == 404, stolen.text
        own = http.post(url, json=listing, headers=_headers(mine, sid))
        assert own.status_code == 200 and "tools__echo" in own.text
