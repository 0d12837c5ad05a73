"""Governed entities: customers, teams, virtual keys and their provider configs.

These are the records the store keeps and the admin API accepts; field names follow the
ones Bifrost users know (``budgets``, ``rate_limit``, ``provider_configs``).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tollway.config import Budget, ContentMode, ProviderGrant, RateLimit, SessionBudget

KEY_PREFIX = "tw-"
EntityKind = Literal["customer", "team", "virtual_key"]


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def generate_key() -> str:
    """A virtual key: ``tw-`` + 32 random bytes, url-safe base64 (43 characters)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """SHA-256 of the key. Keys carry 256 random bits, so a slow KDF adds nothing."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_hint(key: str) -> str:
    return f"{key[:7]}...{key[-4:]}"


class _Entity(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    budgets: list[Budget] = Field(default_factory=list)
    rate_limit: RateLimit | None = None
    managed_by_config: bool = False
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="after")
    def _unique_budget_windows(self) -> _Entity:
        seen = [b.reset_duration for b in self.budgets]
        if len(seen) != len(set(seen)):
            raise ValueError("budgets: each reset_duration may appear once per owner")
        return self


class CustomerRecord(_Entity):
    kind: Literal["customer"] = "customer"


class TeamRecord(_Entity):
    kind: Literal["team"] = "team"
    customer_id: str | None = None


class KeyRecord(_Entity):
    kind: Literal["virtual_key"] = "virtual_key"
    key_hash: str
    key_hint: str
    team_id: str | None = None
    customer_id: str | None = None
    provider_configs: list[ProviderGrant] = Field(default_factory=list)
    session_budget: SessionBudget | None = None
    is_active: bool = True
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    log_content: bool | None = None
    content: ContentMode | None = None  # wins over log_content

    @model_validator(mode="after")
    def _one_owner(self) -> KeyRecord:
        if self.team_id and self.customer_id:
            raise ValueError("a virtual key belongs to a team or a customer, never both")
        return self

    def usable(self, now: datetime) -> str | None:
        """None when the key may be used, else why not (shown to the developer)."""
        if self.revoked_at is not None:
            return "this virtual key has been revoked"
        if not self.is_active:
            return "this virtual key is disabled (is_active is false)"
        if self.expires_at is not None and now >= self.expires_at:
            return f"this virtual key expired at {self.expires_at.isoformat()}"
        return None

    def public(self) -> dict[str, object]:
        """What the admin API shows: never the hash."""
        return self.model_dump(mode="json", exclude={"key_hash"})


AnyEntity = CustomerRecord | TeamRecord | KeyRecord


E = TypeVar("E", bound=_Entity)
# Fields whose bad values are set aside (with a warning) rather than making the whole row
# unreadable: a budget or a limit, never an allowlist or an owner.
_SALVAGEABLE = ("budgets", "rate_limit", "session_budget")


def salvage(model: type[E], doc: dict[str, Any]) -> tuple[E | None, list[str]]:
    """Read a stored row back: the record (None when unreadable) and what was set aside.

    A row written before validation was strict, or by hand, may hold a budget such as
    ``max_limit: "abc"``; that budget is dropped and reported, and every other budget
    and limit of the owner still holds, so one bad value cannot take a team down.
    """
    problems: list[str] = []
    doc = dict(doc)
    for _ in range(64):
        try:
            return model.model_validate(doc), problems
        except ValidationError as exc:
            errors = exc.errors()
        err = errors[0]
        loc, where = err["loc"], ".".join(str(p) for p in err["loc"])
        problems.append(f"{where}: {err['msg']}")
        if not _set_aside(doc, loc):
            return None, problems
    return None, problems


def _set_aside(doc: dict[str, Any], loc: tuple[int | str, ...]) -> bool:
    if loc and loc[0] == "provider_configs" and len(loc) > 3 and loc[2] in _SALVAGEABLE:
        grants = doc.get("provider_configs")
        if isinstance(grants, list) and isinstance(loc[1], int) and loc[1] < len(grants):
            grant = dict(grants[loc[1]])
            if _drop(grant, loc[2:]):
                doc["provider_configs"] = [*grants[: loc[1]], grant, *grants[loc[1] + 1 :]]
                return True
        return False
    return bool(loc) and loc[0] in _SALVAGEABLE and _drop(doc, loc)


def _drop(doc: dict[str, Any], loc: tuple[int | str, ...]) -> bool:
    field = str(loc[0])
    value = doc.get(field)
    if field == "budgets" and isinstance(value, list) and len(loc) > 1:
        index = loc[1]
        if isinstance(index, int) and index < len(value):
            doc[field] = value[:index] + value[index + 1 :]
            return True
    if field in doc:
        doc[field] = [] if field == "budgets" else None
        return True
    return False
