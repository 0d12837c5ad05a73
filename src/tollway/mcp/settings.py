"""The ``mcp:`` section of the config: upstream MCP servers, tool groups and who may use what.

Tool patterns are globs (``fnmatch``, case-sensitive) over the gateway's tool name
``<server>__<tool>``, e.g. ``files__read_*`` or ``git__*``.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_SERVER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,23}$")
_GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
_DURATION = re.compile(r"^[1-9][0-9]*(m|h|d|w|M|Q|Y)$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_secret(value: str) -> str:
    from tollway.config import resolve_secret

    resolve_secret(value)  # an unset env.NAME fails at start, not on the first call
    return value


class OAuthClientCredentials(_Model):
    """OAuth 2.0 client credentials grant: the gateway fetches and refreshes the token."""

    token_url: str
    client_id: str
    client_secret: str = Field(repr=False)
    scope: str | None = None

    @field_validator("client_secret")
    @classmethod
    def _secret(cls, v: str) -> str:
        return check_secret(v)


class MCPServerConfig(_Model):
    """One upstream: ``url`` (Streamable HTTP) or ``command`` (stdio), never both."""

    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    bearer: str | None = Field(default=None, repr=False)
    oauth: OAuthClientCredentials | None = None
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, repr=False)
    cwd: str | None = None
    price_per_call: Decimal = Field(default=Decimal(0), ge=0)
    timeout_s: float = Field(default=120, gt=0)
    health_interval_s: float = Field(default=10, gt=0)

    @model_validator(mode="after")
    def _one_transport(self) -> MCPServerConfig:
        if (self.url is None) == (self.command is None):
            raise ValueError("an MCP server has `url` (Streamable HTTP) or `command` (stdio)")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        if self.command is not None and (self.headers or self.bearer or self.oauth):
            raise ValueError("headers, bearer and oauth apply to `url` servers; stdio takes `env`")
        if self.bearer and self.oauth:
            raise ValueError("use `bearer` or `oauth`, not both")
        for value in [*self.headers.values(), *self.env.values(), *filter(None, [self.bearer])]:
            check_secret(value)
        return self

    @property
    def transport(self) -> Literal["http", "stdio"]:
        return "http" if self.url is not None else "stdio"


class AccessRule(_Model):
    """What one key, team or customer may use: allowed globs, denied globs, groups."""

    allow: list[str] = Field(default_factory=list)
    deny: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)


class AccessConfig(_Model):
    """Rules by the entity's name. Deny by default: no rule that allows a tool, no tool."""

    keys: dict[str, AccessRule] = Field(default_factory=dict)
    teams: dict[str, AccessRule] = Field(default_factory=dict)
    customers: dict[str, AccessRule] = Field(default_factory=dict)


class ToolRateLimit(_Model):
    calls: int = Field(gt=0)
    per: str = "1m"

    @field_validator("per")
    @classmethod
    def _duration(cls, v: str) -> str:
        if not _DURATION.match(v):
            raise ValueError(f"{v!r} is not a duration like 1m, 1h, 1d")
        return v


class MCPConfig(_Model):
    client_name: str = Field(default="tollway", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    servers: dict[str, MCPServerConfig] = Field(default_factory=dict)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    access: AccessConfig = Field(default_factory=AccessConfig)
    rate_limit: ToolRateLimit | None = None  # tool calls per virtual key

    @field_validator("servers")
    @classmethod
    def _server_names(cls, v: dict[str, MCPServerConfig]) -> dict[str, MCPServerConfig]:
        for name in v:
            check_server_name(name)
        return v

    @model_validator(mode="after")
    def _known_groups(self) -> MCPConfig:
        for name in self.groups:
            if not _GROUP_NAME.match(name):
                raise ValueError(f"group name {name!r}: letters, digits, _ and -, up to 40")
        for kind, rules in (("keys", self.access.keys), ("teams", self.access.teams),
                            ("customers", self.access.customers)):  # fmt: skip
            for owner, rule in rules.items():
                missing = [g for g in rule.groups if g not in self.groups]
                if missing:
                    raise ValueError(f"access.{kind}.{owner}: unknown group(s) {missing}")
        return self


class StoredAccess(_Model):
    """What ``PUT /api/mcp-access`` stores: groups and rules added to the config's."""

    groups: dict[str, list[str]] = Field(default_factory=dict)
    access: AccessConfig = Field(default_factory=AccessConfig)

    def check(self, config: MCPConfig) -> None:
        """Raise ValueError when a group clashes with the config's or a rule names none."""
        clash = sorted(set(self.groups) & set(config.groups))
        if clash:
            raise ValueError(f"groups {clash} are declared in the config file")
        MCPConfig(groups={**config.groups, **self.groups}, access=self.access)


def check_server_name(name: str) -> str:
    if not _SERVER_NAME.match(name):
        raise ValueError(
            f"MCP server name {name!r}: lower-case letters, digits and -, up to 24 characters"
        )
    return name
