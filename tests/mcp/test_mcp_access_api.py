"""Tool access managed through ``/api/mcp-access``: groups and rules for keys, teams and
customers made with the admin API, applied at once and kept across a restart."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from conftest import GatewayServer, start_gateway
from mcp_harness import ToolServerProcess, session, tool_server, wait_for
from upstream_mock import MockUpstream

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def upstream() -> Iterator[ToolServerProcess]:
    server = tool_server()
    try:
        yield server
    finally:
        server.kill()


def _api(gw: GatewayServer, method: str, path: str, body: Any = None) -> httpx.Response:
    with httpx.Client(timeout=10) as http:
        return http.request(method, f"{gw.base_url}/api{path}", json=body,
                            headers=gw.admin_headers())  # fmt: skip


async def _names(gw: GatewayServer, key: str, path: str = "/mcp") -> list[str]:
    async with session(gw.base_url + path, key) as client:
        return [t.name for t in (await client.list_tools()).tools]


async def test_rules_for_api_made_teams_and_customers(
    gateway_factory: Callable[..., GatewayServer],
    upstream: ToolServerProcess,
    mock_upstream: MockUpstream,
) -> None:
    config = {"mcp": {"servers": {"tools": {"url": upstream.url}},
                      "groups": {"maths": ["tools__add"]}}}  # fmt: skip
    gw = gateway_factory(config)
    wait_for(gw, "tools", "up")
    customer = _api(gw, "POST", "/customers", {"name": "acme"}).json()
    team = _api(gw, "POST", "/teams", {"name": "platform", "customer_id": customer["id"]}).json()
    key = str(gw.create_key("member", team_id=team["id"])["key"])
    async with session(gw.base_url + "/mcp", key) as client:
        with pytest.raises(MCPError, match="denied by default"):
            await client.list_tools()
    doc = {"groups": {"talk": ["tools__echo", "tools__whoami"]},
           "access": {"teams": {"platform": {"groups": ["talk", "maths"]}},
                      "customers": {"acme": {"deny": ["tools__whoami"]}}}}  # fmt: skip
    put = _api(gw, "PUT", "/mcp-access", doc)
    assert put.status_code == 200, put.text
    assert await _names(gw, key) == ["tools__add", "tools__echo"]
    assert await _names(gw, key, "/mcp/talk") == ["tools__echo"]
    shown = _api(gw, "GET", "/mcp-access").json()
    assert shown["config"]["groups"] == {"maths": ["tools__add"]}
    assert shown["stored"]["groups"] == {"talk": ["tools__echo", "tools__whoami"]}
    bad = _api(gw, "PUT", "/mcp-access", {"access": {"keys": {"x": {"groups": ["nope"]}}}})
    assert bad.status_code == 400 and "nope" in bad.text
    clash = _api(gw, "PUT", "/mcp-access", {"groups": {"maths": ["tools__echo"]}})
    assert clash.status_code == 400 and "config file" in clash.text
    assert await _names(gw, key) == ["tools__add", "tools__echo"]  # refused PUTs change nothing
    gw.stop()
    again = start_gateway(mock_upstream, gw.config_path.parent, config)  # same database
    try:
        wait_for(again, "tools", "up")
        assert await _names(again, key) == ["tools__add", "tools__echo"]
    finally:
        again.stop()
