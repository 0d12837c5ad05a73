"""The configuration file model, loading and validation.

A YAML or JSON file is validated at start-up; an error names the field and the line.
A string ``env.NAME`` anywhere a secret is expected is read from the environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from tollway.audit.policy import ToolPolicy
from tollway.audit.settings import AuditConfig
from tollway.errors import ConfigError
from tollway.limits import Count, Money, Weight
from tollway.mcp.settings import MCPConfig
from tollway.providers.catalog import PROVIDER_TYPES, SPECS
from tollway.routing.settings import RoutingConfig

_DURATION = re.compile(r"^[1-9][0-9]*(m|h|d|w|M|Q|Y)$")
KNOWN_PROVIDER_TYPES = PROVIDER_TYPES
ENV_PROVIDERS = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
VIRTUAL_KEY_PREFIX = "tw-"


def is_virtual_key(secret: str) -> bool:
    """A Tollway virtual key (``tw-...``): a client's credential, never a provider key."""
    return secret.startswith(VIRTUAL_KEY_PREFIX)


_PROVIDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_name(value: str) -> str | None:
    """``env.NAME`` -> ``NAME``; None for a literal value. ValueError for a bad name."""
    if not value.startswith("env."):
        return None
    name = value[4:]
    if not _ENV_NAME.match(name):
        raise ValueError(f"{value!r}: env. must be followed by an environment variable name")
    return name


def resolve_secret(value: str, environ: Mapping[str, str] | None = None) -> str:
    """``env.NAME`` -> the value of the environment variable NAME; anything else as is."""
    name = env_name(value)
    if name is not None:
        env = os.environ if environ is None else environ
        if name not in env:
            raise ValueError(f"environment variable {name} is not set")
        return env[name]
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ProviderKey(_Model):
    name: str = "default"
    # The key itself; for bedrock with access_key_id, the secret access key; for vertex,
    # an OAuth access token or a service-account JSON document.
    value: str = Field(repr=False, min_length=1)
    weight: Weight = 1.0
    # AWS SigV4 (bedrock): the access key id and, for temporary credentials, the token.
    access_key_id: str | None = Field(default=None, min_length=1, max_length=256)
    session_token: str | None = Field(default=None, repr=False, min_length=1)

    @field_validator("value", "access_key_id", "session_token")
    @classmethod
    def _env(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return None
        env_name(v)
        environ = (info.context or {}).get("environ")
        if environ is not None:
            resolve_secret(v, environ)  # a config file fails at start, not on a request
        return v

    def references(self) -> list[tuple[str, str]]:
        """(field, value) of every field that may be an ``env.NAME`` reference."""
        fields = [("value", self.value), ("access_key_id", self.access_key_id),
                  ("session_token", self.session_token)]  # fmt: skip
        return [(f, v) for f, v in fields if v is not None]

    def secret(self) -> str:
        return resolve_secret(self.value)


class SimulatedSettings(_Model):
    latency_ms: float = Field(default=0, ge=0, le=600_000)
    chunk_delay_ms: float = Field(default=0, ge=0, le=60_000)
    output_tokens: int = Field(default=12, ge=1, le=1_000_000)
    # Replies cost nothing unless this names a provider whose prices they are billed at
    # (to try budgets without an upstream); the records stay marked simulated either way.
    price_as: Literal["anthropic", "openai", "gemini"] | None = None


_BETA = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
_FIELD = re.compile(r"^[a-z_][a-z0-9_]{0,63}(\.[a-z_][a-z0-9_]{0,63})?$")
_REGION = re.compile(r"^[a-z0-9-]{1,40}$")


class ProviderConfig(_Model):
    # One of providers/catalog.py's types; None: the provider's name is its type.
    type: str | None = Field(default=None, max_length=64)
    base_url: str | None = None
    keys: list[ProviderKey] = Field(default_factory=list)
    # bedrock and vertex: the cloud region (bedrock: us-east-1 by default; vertex: global).
    region: str | None = None
    project: str | None = Field(default=None, max_length=64)  # vertex: the GCP project id
    # vertex: a service-account JSON file (config file only); keys may carry JSON or tokens.
    credentials_file: str | None = Field(default=None, max_length=4096)
    api_version: str | None = Field(default=None, max_length=64)  # azure_openai
    # Model name -> the id this provider knows it by (a Bedrock model id or inference
    # profile, a Vertex model version, an Azure deployment name).
    model_map: dict[str, str] = Field(default_factory=dict, max_length=1000)
    # bedrock: prefix model ids with this cross-region inference profile (us, eu, apac, global).
    inference_profile: str | None = Field(default=None, max_length=16)
    # Betas and body fields: added to the provider type's accepted betas, or dropped for
    # this provider (the drop is logged with the request's provider and key).
    allow_betas: list[str] = Field(default_factory=list, max_length=100)
    drop_betas: list[str] = Field(default_factory=list, max_length=100)
    drop_fields: list[str] = Field(default_factory=list, max_length=100)
    # idle: longest silence between two chunks
    timeout_s: float = Field(default=600, gt=0, le=86_400)
    connect_timeout_s: float = Field(default=10, gt=0)
    first_byte_timeout_s: float = Field(default=600, gt=0)  # until the response head
    total_timeout_s: float = Field(default=3600, gt=0)  # the whole exchange
    max_response_mb: float = Field(default=32, gt=0)  # decoded; larger answers fail with 502
    models: list[str] = Field(default_factory=list)
    simulated: SimulatedSettings = Field(default_factory=SimulatedSettings)

    @field_validator("type")
    @classmethod
    def _type(cls, v: str | None) -> str | None:
        if v is not None and v not in SPECS:
            raise ValueError(f"unknown provider type {v[:64]!r}: use one of {', '.join(SPECS)}")
        return v

    @field_validator("region", "inference_profile")
    @classmethod
    def _region(cls, v: str | None) -> str | None:
        if v is not None and not _REGION.match(v):
            raise ValueError(f"{v[:64]!r} is not a region name (letters, digits and '-')")
        return v

    @field_validator("allow_betas", "drop_betas")
    @classmethod
    def _betas(cls, v: list[str]) -> list[str]:
        for beta in v:
            if not _BETA.match(beta):
                raise ValueError(f"{beta[:100]!r} is not an anthropic-beta value")
        return v

    @field_validator("drop_fields")
    @classmethod
    def _fields(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _FIELD.match(name):
                raise ValueError(f"{name[:100]!r}: name a top-level field or field.key")
        return v

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return None
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname or len(v) > 2048:
            raise ValueError(f"{v[:100]!r} is not an http(s) URL with a host")
        try:
            parts.port  # noqa: B018 (a bad port raises here)
        except ValueError:
            raise ValueError(f"{v[:100]!r} has an invalid port") from None
        return v


class Budget(_Model):
    max_limit: Money
    reset_duration: str
    calendar_aligned: bool = False
    # When what is left cannot cover a request's worst case, lower its output cap to what
    # it affords (at least 1,024 tokens) instead of refusing it.
    shrink_to_fit: bool = True

    @field_validator("reset_duration")
    @classmethod
    def _duration(cls, v: str) -> str:
        if not _DURATION.match(v):
            raise ValueError(
                f"{v!r} is not a duration: use a positive count and one of "
                "m h d w M Q Y (e.g. 30m, 1d, 1M)"
            )
        return v


class SessionBudget(_Model):
    max_limit: Money
    shrink_to_fit: bool = True


class RateLimit(_Model):
    request_max_limit: Count | None = None
    request_reset_duration: str = "1m"
    token_max_limit: Count | None = None
    token_reset_duration: str = "1m"
    concurrency_max: Count | None = None

    @field_validator("request_reset_duration", "token_reset_duration")
    @classmethod
    def _duration(cls, v: str) -> str:
        return Budget._duration(v)


class ProviderGrant(_Model):
    provider: str
    weight: Weight = 1.0
    allowed_models: list[str] = Field(default_factory=lambda: ["*"])
    budgets: list[Budget] = Field(default_factory=list)
    rate_limit: RateLimit | None = None


class Customer(_Model):
    name: str
    budgets: list[Budget] = Field(default_factory=list)
    rate_limit: RateLimit | None = None


class Team(_Model):
    name: str
    customer: str | None = None
    budgets: list[Budget] = Field(default_factory=list)
    rate_limit: RateLimit | None = None


# Whether a key's request and response bodies are stored: ``required`` never drops one
# (past the memory bound they spill to disk), ``best_effort`` may drop once the spool is
# full too, ``off`` stores none.
ContentMode = Literal["required", "best_effort", "off"]


class VirtualKey(_Model):
    name: str
    value: str | None = Field(default=None, repr=False)
    team: str | None = None
    customer: str | None = None
    provider_configs: list[ProviderGrant] = Field(default_factory=list)
    budgets: list[Budget] = Field(default_factory=list)
    rate_limit: RateLimit | None = None
    session_budget: SessionBudget | None = None
    is_active: bool = True
    expires_at: datetime | None = None
    log_content: bool | None = None
    content: ContentMode | None = None

    @field_validator("value")
    @classmethod
    def _env(cls, v: str | None) -> str | None:
        if v is None:
            return None
        secret = resolve_secret(v)
        if not is_virtual_key(secret) or len(secret) < 35:
            raise ValueError("a declared key must look like tw- followed by 32+ characters")
        return v


class LoggingConfig(_Model):
    content: bool | ContentMode = True  # default for keys: true is best_effort, false off
    spool_dir: str | None = None  # bodies past content_queue_mb; default: beside the database
    spool_mb: float = Field(default=1024, ge=0)  # best-effort bodies spilled at most
    retention_days: int = Field(default=30, ge=0)
    queue_size: int = Field(default=100_000, ge=100)
    content_queue_mb: float = Field(default=32, gt=0)
    flush_interval_ms: int = Field(default=250, ge=10)


class GatewayConfig(_Model):
    timezone: str = "UTC"
    refuse_unpriced_models: bool = False
    # The price (fields as under `pricing:`) charged for a model no price layer knows,
    # marked estimated; without it such a model is refused under a budget.
    fallback_price: dict[str, Any] | None = None
    max_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    # Request body bytes all requests may hold in memory at once (503 past it).
    max_body_bytes_in_flight: int = Field(default=512 * 1024 * 1024, gt=0)
    # How long a request body may take to arrive (408 past it).
    body_timeout_s: float = Field(default=60, gt=0, le=3600)
    # How long a request past a concurrency limit waits for a slot before its 429.
    concurrency_wait_s: float = Field(default=5, ge=0, le=600)
    # How long a request whose client went away keeps its upstream to read the usage.
    disconnect_grace_s: float = Field(default=20, ge=0, le=600)
    # env.NAME references the admin API may use beyond those of this file (vault.py)
    env_allowlist: list[str] = Field(default_factory=list)


class ServerConfig(_Model):
    """The HTTP server's connection limits (see tollway/connections.py)."""

    header_timeout_s: float = Field(default=10, gt=0)
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    max_connections: int | None = Field(default=None, ge=1)  # None: from the open-files limit
    keep_alive_s: int = Field(default=5, ge=1)
    keep_alive_max_requests: int = Field(default=1000, ge=1)
    backlog: int = Field(default=2048, ge=1)


class Config(_Model):
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    customers: list[Customer] = Field(default_factory=list)
    teams: list[Team] = Field(default_factory=list)
    virtual_keys: list[VirtualKey] = Field(default_factory=list)
    # Model -> price fields, as PUT /api/pricing takes them (validated by the price book).
    pricing: dict[str, dict[str, Any]] = Field(default_factory=dict)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    mcp: MCPConfig = Field(default_factory=MCPConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    tool_policy: ToolPolicy = Field(default_factory=ToolPolicy)

    @field_validator("providers")
    @classmethod
    def _provider_types(cls, v: dict[str, ProviderConfig]) -> dict[str, ProviderConfig]:
        for name, p in v.items():
            if not _PROVIDER_NAME.match(name):
                raise ValueError(
                    f"provider name {name[:64]!r}: use letters, digits, '-', '_' or '.' "
                    "(1-64 characters, no '/': models are named provider/model)"
                )
            if p.type is None and name not in KNOWN_PROVIDER_TYPES:
                raise ValueError(
                    f"provider {name!r} needs a type: one of {', '.join(KNOWN_PROVIDER_TYPES)} "
                    "(use type: openai for any OpenAI-compatible endpoint)"
                )
            kind = p.type or name
            spec = SPECS[kind]
            if spec.base_url is None and kind != "simulated" and not p.base_url:
                raise ValueError(f"provider {name!r} (type {kind}) needs a base_url")
            if kind == "vertex" and not p.project:
                raise ValueError(f"provider {name!r} (type vertex) needs a project")
        return v

    def provider_type(self, name: str) -> str:
        p = self.providers[name]
        return p.type or name


def _compose_lines(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[(*path, key.value)] = key.start_mark.line + 1
            _compose_lines(value, (*path, key.value), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _compose_lines(item, (*path, i), out)


def _line_of(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def parse_config(
    text: str, source: str = "<config>", environ: Mapping[str, str] | None = None
) -> Config:
    """Validate config text (YAML or JSON); ConfigError names the field and line.

    Every ``env.NAME`` it holds must be set in ``environ`` (default: the process's)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text) if node is not None else {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML/JSON: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _compose_lines(node, (), lines)
    try:
        env = os.environ if environ is None else environ
        context = {"environ": env, "providers": known_providers(data, env)}
        return Config.model_validate(data, context=context)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
            field = ".".join(str(p) for p in loc) or "(top level)"
            line = _line_of(loc, lines)
            where = f"line {line}" if line else "?"
            problems.append(f"{source}:{where}: {field}: {err['msg']}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems)) from None


def known_providers(data: Mapping[str, Any], environ: Mapping[str, str]) -> frozenset[str]:
    """The providers a config will have: its own, those the environment adds, or
    ``simulated`` when there are none (as ``with_env_providers`` does); routing targets
    are checked against them."""
    declared = data.get("providers")
    names = set(declared) if isinstance(declared, dict) else set()
    names |= {n for n, var in ENV_PROVIDERS.items()
              if environ.get(var) and not is_virtual_key(environ[var])}  # fmt: skip
    return frozenset(names or {"simulated"})


def read_config(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """The file alone (an empty config without one); no providers from the environment."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from exc
    return parse_config(text, str(p), environ)


def load_config(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Load the file (or zero config), then add providers found in the environment."""
    env = os.environ if environ is None else environ
    return with_env_providers(read_config(path, env), env)


def with_env_providers(config: Config, environ: Mapping[str, str]) -> Config:
    """Zero config: providers from the usual env vars; ``simulated`` when there are none.

    A variable holding a Tollway virtual key (``export ANTHROPIC_API_KEY=tw-...`` for a
    client in the same shell) is not a provider key and is left out.
    """
    providers = dict(config.providers)
    for name, var in ENV_PROVIDERS.items():
        value = environ.get(var)
        if name not in providers and value and not is_virtual_key(value):
            providers[name] = ProviderConfig(keys=[ProviderKey(name="env", value=f"env.{var}")])
    if not providers:
        providers["simulated"] = ProviderConfig(type="simulated")
    return config.model_copy(update={"providers": providers})


def price_providers(config: Config) -> dict[str, tuple[str, str | None]]:
    """Each provider's type and base URL, for mapping it to its maintained prices."""
    out: dict[str, tuple[str, str | None]] = {}
    for name, pc in config.providers.items():
        kind = config.provider_type(name)
        if kind == "simulated" and pc.simulated.price_as:
            kind = pc.simulated.price_as  # billed as if that provider had answered
        out[name] = (kind, pc.base_url)
    return out
