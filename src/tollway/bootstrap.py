"""Config as code: customers, teams and keys declared in the config file are created or
updated at start and marked ``managed_by_config``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from tollway.config import Config, resolve_secret
from tollway.errors import ConfigError
from tollway.governance.entities import (
    CustomerRecord,
    KeyRecord,
    TeamRecord,
    generate_key,
    hash_key,
    key_hint,
    new_id,
)
from tollway.storage.base import Store

log = logging.getLogger("tollway")


async def _by_name(store: Store, kind: str) -> dict[str, dict[str, Any]]:
    return {doc["name"]: doc for doc in await store.list_entities(kind)}


async def apply_declared(config: Config, store: Store) -> list[tuple[str, str]]:
    """Create or update declared entities; returns (name, secret) of keys generated now."""
    now = datetime.now(UTC)
    generated: list[tuple[str, str]] = []
    customers = await _by_name(store, "customer")
    for c in config.customers:
        old = customers.get(c.name)
        rec = CustomerRecord(
            id=old["id"] if old else new_id("cus"), name=c.name, budgets=c.budgets,
            rate_limit=c.rate_limit, managed_by_config=True,
            created_at=old["created_at"] if old else now, updated_at=now,
        )  # fmt: skip
        await store.put_entity("customer", rec.model_dump(mode="json"))
        customers[c.name] = rec.model_dump(mode="json")
    teams = await _by_name(store, "team")
    for t in config.teams:
        old = teams.get(t.name)
        customer_id = _ref(customers, t.customer, f"team {t.name!r}: customer")
        rec_t = TeamRecord(
            id=old["id"] if old else new_id("team"), name=t.name, customer_id=customer_id,
            budgets=t.budgets, rate_limit=t.rate_limit, managed_by_config=True,
            created_at=old["created_at"] if old else now, updated_at=now,
        )  # fmt: skip
        await store.put_entity("team", rec_t.model_dump(mode="json"))
        teams[t.name] = rec_t.model_dump(mode="json")
    keys = await _by_name(store, "virtual_key")
    for k in config.virtual_keys:
        old = keys.get(k.name)
        if k.value is not None:
            secret: str | None = resolve_secret(k.value)
        else:
            secret = None if old else generate_key()
            if secret is not None:
                generated.append((k.name, secret))
        rec_k = KeyRecord(
            id=old["id"] if old else new_id("vk"), name=k.name,
            key_hash=hash_key(secret) if secret else old["key_hash"],  # type: ignore[index]
            key_hint=key_hint(secret) if secret else old["key_hint"],  # type: ignore[index]
            team_id=_ref(teams, k.team, f"virtual key {k.name!r}: team"),
            customer_id=_ref(customers, k.customer, f"virtual key {k.name!r}: customer"),
            provider_configs=k.provider_configs, budgets=k.budgets, rate_limit=k.rate_limit,
            session_budget=k.session_budget, is_active=k.is_active, expires_at=k.expires_at,
            log_content=k.log_content, content=k.content, managed_by_config=True,
            created_at=old["created_at"] if old else now, updated_at=now,
        )  # fmt: skip
        await store.put_entity("virtual_key", rec_k.model_dump(mode="json"))
    for name, secret in generated:
        log.warning("declared virtual key %r created with key %s (shown once)", name, secret)
    return generated


def _ref(docs: dict[str, dict[str, Any]], name: str | None, what: str) -> str | None:
    if name is None:
        return None
    if name not in docs:
        raise ConfigError(f"{what} {name!r} is not declared and does not exist")
    return str(docs[name]["id"])
