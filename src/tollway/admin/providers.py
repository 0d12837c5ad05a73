"""Provider configuration: read (never the key values) and replace at run time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from tollway.admin.schemas import ProviderOut, ok
from tollway.config import ProviderConfig

if TYPE_CHECKING:
    from tollway.services import Services


def redacted(name: str, pc: ProviderConfig, kind: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "base_url": pc.base_url,
        "timeout_s": pc.timeout_s,
        "models": pc.models,
        "keys": [
            {"name": k.name, "weight": k.weight,
             "value": k.value if k.value.startswith("env.") else "<redacted>"}
            for k in pc.keys
        ],
    }  # fmt: skip


def provider_routes(services: Services) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["providers"])

    @router.get("/providers", response_model=None, responses=ok(ProviderOut, many=True))
    async def list_providers() -> list[dict[str, Any]]:
        cfg = services.config
        return [redacted(n, p, cfg.provider_type(n)) for n, p in cfg.providers.items()]

    @router.put("/providers", response_model=None, responses=ok(ProviderOut, many=True))
    async def put_providers(body: dict[str, ProviderConfig]) -> list[dict[str, Any]]:
        """Replace every provider; stored, and applied to new requests at once."""
        before = await list_providers()
        await services.replace_providers(body)
        cfg = services.config
        after = [redacted(n, p, cfg.provider_type(n)) for n, p in cfg.providers.items()]
        await services.audit.admin_change("admin-api", "replace", "providers", "*", before, after)
        return after

    return router
