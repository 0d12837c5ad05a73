"""Protocol versions, hostile input and concurrent calls against the real gateway's /mcp."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from conftest import GatewayServer
from mcp_harness import ToolServerProcess, session, texts, tool_server, wait_for, wait_for_calls

pytestmark = pytest.mark.timeout(120)
ACCESS = {"keys": {"dev": {"allow": ["tools__echo", "tools__add"]}}}
ACCEPT = {"accept": "application/json, text/event-stream"}


@pytest.fixture
def upstream() -> Iterator[ToolServerProcess]:
    server = tool_server()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def gateway(
    gateway_factory: Callable[..., GatewayServer], upstream: ToolServerProcess
) -> GatewayServer:
    servers = {"tools": {"url": upstream.url, "price_per_call": "0.01"}}
    gw = gateway_factory({"mcp": {"servers": servers, "access": ACCESS}})
    wait_for(gw, "tools", "up")
    return gw


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"])
def test_every_handshake_version_is_spoken(gateway: GatewayServer, version: str) -> None:
    key = gateway.key("dev")
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}}  # fmt: skip
    headers = {**ACCEPT, "authorization": f"Bearer {key}"}
    with httpx.Client(timeout=10) as http:
        resp = http.post(gateway.base_url + "/mcp", json=body, headers=headers)
    assert resp.status_code == 200, resp.text
    assert f'"protocolVersion":"{version}"' in resp.text
    assert '"tools":{"listChanged":true}' in resp.text


@pytest.mark.parametrize("mode", ["auto", "2026-07-28", "legacy"])
async def test_the_sdk_client_in_each_mode(gateway: GatewayServer, mode: str) -> None:
    key = gateway.key("dev")
    auth = {"Authorization": f"Bearer {key}"}
    async with (
        httpx2.AsyncClient(headers=auth, timeout=30) as http,
        Client(
            streamable_http_client(gateway.base_url + "/mcp", http_client=http), mode=mode
        ) as client,  # fmt: skip
    ):
        expected = "2025-11-25" if mode == "legacy" else "2026-07-28"
        assert client.protocol_version == expected
        listed = await client.list_tools()
        assert [t.name for t in listed.tools] == ["tools__add", "tools__echo"]
        result = await client.call_tool("tools__echo", {"text": mode})
        assert texts(result) == [f"echo: {mode}"]


def test_hostile_bodies_get_json_rpc_errors(gateway: GatewayServer) -> None:
    headers = {**ACCEPT, "authorization": f"Bearer {gateway.key('dev')}",
               "content-type": "application/json"}  # fmt: skip
    with httpx.Client(timeout=10) as http:
        for body in (b"{not json", b"[]", b'{"jsonrpc":"2.0"}', b"\xff\xfe", b"7"):
            resp = http.post(gateway.base_url + "/mcp", content=body, headers=headers)
            assert 400 <= resp.status_code < 500, (body, resp.status_code, resp.text)
            assert "error" in resp.json(), resp.text
        huge = http.post(gateway.base_url + "/mcp", content=b"[" + b"1," * 3_000_000 + b"1]",
                         headers=headers)  # fmt: skip
        assert huge.status_code == 413
        listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        stale = {**headers, "mcp-session-id": "x"}
        unknown = http.post(gateway.base_url + "/mcp", json=listing, headers=stale)
        assert unknown.status_code == 404
    assert gateway.process.poll() is None


async def test_concurrent_priced_calls_never_overspend(gateway: GatewayServer) -> None:
    created = gateway.create_key("dev", budgets=[{"max_limit": 0.05, "reset_duration": "1d"}])
    async with session(gateway.base_url + "/mcp", created["key"]) as client:
        results = await asyncio.gather(*(client.call_tool("tools__add", {"a": i, "b": 0})
                                         for i in range(20)))  # fmt: skip
    refused = [r for r in results if r.is_error]
    assert len(results) - len(refused) == 5  # $0.05 of budget, $0.01 a call
    assert all("budget exceeded" in texts(r)[0] for r in refused)
    rows = wait_for_calls(gateway, 20, key="dev")
    assert sum(r["outcome"] == "ok" for r in rows) == 5
    assert sorted({r["cost"] for r in rows}) == ["0", "0.01"]
