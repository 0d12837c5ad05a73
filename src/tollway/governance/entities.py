"""Governed entities: customers, teams, virtual keys and their provider configs.

These are the records the store keeps and the admin API accepts; field names follow the
ones Bifrost users know (``budgets``, ``rate_limit``, ``provider_configs``).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
