"""Entity operations shared by the admin API and the CLI (both go through the store)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tollway.config import Budget, ContentMode, ProviderGrant, RateLimit, SessionBudget
from tollway.errors import InvalidRequest, NotFound
from tollway.governance.entities import (
    CustomerRecord,
    KeyRecord,
    TeamRecord,
    generate_key,
    hash_key,
    key_hint,
    new_id,
    salvage,
)
from tollway.storage.base import Store

_RECORDS: dict[str, type[CustomerRecord] | type[TeamRecord] | type[KeyRecord]] = {
    "customer": CustomerRecord,
    "team": TeamRecord,
    "virtual_key": KeyRecord,
}
_ID_PREFIX = {"customer": "cus", "team": "team", "virtual_key": "vk"}
# (action, kind, entity id, before, after): the audit log's record of a change.
AdminAudit = Callable[[str, str, str, Any, Any], Awaitable[None]]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerInput(_Input):
    name: str | None = Field(default=None, min_length=1)
    budgets: list[Budget] | None = None
    rate_limit: RateLimit | None = None


class TeamInput(CustomerInput):
    customer_id: str | None = None


class KeyInput(TeamInput):
    team_id: str | None = None
    provider_configs: list[ProviderGrant] | None = None
    session_budget: SessionBudget | None = None
    is_active: bool | None = None
    expires_at: datetime | None = None
    log_content: bool | None = None
    content: ContentMode | None = None


class EntityOps:
    """``ops = EntityOps(store)``; every change bumps the store revision."""

    def __init__(self, store: Store, audit: AdminAudit | None = None) -> None:
        self.store = store
        self.audit = audit

    async def _audited(self, action: str, kind: str, before: Any, after: Any) -> None:
        if self.audit is not None:
            await self.audit(action, kind, (after or before).id, before, after)

    async def list(self, kind: str) -> list[Any]:
        """Readable rows only; a stored bad budget is set aside (the registry logs it)."""
        records = [salvage(_RECORDS[kind], d)[0] for d in await self.store.list_entities(kind)]
        return [r for r in records if r is not None]

    async def get(self, kind: str, entity_id: str) -> Any:
        doc = await self.store.get_entity(kind, entity_id)
        if doc is None:
            for d in await self.store.list_entities(kind):
                if d.get("name") == entity_id:
                    doc = d
                    break
        if doc is None:
            raise NotFound(f"no {kind.replace('_', ' ')} with id or name {entity_id!r}")
        record, problems = salvage(_RECORDS[kind], doc)
        if record is None:
            raise NotFound(f"the stored {kind.replace('_', ' ')} {entity_id!r} is unreadable: "
                           + "; ".join(problems))  # fmt: skip
        return record

    async def _check_refs(self, data: dict[str, Any]) -> None:
        for field, kind in (("team_id", "team"), ("customer_id", "customer")):
            ref = data.get(field)
            if ref and await self.store.get_entity(kind, ref) is None:
                raise InvalidRequest(f"{field}: no {kind} with id {ref!r}")

    async def _unique_name(self, kind: str, name: str, entity_id: str | None) -> None:
        for d in await self.store.list_entities(kind):
            if d.get("name") == name and d.get("id") != entity_id:
                raise InvalidRequest(f"name: a {kind.replace('_', ' ')} named {name!r} exists")

    async def create(self, kind: str, data: _Input) -> tuple[Any, str | None]:
        """Returns the record and, for a virtual key, its secret (shown once)."""
        fields = data.model_dump(exclude_none=True)
        if not fields.get("name"):
            raise InvalidRequest("name: a name is required")
        await self._check_refs(fields)
        await self._unique_name(kind, fields["name"], None)
        now = datetime.now(UTC)
        secret = None
        extra: dict[str, Any] = {}
        if kind == "virtual_key":
            secret = generate_key()
            extra = {"key_hash": hash_key(secret), "key_hint": key_hint(secret)}
        try:
            record = _RECORDS[kind].model_validate(
                {"id": new_id(_ID_PREFIX[kind]), "created_at": now, "updated_at": now,
                 **fields, **extra}
            )  # fmt: skip
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        await self.store.put_entity(kind, record.model_dump(mode="json"))
        await self._audited("create", kind, None, record)
        return record, secret

    async def update(self, kind: str, entity_id: str, data: _Input) -> Any:
        record = await self.get(kind, entity_id)
        fields = data.model_dump(exclude_unset=True)
        await self._check_refs(fields)
        if fields.get("name"):
            await self._unique_name(kind, fields["name"], record.id)
        doc = record.model_dump(mode="json")
        doc.update(data.model_dump(mode="json", exclude_unset=True))
        doc["updated_at"] = datetime.now(UTC).isoformat()
        try:
            updated = _RECORDS[kind].model_validate(doc)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        await self.store.put_entity(kind, updated.model_dump(mode="json"))
        await self._audited("update", kind, record, updated)
        return updated

    async def delete(self, kind: str, entity_id: str) -> None:
        record = await self.get(kind, entity_id)
        await self.store.delete_entity(kind, record.id)
        await self._audited("delete", kind, record, None)

    async def revoke_key(self, entity_id: str) -> KeyRecord:
        key: KeyRecord = await self.get("virtual_key", entity_id)
        now = datetime.now(UTC)
        revoked = key.model_copy(update={"revoked_at": now, "is_active": False, "updated_at": now})
        await self.store.put_entity("virtual_key", revoked.model_dump(mode="json"))
        await self._audited("revoke", "virtual_key", key, revoked)
        return revoked

    async def rotate_key(self, entity_id: str) -> tuple[KeyRecord, str]:
        """New secret, same id and counters."""
        key: KeyRecord = await self.get("virtual_key", entity_id)
        secret = generate_key()
        rotated = key.model_copy(update={"key_hash": hash_key(secret), "key_hint": key_hint(secret),
                                         "updated_at": datetime.now(UTC)})  # fmt: skip
        await self.store.put_entity("virtual_key", rotated.model_dump(mode="json"))
        await self._audited("rotate", "virtual_key", key, rotated)
        return rotated, secret
