"""Admin API: session timelines, the audit log (verify, entries, public key), tool policy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Body, Query

from tollway.audit import store as sql
from tollway.audit.signing import public_pem, stored_public
from tollway.audit.verify import verify_store
from tollway.errors import NotFound

if TYPE_CHECKING:
    from tollway.services import Services

MAX_ENTRIES = 5000


def audit_routes(services: Services) -> APIRouter:
    router = APIRouter(prefix="/api")

    @router.get("/sessions", tags=["sessions"])
    async def list_sessions(
        key: str | None = None, limit: int = Query(50, ge=1, le=1000)
    ) -> list[dict[str, Any]]:
        """Agent sessions, newest first: requests, cost, actions and denials of each."""
        await services.audit.flush()
        return await sql.sessions(services.store, key, limit)

    @router.get("/sessions/{session_id}", tags=["sessions"])
    async def get_session(session_id: str) -> dict[str, Any]:
        """One session's timeline: requests (cost, tokens) and agent actions in time order."""
        await services.audit.flush()
        doc = await sql.session(services.store, session_id)
        if doc is None:
            raise NotFound(f"no session {session_id!r}")
        return doc

    @router.get("/audit/verify", tags=["audit"])
    async def verify() -> dict[str, Any]:
        """Check the whole hash chain and every signed checkpoint."""
        await services.audit.flush()
        return await verify_store(services.store)

    @router.get("/audit/entries", tags=["audit"])
    async def entries(
        since: int = Query(0, ge=0), limit: int = Query(1000, ge=1, le=MAX_ENTRIES),
        kind: str | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Entries after sequence number ``since``, oldest first (``kind``: a prefix)."""
        await services.audit.flush()
        out: list[dict[str, Any]] = []
        async for entry in sql.entries(services.store, since, kind):
            out.append(entry.public())
            if len(out) >= limit:
                break
        return out

    @router.get("/audit/public-key", tags=["audit"])
    async def public_key() -> dict[str, Any]:
        """The checkpoint signing key's public half (PEM), to verify elsewhere."""
        key = await stored_public(services.store)
        if key is None:
            raise NotFound("no audit signing key yet (it is made on the first start)")
        signer = services.audit.chain.signer
        return {"key_id": signer.key_id if signer else None, "pem": public_pem(key)}

    @router.get("/tool-policy", tags=["tool policy"])
    async def get_policy() -> dict[str, Any]:
        """The tool policy in force, and whether it was stored through this API."""
        book = services.policy
        return {"stored": book.stored, "policy": book.policy.model_dump(mode="json")}

    @router.put("/tool-policy", tags=["tool policy"])
    async def put_policy(body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        """Replace the tool policy (the ``tool_policy:`` document); applied to the next hook
        call. A 422 names the field that is wrong, e.g. ``tool_policy.rules.0.action``."""
        before, after = await services.policy.replace(services.store, body)
        await services.audit.admin_change("admin-api", "replace", "tool_policy", "*",
                                          before.model_dump(mode="json"),
                                          after.model_dump(mode="json"))  # fmt: skip
        return {"stored": True, "policy": after.model_dump(mode="json")}

    return router
