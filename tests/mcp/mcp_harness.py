"""Shared pieces of the MCP tests: the loopback tool server as a process, an SDK client
session through the gateway, and waiting for an upstream's health."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.session import IncomingMessage
from mcp.client.streamable_http import streamable_http_client

from conftest import GatewayServer, free_port

TOOL_SERVER = Path(__file__).resolve().parent / "tool_server.py"
UPSTREAM_TOKEN = "upstream-bearer-s3cret-value"
LONG_NAME = "summarise_the_quarterly_revenue_report_for_every_region_now"
ALL_TOOLS = ["add", "delete_everything", "echo", "fail", "grow", LONG_NAME, "whoami"]
# Claude Code calls these mcp__tollway__<name>: 64 characters at most, so a name gets 50.
_LONG = f"tools__{LONG_NAME}"
SHORT = f"{_LONG[:41]}_{hashlib.sha256(_LONG.encode()).hexdigest()[:8]}"
# What a key allowed tools__* but denied tools__delete_everything sees.
EXPECTED = [f"tools__{t}" for t in ALL_TOOLS if t not in ("delete_everything", LONG_NAME)]
EXPECTED.append(SHORT)


@dataclass
class ToolServerProcess:
    port: int
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> ToolServerProcess:
        cmd = [sys.executable, str(TOOL_SERVER), "--port", str(self.port), *self.args]
        self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the tool server exited"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        pytest.fail("the tool server did not listen within 20 s")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


def tool_server(*args: str) -> ToolServerProcess:
    return ToolServerProcess(free_port(), list(args)).start()


def stdio_server_config() -> dict[str, Any]:
    return {"command": sys.executable, "args": [str(TOOL_SERVER), "--stdio"]}


def servers(gw: GatewayServer) -> dict[str, dict[str, Any]]:
    with httpx.Client(timeout=10) as client:
        resp = client.get(f"{gw.base_url}/api/mcp-servers", headers=gw.admin_headers())
    assert resp.status_code == 200, resp.text
    return {s["name"]: s for s in resp.json()}


def wait_for(gw: GatewayServer, name: str, state: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        seen = servers(gw).get(name, {})
        if seen.get("state") == state:
            return seen
        time.sleep(0.1)
    pytest.fail(f"MCP server {name} not {state} within {timeout} s: {seen}\n{gw.logs()}")


def tool_calls(gw: GatewayServer, **params: str) -> list[dict[str, Any]]:
    """The call log, once the writer has flushed (it writes every 250 ms)."""
    with httpx.Client(timeout=10) as client:
        resp = client.get(f"{gw.base_url}/api/mcp-tool-calls", params=params,
                          headers=gw.admin_headers())  # fmt: skip
    assert resp.status_code == 200, resp.text
    rows: list[dict[str, Any]] = resp.json()
    return rows


def wait_for_calls(gw: GatewayServer, count: int, **params: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = tool_calls(gw, **params)
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    pytest.fail(f"expected {count} logged tool calls, found {rows}")


@asynccontextmanager
async def session(
    url: str,
    key: str | None,
    on_message: Callable[[IncomingMessage], Any] | None = None,
    headers: dict[str, str] | None = None,
) -> AsyncIterator[ClientSession]:
    """An initialized SDK client session on ``url`` with ``key`` as its bearer."""
    sent = dict(headers or {})
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"

    async def handler(message: IncomingMessage) -> None:
        if on_message is not None:
            on_message(message)

    async with (
        httpx2.AsyncClient(headers=sent, timeout=httpx2.Timeout(30, read=60)) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write, message_handler=handler) as client,
    ):
        await client.initialize()
        yield client


def texts(result: Any) -> list[str]:
    return [c.text for c in result.content if getattr(c, "type", "") == "text"]
