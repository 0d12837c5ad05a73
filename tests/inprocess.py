"""Run the gateway in-process (ASGI transport) on a temporary SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tollway.admin.ops import EntityOps, KeyInput
from tollway.app import build_app
from tollway.config import parse_config
from tollway.services import Services
from tollway.storage import open_store

ADMIN = "test-admin-token"
PRICED_SIMULATED = "providers: {simulated: {simulated: {price_as: anthropic}}}"


@dataclass
class Running:
    services: Services
    client: httpx.AsyncClient
    admin: dict[str, str]

    async def key(self, name: str = "alice", **fields: Any) -> str:
        """Create a virtual key; returns its secret."""
        ops = EntityOps(self.services.store)
        _record, secret = await ops.create("virtual_key", KeyInput(name=name, **fields))
        await self.services.registry.refresh()
        assert secret is not None
        return secret


@asynccontextmanager
async def running(tmp_path: Path, config_text: str = "") -> AsyncIterator[Running]:
    # Billed at Anthropic's prices so that budgets have something to count; the simulated
    # provider alone costs nothing (tests/pipeline/test_simulated_cost.py).
    config = parse_config(config_text or PRICED_SIMULATED)
    services = Services(
        config, open_store(f"sqlite:///{tmp_path / 'gw.db'}"), journal=tmp_path / "gw.db.journal"
    )
    services.admin_token = ADMIN
    await services.start()
    app = build_app(services)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield Running(services, client, {"authorization": f"Bearer {ADMIN}"})
    finally:
        await services.stop()
