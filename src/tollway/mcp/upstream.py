"""One upstream MCP server: a client session kept connected, its tools, its health.

``Upstream.run()`` is a task that never gives up: it connects (Streamable HTTP or
stdio), lists the tools, pings every ``health_interval_s``, and on any failure marks the
server down, keeps its last known tools (shown as unavailable, not silently dropped) and
reconnects with exponential back-off (0.5 s doubling to 30 s, with jitter). A
``notifications/tools/list_changed`` from the upstream re-lists its tools. Credentials
are resolved here and every error message is scrubbed of them before it is kept.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import httpx2
import mcp_types as types
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.session import IncomingMessage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tollway.config import resolve_secret
from tollway.errors import UpstreamError
from tollway.mcp.oauth import ClientCredentialsAuth
from tollway.mcp.settings import MCPServerConfig

log = logging.getLogger("tollway.mcp")

State = Literal["connecting", "up", "down", "stopped"]
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
PING_TIMEOUT_S = 10.0


class ToolUnavailable(UpstreamError):
    """The upstream that serves a tool is not connected right now."""

    status = 503


@dataclass(frozen=True, slots=True)
class Health:
    state: State
    since: float
    last_error: str | None
    failures: int
    tools: int


def backoff(failures: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after ``failures`` consecutive failures (>= 1): 0.5, 1, 2 ... 30."""
    base = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** max(failures - 1, 0))
    return float(base * (0.5 + rng() / 2))


class Upstream:
    """``up = Upstream("files", cfg, on_change)``; run ``up.run()`` as a task."""

    def __init__(
        self, name: str, cfg: MCPServerConfig, on_change: Callable[[], Awaitable[None]]
    ) -> None:
        self.name = name
        self.cfg = cfg
        self.on_change = on_change
        self.tools: list[types.Tool] = []
        self.listed_at: float | None = None
        self.state: State = "connecting"
        self.since = time.time()
        self.last_error: str | None = None
        self.failures = 0
        self.session: ClientSession | None = None
        self._headers = {k: resolve_secret(v) for k, v in cfg.headers.items()}
        if cfg.bearer:
            self._headers["Authorization"] = f"Bearer {resolve_secret(cfg.bearer)}"
        self._env = {k: resolve_secret(v) for k, v in cfg.env.items()}
        self._auth = None
        if cfg.oauth is not None:
            o = cfg.oauth
            secret = resolve_secret(o.client_secret)
            self._auth = ClientCredentialsAuth(o.token_url, o.client_id, secret, o.scope)
        self._broken = anyio.Event()
        self._relist = anyio.Event()

    def secrets(self) -> list[str]:
        found = [*self._headers.values(), *self._env.values()]
        found += [v.removeprefix("Bearer ") for v in self._headers.values()]
        if self._auth is not None:
            found += [self._auth.client_secret, self._auth.token or ""]
        return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets():
            text = text.replace(secret, "[redacted]")
        return text

    def health(self) -> Health:
        return Health(self.state, self.since, self.last_error, self.failures, len(self.tools))

    async def _set_state(self, state: State, error: str | None = None) -> None:
        changed = state != self.state
        self.state, self.last_error = state, error if error is not None else self.last_error
        if changed:
            self.since = time.time()
            await self.on_change()

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self._connect_and_serve()
                    error = "connection closed"
                except Exception as exc:  # the outermost layer of this upstream's task
                    error = self.redact(_describe(exc))
                self.session = None
                self.failures += 1
                log.warning("MCP upstream %s is down (%s); reconnecting", self.name, error)
                await self._set_state("down", error)
                await anyio.sleep(backoff(self.failures))
        finally:
            self.session = None
            self.state = "stopped"

    async def _connect_and_serve(self) -> None:
        async with self._transport() as (read, write), ClientSession(
            read, write, message_handler=self._on_message
        ) as session:  # fmt: skip
            with anyio.fail_after(self.cfg.timeout_s):
                await session.initialize()
                await self._list(session)
            self.session, self.failures, self.last_error = session, 0, None
            self._broken = anyio.Event()
            await self._set_state("up")
            log.info("MCP upstream %s is up with %d tools", self.name, len(self.tools))
            await self._watch(session)

    async def _watch(self, session: ClientSession) -> None:
        while not self._broken.is_set():
            with anyio.move_on_after(self.cfg.health_interval_s):
                await self._relist_or_break()
            if self._relist.is_set():
                self._relist = anyio.Event()
                with anyio.fail_after(self.cfg.timeout_s):
                    await self._list(session)
                await self.on_change()
                continue
            if self._broken.is_set():
                break
            with anyio.fail_after(PING_TIMEOUT_S):
                await session.send_ping()
        raise UpstreamError(self.last_error or "the connection broke")

    async def _relist_or_break(self) -> None:
        async with anyio.create_task_group() as tg:

            async def wait(event: anyio.Event) -> None:
                await event.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(wait, self._relist)
            tg.start_soon(wait, self._broken)

    async def _list(self, session: ClientSession) -> None:
        tools: list[types.Tool] = []
        cursor: str | None = None
        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            tools += page.tools
            cursor = page.next_cursor
            if not cursor:
                break
        self.tools, self.listed_at = tools, time.time()

    async def _on_message(self, message: IncomingMessage) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self._relist.set()
        elif isinstance(message, Exception):  # the transport failed under the session
            self.last_error = self.redact(_describe(message))
            self._broken.set()

    @asynccontextmanager
    async def _transport(self) -> AsyncIterator[Any]:
        async with AsyncExitStack() as stack:
            if self.cfg.url is not None:
                client = httpx2.AsyncClient(
                    headers=self._headers, auth=self._auth,
                    timeout=httpx2.Timeout(30, read=max(self.cfg.timeout_s, 30)),
                )  # fmt: skip
                await stack.enter_async_context(client)
                streams = await stack.enter_async_context(
                    streamable_http_client(self.cfg.url, http_client=client)
                )
            else:
                params = StdioServerParameters(
                    command=self.cfg.command or "", args=self.cfg.args, env=self._env,
                    cwd=self.cfg.cwd,
                )  # fmt: skip
                streams = await stack.enter_async_context(stdio_client(params))
            yield streams

    async def call(self, tool: str, arguments: dict[str, Any] | None) -> types.CallToolResult:
        """Call ``tool``; transport failures mark the connection broken and raise."""
        session = self.session
        if session is None or self.state != "up":
            raise ToolUnavailable(
                f"MCP server {self.name} is unavailable ({self.last_error or self.state}); "
                "the gateway is reconnecting, try again shortly"
            )
        try:
            with anyio.fail_after(self.cfg.timeout_s):
                return await session.call_tool(tool, arguments)
        except MCPError:
            raise
        except TimeoutError:
            raise UpstreamError(
                f"MCP server {self.name} did not answer {tool} within {self.cfg.timeout_s:g} s"
            ) from None
        except Exception as exc:  # the SDK's transport errors vary; one boundary here
            error = self.redact(_describe(exc))
            self.last_error = error
            self._broken.set()
            raise UpstreamError(f"MCP server {self.name} failed: {error}") from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]
