"""The MCP gateway at ``/mcp`` and ``/mcp/<group>``: one server to clients, sessions upstream.

Built on the official ``mcp`` SDK: a low-level ``Server`` behind the SDK's Streamable
HTTP session manager faces the clients; one `Upstream` per configured server holds a
client session. Each HTTP request is authenticated with a virtual key before the SDK
sees it, and a session belongs to the key that opened it. ``tools/list`` and
``tools/call`` go through the same filter, so a tool a key may not see cannot be called.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import mcp_types as types
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError

from tollway.config import ContentMode
from tollway.errors import AuthenticationFailed, GatewayError, UpstreamError
from tollway.governance.entities import KeyRecord
from tollway.mcp.access import Policy, resolve
from tollway.mcp.calllog import ToolCallLog
from tollway.mcp.calls import CallGovernor, arguments_text, result_text
from tollway.mcp.catalog import Exposed, Listing, visible
from tollway.mcp.names import budget
from tollway.mcp.settings import AccessConfig, MCPConfig, MCPServerConfig, StoredAccess
from tollway.mcp.upstream import ToolUnavailable, Upstream
from tollway.pipeline.admit import Admission
from tollway.pipeline.asgi import Receive, Scope, Send, respond
from tollway.pipeline.registry import Registry
from tollway.storage.tool_calls import ToolCallRecord

log = logging.getLogger("tollway.mcp")
Authenticate = Callable[[Mapping[bytes, bytes], list[tuple[bytes, bytes]]], KeyRecord]
_SCOPE_KEY = "tollway.mcp"
MAX_SESSIONS = 10_000
NOT_PERMITTED = -32003  # JSON-RPC server error: the key may use no tools here


@dataclass(frozen=True, slots=True)
class Caller:
    key: KeyRecord
    group: str | None
    endpoint: str
    mcp_session: str | None
    agent_session: str | None


class _GatewayServer(Server[Any]):
    """The SDK's server, announcing ``tools.listChanged`` (we pass upstream changes on)."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True),
            experimental_capabilities,
            extensions,
        )


def _jsonrpc_error(message: str, code: int) -> bytes:
    doc = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    return json.dumps(doc).encode()


class MCPGateway:
    """``await gw.start(stored)``; ``await gw(scope, receive, send)``; ``await gw.stop()``."""

    def __init__(
        self, config: MCPConfig, *, registry: Registry, authenticate: Authenticate,
        admission: Admission, calls: ToolCallLog, log_content: bool | ContentMode,
    ) -> None:  # fmt: skip
        self.config = config
        self.registry = registry
        self.authenticate = authenticate
        self.governor = CallGovernor(admission, config.rate_limit)
        self.calls = calls
        self.log_content = log_content
        self.groups: dict[str, list[str]] = dict(config.groups)
        self.rules: list[AccessConfig] = [config.access]
        self.upstreams: dict[str, Upstream] = {}
        self.sources: dict[str, str] = {}  # server name -> "config" | "api"
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # One ServerSession per client session (any of its requests' reaches the connection's
        # standalone stream), least recently used first, bounded like the SDK's sessions.
        self._sessions: OrderedDict[str, ServerSession] = OrderedDict()
        self._server = _GatewayServer(
            "tollway", version="0.1.0", on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )  # fmt: skip
        self._manager: StreamableHTTPSessionManager | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self, stored: Mapping[str, MCPServerConfig]) -> None:
        self._manager = StreamableHTTPSessionManager(app=self._server)
        ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._runner = asyncio.create_task(self._run_manager(self._manager, ready),
                                           name="tollway-mcp-sessions")  # fmt: skip
        await ready.wait()
        for name, cfg in self.config.servers.items():
            self.add_server(name, cfg, "config")
        for name, cfg in stored.items():
            if name not in self.upstreams:
                self.add_server(name, cfg, "api")

    async def _run_manager(
        self, manager: StreamableHTTPSessionManager, ready: asyncio.Event
    ) -> None:
        async with manager.run():
            ready.set()
            await self._stopping.wait()

    async def stop(self) -> None:
        for name in list(self._tasks):
            await self.remove_server(name)
        self._stopping.set()
        if self._runner is not None:
            await self._runner
            self._runner = None

    def add_server(self, name: str, cfg: MCPServerConfig, source: str) -> None:
        upstream = Upstream(name, cfg, self._changed)
        self.upstreams[name] = upstream
        self.sources[name] = source
        self._tasks[name] = asyncio.create_task(upstream.run(), name=f"tollway-mcp-{name}")

    async def remove_server(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        self.upstreams.pop(name, None)
        self.sources.pop(name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._changed()

    async def _changed(self) -> None:
        """An upstream's tools or health changed: tell every connected client."""
        for sid, session in list(self._sessions.items()):
            try:
                await session.send_tool_list_changed()
            except Exception:  # a closed session must not stop the others
                self._sessions.pop(sid, None)

    # -- HTTP --------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        group = path.removeprefix("/mcp").strip("/") or None
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        try:
            key = self.authenticate(dict(headers), headers)
        except AuthenticationFailed as err:
            await respond(send, 401, _jsonrpc_error(err.message, -32001))
            return
        if group is not None and group not in self.groups:
            await respond(send, 404, _jsonrpc_error(f"no MCP endpoint {path}: "
                          f"tool groups are {sorted(self.groups)}", -32601))  # fmt: skip
            return
        found = dict(headers)
        scope = dict(scope)
        scope["user"] = AuthenticatedUser(AccessToken(token=key.id, client_id=key.id, scopes=[]))
        scope[_SCOPE_KEY] = Caller(
            key,
            group,
            path.rstrip("/") or "/mcp",
            (found.get(b"mcp-session-id") or b"").decode("latin-1") or None,
            (found.get(b"x-claude-code-session-id") or b"").decode("latin-1") or None,
        )
        if self._manager is None:
            await respond(send, 503, _jsonrpc_error("the MCP gateway is not started", -32603))
            return
        await self._manager.handle_request(scope, receive, send)

    # -- the view of one caller ----------------------------------------------------------

    def _caller(self, ctx: ServerRequestContext[Any]) -> Caller:
        request = ctx.request
        caller = request.scope.get(_SCOPE_KEY) if request is not None else None
        if not isinstance(caller, Caller):
            raise MCPError(code=-32001, message="no virtual key on this request")
        if caller.mcp_session is not None:
            self._sessions[caller.mcp_session] = ctx.session
            self._sessions.move_to_end(caller.mcp_session)
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return caller

    def policy(self, key: KeyRecord) -> Policy:
        snap = self.registry.snapshot
        team = snap.teams.get(key.team_id) if key.team_id else None
        customer_id = team.customer_id if team else key.customer_id
        customer = snap.customers.get(customer_id) if customer_id else None
        return resolve(self.rules, self.groups, key, team, customer)

    async def set_access(self, stored: StoredAccess) -> None:
        """Apply the admin API's groups and rules on top of the config's."""
        self.groups = {**self.config.groups, **stored.groups}
        self.rules = [self.config.access, stored.access]
        await self._changed()

    def listings(self) -> list[Listing]:
        return [Listing(name, up.tools, up.state == "up", up.last_error)
                for name, up in sorted(self.upstreams.items())]  # fmt: skip

    def tools_for(self, caller: Caller) -> tuple[Policy, list[Exposed]]:
        policy = self.policy(caller.key)
        globs = self.groups.get(caller.group) if caller.group else None
        group = tuple(globs) if globs is not None else None
        client = self.config.client_name + (f"-{caller.group}" if caller.group else "")
        return policy, visible(self.listings(), policy, group, budget(client))

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        caller = self._caller(ctx)
        policy, tools = self.tools_for(caller)
        if policy.problem is not None:
            log.warning("MCP access for key %s could not be resolved: %s", caller.key.name,
                        policy.problem)  # fmt: skip
            raise MCPError(code=NOT_PERMITTED, message=(
                f"no MCP tools for virtual key {caller.key.name}: its permissions could not "
                f"be resolved ({policy.problem}); ask your gateway admin"))  # fmt: skip
        if not tools:
            raise MCPError(code=NOT_PERMITTED, message=self._why_none(caller, policy))
        return types.ListToolsResult(tools=[t.definition for t in tools])

    def _why_none(self, caller: Caller, policy: Policy) -> str:
        """Zero tools is never a silent empty list: say why."""
        name = caller.key.name
        if not policy.allow:
            return (f"virtual key {name} may use no MCP tools (tools are denied by default); "
                    "ask your gateway admin to allow some under mcp.access")  # fmt: skip
        down = [f"{n} ({u.state}: {u.last_error or 'no answer yet'})"
                for n, u in sorted(self.upstreams.items()) if u.state != "up"]  # fmt: skip
        where = f" at {caller.endpoint}" if caller.group else ""
        text = f"no MCP tools{where} match what virtual key {name} may use"
        return text + (f"; MCP servers not connected: {', '.join(down)}" if down else "")

    # -- tools/call ----------------------------------------------------------------------

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        caller = self._caller(ctx)
        t0, started = time.perf_counter(), time.time()
        _, tools = self.tools_for(caller)
        target = next((t for t in tools if t.name == params.name), None)
        call = _Call(self, caller, params, target, t0, started)
        if target is None:
            call.record("denied", f"tool {params.name!r} is not offered to this key")
            raise MCPError(code=types.INVALID_PARAMS, message=(
                f"unknown tool {params.name!r}: no such tool, or this virtual key may not "
                "use it"))  # fmt: skip
        return await call.run(target)


def keeps_content(key: KeyRecord, default: bool | ContentMode) -> bool:
    """The request log's rule: the key's ``content``, else ``log_content``, else the default."""
    if key.content is not None:
        return key.content != "off"
    if key.log_content is not None:
        return key.log_content
    return default not in (False, "off")


class _Call:
    """One tools/call on its way through governance to the upstream and into the log."""

    def __init__(
        self, gw: MCPGateway, caller: Caller, params: types.CallToolRequestParams,
        target: Exposed | None, t0: float, started: float,
    ) -> None:  # fmt: skip
        self.gw, self.caller, self.params, self.target = gw, caller, params, target
        self.t0, self.started = t0, started
        self.cost = Decimal(0)

    async def run(self, target: Exposed) -> types.CallToolResult:
        upstream = self.gw.upstreams.get(target.server)
        if upstream is None or not target.up:
            why = upstream.last_error if upstream else "removed"
            return self.refused("unavailable", ToolUnavailable(
                f"MCP server {target.server} is unavailable ({why}); the gateway is "
                "reconnecting, try again shortly"))  # fmt: skip
        try:
            hold = self.gw.governor.admit(self.caller.key, upstream.cfg.price_per_call)
        except GatewayError as err:
            outcome = "rate_limited" if err.status == 429 else "budget"
            return self.refused(outcome, err)
        charged = False
        try:
            result = await upstream.call(target.tool, self.params.arguments)
            charged = True
        except MCPError as err:
            message = upstream.redact(err.message)
            self.record("upstream_error", message)
            raise MCPError(code=err.code, message=message) from None
        except UpstreamError as err:
            return self.refused("upstream_error", err)
        finally:
            self.cost = self.gw.governor.settle(hold, charged)
        self.record("tool_error" if result.is_error else "ok", None, result)
        return result

    def refused(self, outcome: str, err: GatewayError) -> types.CallToolResult:
        self.record(outcome, err.message)
        text = types.TextContent(type="text", text=f"tollway: {err.message}")
        return types.CallToolResult(content=[text], is_error=True)

    def record(self, outcome: str, error: str | None, result: types.CallToolResult | None = None
               ) -> None:  # fmt: skip
        key, target = self.caller.key, self.target
        snap = self.gw.registry.snapshot
        team = snap.teams.get(key.team_id) if key.team_id else None
        args = arguments_text(self.params.arguments)
        body = result_text(result) if result is not None else ""
        content = keeps_content(key, self.gw.log_content)
        self.gw.calls.add(ToolCallRecord(
            id=f"mcp_{uuid.uuid4().hex}", started_at=self.started,
            latency_ms=(time.perf_counter() - self.t0) * 1000,
            vk_id=key.id, vk_name=key.name, team_id=key.team_id,
            customer_id=team.customer_id if team else key.customer_id,
            mcp_session_id=self.caller.mcp_session, agent_session_id=self.caller.agent_session,
            endpoint=self.caller.endpoint, server=target.server if target else None,
            tool=target.tool if target else None, exposed_name=self.params.name,
            outcome=outcome, error_message=error,
            arguments=args if content else None, result=body if content and result else None,
            arguments_bytes=len(args.encode()), result_bytes=len(body.encode()), cost=self.cost,
        ))  # fmt: skip
