"""Upstreams: credentials held by the gateway (never shown), reconnects after a crash,
tools of a dead upstream reported unavailable, list changes passed on, the admin API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from conftest import GatewayServer, free_port
from mcp_harness import (
    UPSTREAM_TOKEN,
    ToolServerProcess,
    servers,
    session,
    texts,
    tool_server,
    wait_for,
)

pytestmark = pytest.mark.timeout(180)
ACCESS = {"keys": {"dev": {"allow": ["tools__*"]}}}
HEADER_SECRET = "x-header-secret-value-42"


def _start(factory: Callable[..., GatewayServer], server: dict[str, Any], **env: str
           ) -> GatewayServer:  # fmt: skip
    config = {"mcp": {"servers": {"tools": {"health_interval_s": 0.5, **server}},
                      "access": ACCESS}}  # fmt: skip
    return factory(config, env=env)


def _no_secret_in(gw: GatewayServer, *secrets: str) -> None:
    with httpx.Client(timeout=10) as http:
        shown = http.get(f"{gw.base_url}/api/mcp-servers", headers=gw.admin_headers()).text
        config = http.get(f"{gw.base_url}/api/openapi.json", headers=gw.admin_headers()).text
    for secret in secrets:
        assert secret not in shown and secret not in config


async def test_bearer_and_headers_are_held_by_the_gateway(
    gateway_factory: Callable[..., GatewayServer],
) -> None:
    up = tool_server("--token", UPSTREAM_TOKEN)
    try:
        gw = _start(gateway_factory, {"url": up.url, "bearer": "env.UPSTREAM_TOKEN",
                                      "headers": {"X-Api-Key": HEADER_SECRET}},
                    UPSTREAM_TOKEN=UPSTREAM_TOKEN)  # fmt: skip
        health = wait_for(gw, "tools", "up")
        assert health["auth"] == "bearer" and health["bearer"] == "env.UPSTREAM_TOKEN"
        assert health["headers"] == ["X-Api-Key"]
        async with session(gw.base_url + "/mcp", gw.key("dev")) as client:
            who = await client.call_tool("tools__whoami", {})
        assert texts(who) == ["credential=bearer headers=authorization,x-api-key"]
        _no_secret_in(gw, UPSTREAM_TOKEN, HEADER_SECRET)
    finally:
        up.kill()


async def test_a_wrong_credential_never_shows_up_in_errors(
    gateway_factory: Callable[..., GatewayServer],
) -> None:
    wrong = "wrong-upstream-token-0987"
    up = tool_server("--token", UPSTREAM_TOKEN)
    try:
        gw = _start(gateway_factory, {"url": up.url, "bearer": wrong})
        health = wait_for(gw, "tools", "down")
        assert health["last_error"] and wrong not in health["last_error"]
        assert health["bearer"] == "<redacted>"
        async with session(gw.base_url + "/mcp", gw.key("dev")) as client:
            with pytest.raises(MCPError) as err:
                await client.list_tools()  # nothing ever listed: the error says why
            message = err.value.error.message
            assert "no MCP tools match what virtual key dev may use" in message
            assert "MCP servers not connected: tools (down: " in message
            assert wrong not in message
        _no_secret_in(gw, wrong)
        assert wrong not in gw.logs()
    finally:
        up.kill()


async def test_oauth_client_credentials(gateway_factory: Callable[..., GatewayServer]) -> None:
    up = tool_server("--oauth", "gw-client:oauth-secret-5555")
    try:
        oauth = {"token_url": f"http://127.0.0.1:{up.port}/token", "client_id": "gw-client",
                 "client_secret": "env.OAUTH_SECRET", "scope": "tools"}  # fmt: skip
        gw = _start(gateway_factory, {"url": up.url, "oauth": oauth},
                    OAUTH_SECRET="oauth-secret-5555")  # fmt: skip
        health = wait_for(gw, "tools", "up")
        assert health["auth"] == "oauth_client_credentials"
        assert health["oauth"]["client_secret"] == "env.OAUTH_SECRET"
        async with session(gw.base_url + "/mcp", gw.key("dev")) as client:
            who = await client.call_tool("tools__whoami", {})
        assert texts(who)[0].startswith("credential=oauth ")
        _no_secret_in(gw, "oauth-secret-5555", "oauth-")
    finally:
        up.kill()


async def _wait_listing(client: Any, want: Callable[[list[types.Tool]], bool]) -> list[types.Tool]:
    tools: list[types.Tool] = []
    for _ in range(300):
        tools = (await client.list_tools()).tools
        if want(tools):
            return tools
        await asyncio.sleep(0.1)
    pytest.fail(f"the listing never changed as expected: {[t.name for t in tools]}")


async def test_a_dead_upstream_is_unavailable_then_reconnects(
    gateway_factory: Callable[..., GatewayServer],
) -> None:
    up = ToolServerProcess(free_port()).start()
    try:
        gw = _start(gateway_factory, {"url": up.url})
        wait_for(gw, "tools", "up")
        notes: list[Any] = []
        async with session(gw.base_url + "/mcp", gw.key("dev"), on_message=notes.append) as c:
            assert not (await c.call_tool("tools__echo", {"text": "a"})).is_error
            up.kill()
            down = wait_for(gw, "tools", "down")
            assert down["failures"] >= 1 and down["tools"], down  # last known tools kept
            tools = await _wait_listing(c, lambda ts: all("[unavailable" in (t.description or "")
                                                          for t in ts))  # fmt: skip
            assert "tools__echo" in [t.name for t in tools]
            refused = await c.call_tool("tools__echo", {"text": "b"})
            assert refused.is_error and "MCP server tools is unavailable" in texts(refused)[0]
            up.start()  # same port: the gateway's back-off finds it again
            wait_for(gw, "tools", "up")
            await _wait_listing(c, lambda ts: not any("[unavailable" in (t.description or "")
                                                      for t in ts))  # fmt: skip
            again = await c.call_tool("tools__echo", {"text": "c"})
            assert texts(again) == ["echo: c"]
        assert any(isinstance(n, types.ToolListChangedNotification) for n in notes), notes
    finally:
        up.kill()


async def test_list_changes_are_passed_on(gateway_factory: Callable[..., GatewayServer]) -> None:
    up = tool_server()
    try:
        gw = _start(gateway_factory, {"url": up.url})
        wait_for(gw, "tools", "up")
        changed = asyncio.Event()

        def on_message(message: Any) -> None:
            if isinstance(message, types.ToolListChangedNotification):
                changed.set()

        async with session(gw.base_url + "/mcp", gw.key("dev"), on_message=on_message) as c:
            assert "tools__grown" not in [t.name for t in (await c.list_tools()).tools]
            await c.call_tool("tools__grow", {})
            await asyncio.wait_for(changed.wait(), 20)
            tools = await _wait_listing(c, lambda ts: "tools__grown" in [t.name for t in ts])
            assert [t.name for t in tools] == sorted(t.name for t in tools)
            assert texts(await c.call_tool("tools__grown", {})) == ["grown ran"]
    finally:
        up.kill()


def test_servers_declared_through_the_admin_api(
    gateway_factory: Callable[..., GatewayServer],
) -> None:
    up = tool_server()
    try:
        gw = gateway_factory({"mcp": {"servers": {"fixed": {"command": "true"}}}})
        api, headers = f"{gw.base_url}/api/mcp-servers", gw.admin_headers()
        with httpx.Client(timeout=10) as http:
            made = http.put(f"{api}/live", json={"url": up.url}, headers=headers)
            assert made.status_code == 201, made.text
            assert made.json()["source"] == "api"
            assert wait_for(gw, "live", "up")["tools"]
            assert http.put(f"{api}/live", json={"url": up.url}, headers=headers).status_code == 200
            fixed = http.put(f"{api}/fixed", json={"url": up.url}, headers=headers)
            assert fixed.status_code == 403 and "config file" in fixed.text
            bad = http.put(f"{api}/live", json={"url": "ftp://x"}, headers=headers)
            assert bad.status_code == 400 and "http://" in bad.text
            bad_name = http.put(f"{api}/Bad_Name", json={"url": up.url}, headers=headers)
            assert bad_name.status_code == 400
            assert http.put(f"{api}/x", json={"url": up.url}).status_code == 401
            assert sorted(servers(gw)) == ["fixed", "live"]
            assert http.delete(f"{api}/live", headers=headers).status_code == 204
            assert sorted(servers(gw)) == ["fixed"]
            assert http.get(f"{api}/live", headers=headers).status_code == 404
            assert http.delete(f"{api}/fixed", headers=headers).status_code == 403
        assert json.dumps(servers(gw)["fixed"]["args"]) == "[]"
    finally:
        up.kill()
