"""The ``mcp`` SDK client against the real gateway's /mcp, with loopback MCP upstreams."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from conftest import GatewayServer
from mcp_harness import (
    ALL_TOOLS,
    EXPECTED,
    LONG_NAME,
    SHORT,
    ToolServerProcess,
    session,
    stdio_server_config,
    texts,
    tool_server,
    wait_for,
    wait_for_calls,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def upstream() -> Iterator[ToolServerProcess]:
    server = tool_server()
    try:
        yield server
    finally:
        server.kill()


def mcp_config(url: str, **extra: Any) -> dict[str, Any]:
    return {"mcp": {"servers": {"tools": {"url": url, "health_interval_s": 0.5}}, **extra}}


@pytest.fixture
def gateway(
    gateway_factory: Callable[..., GatewayServer], upstream: ToolServerProcess
) -> GatewayServer:
    access = {"keys": {"dev": {"allow": ["tools__*"], "deny": ["tools__delete_everything"]}}}
    gw = gateway_factory(mcp_config(upstream.url, access=access))
    wait_for(gw, "tools", "up")
    return gw


async def test_lists_permitted_tools_sorted_and_calls_one(gateway: GatewayServer) -> None:
    key = gateway.key("dev")
    async with session(gateway.base_url + "/mcp", key) as client:
        listed = await client.list_tools()
        names = [t.name for t in listed.tools]
        assert names == sorted(EXPECTED)
        assert [t.name for t in (await client.list_tools()).tools] == names  # stable
        echo = next(t for t in listed.tools if t.name == "tools__echo")
        assert echo.description == "Repeat the text"
        assert echo.input_schema["properties"] == {"text": {"type": "string"}}
        result = await client.call_tool("tools__echo", {"text": "hello"})
        assert texts(result) == ["echo: hello"] and not result.is_error
        added = await client.call_tool("tools__add", {"a": 2, "b": 40})
        assert texts(added) == ["42"]
        assert len(SHORT) == 50 and len(f"mcp__tollway__{SHORT}") == 64
        long = await client.call_tool(SHORT, {})
        assert texts(long) == [f"{LONG_NAME} ran"]


async def test_denied_tool_is_not_callable(gateway: GatewayServer) -> None:
    key = gateway.key("dev")
    async with session(gateway.base_url + "/mcp", key) as client:
        for name in ("tools__delete_everything", "tools__nope", "delete_everything"):
            with pytest.raises(MCPError) as err:
                await client.call_tool(name, {})
            assert err.value.error.code == -32602
            assert f"unknown tool {name!r}" in err.value.error.message
    rows = wait_for_calls(gateway, 3, key="dev")
    assert {r["outcome"] for r in rows} == {"denied"}
    assert sorted(r["exposed_name"] for r in rows) == sorted(
        ["tools__delete_everything", "tools__nope", "delete_everything"]
    )


async def test_a_key_without_rules_gets_no_tools(gateway: GatewayServer) -> None:
    key = gateway.key("nobody")
    async with session(gateway.base_url + "/mcp", key) as client:
        with pytest.raises(MCPError) as err:
            await client.list_tools()
        assert "may use no MCP tools" in err.value.error.message
        with pytest.raises(MCPError):
            await client.call_tool("tools__echo", {"text": "x"})


def test_no_key_or_a_wrong_key_is_refused(gateway: GatewayServer) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    accept = {"accept": "application/json, text/event-stream"}
    with httpx.Client(timeout=10) as client:
        for headers in ({}, {"authorization": "Bearer tw-not-a-key"}):
            resp = client.post(gateway.base_url + "/mcp", json=body, headers={**accept, **headers})
            assert resp.status_code == 401, resp.text
            error = resp.json()["error"]
            assert error["code"] == -32001
            assert "virtual key" in error["message"]


async def test_tool_errors_pass_through(gateway: GatewayServer) -> None:
    key = gateway.key("dev")
    async with session(gateway.base_url + "/mcp", key) as client:
        failed = await client.call_tool("tools__fail", {})
        assert failed.is_error and texts(failed) == ["it failed"]
        with pytest.raises(MCPError):  # the upstream raises: a JSON-RPC error comes back
            await client.call_tool("tools__add", {"a": "x", "b": 1})
    rows = wait_for_calls(gateway, 2, key="dev")
    assert sorted(r["outcome"] for r in rows) == ["tool_error", "upstream_error"]


async def test_stdio_upstream(gateway_factory: Callable[..., GatewayServer]) -> None:
    access = {"keys": {"dev": {"allow": ["local__echo", "local__add"]}}}
    config = {"mcp": {"servers": {"local": stdio_server_config()}, "access": access}}
    gw = gateway_factory(config)
    health = wait_for(gw, "local", "up")
    assert health["transport"] == "stdio" and health["tools"] == sorted(ALL_TOOLS)
    async with session(gw.base_url + "/mcp", gw.key("dev")) as client:
        listed = await client.list_tools()
        assert [t.name for t in listed.tools] == ["local__add", "local__echo"]
        result = await client.call_tool("local__echo", {"text": "over stdio"})
        assert texts(result) == ["echo: over stdio"]
