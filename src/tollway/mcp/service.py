"""The MCP gateway's long-lived parts, built and started with the other services.

Servers come from the config (``mcp.servers``, read-only at run time) and from the admin
API (``/api/mcp-servers``, stored in the database and started again at the next start).
"""

from __future__ import annotations

import json
import logging

from pydantic import ValidationError

from tollway.config import Config
from tollway.errors import InvalidRequest, NotFound, PermissionDenied
from tollway.mcp.calllog import ToolCallLog
from tollway.mcp.gateway import Authenticate, MCPGateway
from tollway.mcp.settings import (
    AccessConfig,
    AccessRule,
    MCPServerConfig,
    StoredAccess,
    check_server_name,
)
from tollway.observability.metrics import Metrics
from tollway.pipeline.admit import Admission
from tollway.pipeline.registry import Registry
from tollway.storage.base import Store

log = logging.getLogger("tollway.mcp")
SETTING = "mcp_servers"
ACCESS_SETTING = "mcp_access"


class MCPService:
    """``mcp = MCPService(...); await mcp.start(); mcp.gateway(scope, receive, send)``."""

    def __init__(
        self, config: Config, store: Store, registry: Registry, authenticate: Authenticate,
        admission: Admission, metrics: Metrics,
    ) -> None:  # fmt: skip
        self.store = store
        self.calls = ToolCallLog(
            store, metrics, flush_interval=config.logging.flush_interval_ms / 1000,
            queue_size=config.logging.queue_size, retention_days=config.logging.retention_days,
        )  # fmt: skip
        self.gateway = MCPGateway(
            config.mcp, registry=registry, authenticate=authenticate, admission=admission,
            calls=self.calls, log_content=config.logging.content,
        )  # fmt: skip
        metrics.gauge("tollway_mcp_upstreams_up", "MCP upstream servers connected", self._up)

    def _up(self) -> float:
        return sum(u.state == "up" for u in self.gateway.upstreams.values())

    async def _stored(self) -> dict[str, MCPServerConfig]:
        raw = await self.store.get_setting(SETTING)
        if not raw:
            return {}
        return {n: MCPServerConfig.model_validate(c) for n, c in json.loads(raw).items()}

    async def _save(self, servers: dict[str, MCPServerConfig]) -> None:
        doc = {n: c.model_dump(mode="json", exclude_defaults=True) for n, c in servers.items()}
        await self.store.put_setting(SETTING, json.dumps(doc))

    async def stored_access(self) -> StoredAccess:
        raw = await self.store.get_setting(ACCESS_SETTING)
        return StoredAccess.model_validate_json(raw) if raw else StoredAccess()

    async def put_access(self, doc: dict[str, object]) -> StoredAccess:
        """Replace the API's groups and rules (the config's stay); applied at once."""
        try:
            stored = StoredAccess.model_validate(doc)
            stored.check(self.gateway.config)
        except (ValueError, ValidationError) as exc:
            raise InvalidRequest(f"MCP access: {_first_error(exc)}") from None
        await self.store.put_setting(ACCESS_SETTING, stored.model_dump_json())
        await self.gateway.set_access(stored)
        return stored

    async def start(self) -> None:
        stored = await self.stored_access()
        try:
            stored.check(self.gateway.config)
        except ValueError as exc:  # the config changed under it: fail closed, say so
            log.error("stored MCP access rules ignored: %s", exc)
            stored = StoredAccess(access=_deny_all(stored))
        await self.gateway.set_access(stored)
        await self.gateway.start(await self._stored())
        self.calls.start()

    async def stop(self) -> None:
        await self.gateway.stop()
        await self.calls.stop()

    async def put_server(self, name: str, doc: dict[str, object]) -> bool:
        """Add or replace a server declared through the API; True when it is new."""
        try:
            check_server_name(name)
            cfg = MCPServerConfig.model_validate(doc)
        except (ValueError, ValidationError) as exc:
            raise InvalidRequest(f"MCP server {name!r}: {_first_error(exc)}") from None
        if self.gateway.sources.get(name) == "config":
            raise PermissionDenied(f"MCP server {name!r} is declared in the config file")
        stored = await self._stored()
        new = name not in stored
        stored[name] = cfg
        await self._save(stored)
        if name in self.gateway.upstreams:
            await self.gateway.remove_server(name)
        self.gateway.add_server(name, cfg, "api")
        return new

    async def delete_server(self, name: str) -> None:
        if self.gateway.sources.get(name) == "config":
            raise PermissionDenied(f"MCP server {name!r} is declared in the config file")
        stored = await self._stored()
        if name not in stored:
            raise NotFound(f"no MCP server {name!r}")
        del stored[name]
        await self._save(stored)
        await self.gateway.remove_server(name)


def _deny_all(stored: StoredAccess) -> AccessConfig:
    """Rules that name a missing group: every entity they covered gets nothing."""

    def closed(rules: dict[str, AccessRule]) -> dict[str, AccessRule]:
        return {n: AccessRule(groups=["<unresolvable stored rules>"]) for n in rules}

    a = stored.access
    return AccessConfig(keys=closed(a.keys), teams=closed(a.teams), customers=closed(a.customers))


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"{where}: {err['msg']}" if where else str(err["msg"])
    return str(exc)
