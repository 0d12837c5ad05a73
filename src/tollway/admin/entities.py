"""CRUD for customers, teams and virtual keys."""

from __future__ import annotations

import functools
from enum import Enum
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Response

from tollway.admin.ops import CustomerInput, EntityOps, KeyInput, TeamInput
from tollway.admin.schemas import CustomerOut, KeyOut, KeyWithSecret, TeamOut, ok

if TYPE_CHECKING:
    from tollway.services import Services


def _public(record: Any) -> dict[str, Any]:
    doc: dict[str, Any] = record.model_dump(mode="json", exclude={"key_hash"})
    return doc


def entity_routes(services: Services) -> APIRouter:
    router = APIRouter(prefix="/api")
    ops = EntityOps(services.store, functools.partial(services.audit.admin_change, "admin-api"))

    async def changed() -> None:
        await services.registry.refresh()

    for kind, path, model, out in (
        ("customer", "customers", CustomerInput, CustomerOut),
        ("team", "teams", TeamInput, TeamOut),
    ):
        _crud(router, ops, (kind, path, model, out), changed)

    @router.post(
        "/virtual-keys",
        status_code=201,
        tags=["virtual keys"],
        response_model=None,
        responses=ok(KeyWithSecret, 201),
    )
    async def create_key(body: KeyInput) -> dict[str, Any]:
        """Create a key; the secret ``key`` is in this answer only."""
        record, secret = await ops.create("virtual_key", body)
        await changed()
        return {**_public(record), "key": secret}

    @router.get(
        "/virtual-keys", tags=["virtual keys"], response_model=None, responses=ok(KeyOut, many=True)
    )
    async def list_keys() -> list[dict[str, Any]]:
        return [_public(r) for r in await ops.list("virtual_key")]

    @router.get(
        "/virtual-keys/{key_id}", tags=["virtual keys"], response_model=None, responses=ok(KeyOut)
    )
    async def get_key(key_id: str) -> dict[str, Any]:
        return _public(await ops.get("virtual_key", key_id))

    @router.patch(
        "/virtual-keys/{key_id}", tags=["virtual keys"], response_model=None, responses=ok(KeyOut)
    )
    async def update_key(key_id: str, body: KeyInput) -> dict[str, Any]:
        record = await ops.update("virtual_key", key_id, body)
        await changed()
        return _public(record)

    @router.delete(
        "/virtual-keys/{key_id}", tags=["virtual keys"], response_model=None, responses=ok(KeyOut)
    )
    async def revoke_key(key_id: str) -> dict[str, Any]:
        """Revoke: the key stops working at once; its records and counters stay."""
        record = await ops.revoke_key(key_id)
        await changed()
        return _public(record)

    @router.post(
        "/virtual-keys/{key_id}/rotate",
        tags=["virtual keys"],
        response_model=None,
        responses=ok(KeyWithSecret),
    )
    async def rotate_key(key_id: str) -> dict[str, Any]:
        """A new secret for the same key id, budgets and counters."""
        record, secret = await ops.rotate_key(key_id)
        await changed()
        return {**_public(record), "key": secret}

    return router


def _crud(router: APIRouter, ops: EntityOps, what: tuple[Any, ...], changed: Any) -> None:
    kind, path, model, out = what
    tag: list[str | Enum] = [path]

    async def create(body: model) -> dict[str, Any]:  # type: ignore[valid-type]
        record, _ = await ops.create(kind, body)
        await changed()
        return _public(record)

    async def list_all() -> list[dict[str, Any]]:
        return [_public(r) for r in await ops.list(kind)]

    async def get_one(entity_id: str) -> dict[str, Any]:
        return _public(await ops.get(kind, entity_id))

    async def update(entity_id: str, body: model) -> dict[str, Any]:  # type: ignore[valid-type]
        record = await ops.update(kind, entity_id, body)
        await changed()
        return _public(record)

    async def delete(entity_id: str) -> Response:
        await ops.delete(kind, entity_id)
        await changed()
        return Response(status_code=204)

    # Annotations are strings under `from __future__ import annotations`; give FastAPI the
    # real input model for the generated handlers.
    create.__annotations__["body"] = model
    update.__annotations__["body"] = model
    router.add_api_route(f"/{path}", create, methods=["POST"], status_code=201, tags=tag,
                         name=f"create_{kind}", response_model=None,
                         responses=ok(out, 201))  # fmt: skip
    router.add_api_route(f"/{path}", list_all, methods=["GET"], tags=tag, name=f"list_{kind}",
                         response_model=None, responses=ok(out, many=True))  # fmt: skip
    router.add_api_route(f"/{path}/{{entity_id}}", get_one, methods=["GET"], tags=tag,
                         name=f"get_{kind}", response_model=None, responses=ok(out))  # fmt: skip
    for method in ("PATCH", "PUT"):
        router.add_api_route(f"/{path}/{{entity_id}}", update, methods=[method], tags=tag,
                             name=f"update_{kind}_{method.lower()}", response_model=None,
                             responses=ok(out))  # fmt: skip
    router.add_api_route(f"/{path}/{{entity_id}}", delete, methods=["DELETE"], tags=tag,
                         status_code=204, name=f"delete_{kind}")  # fmt: skip
