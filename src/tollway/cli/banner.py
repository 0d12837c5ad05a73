"""The start banner: where the gateway listens, which providers are live and where each
key came from (a variable's name, the config file, the admin API; never the secret)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from tollway.config import ENV_PROVIDERS, Config, ProviderKey, is_virtual_key
from tollway.provider_keys import crossed_env_message, crossed_message, usable_keys, variable_of


@dataclass(frozen=True)
class Startup:
    """What the banner reports. ``config`` holds the providers in effect: the stored ones
    when the admin API replaced them (``stored``), else the file's plus the environment's."""

    host: str
    port: int
    config: Config
    file_providers: frozenset[str] = frozenset()
    config_path: str | None = None
    stored: bool = False
    database: str = ""
    environ: Mapping[str, str] = field(default_factory=dict)
    admin_token: str | None = None  # shown on the first start only
    first_key: str | None = None  # the `default` key made on the first start, shown once

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def _source(s: Startup, provider: str, key: ProviderKey) -> str:
    var = variable_of(key)
    if s.stored:
        where = "set via the admin API"
        return f"${var} ({where})" if var else "the admin API (stored in the database)"
    if provider in s.file_providers:
        return f"${var} (named in {s.config_path})" if var else f"config file {s.config_path}"
    return f"${var} (environment)" if var else "environment"


def provider_lines(s: Startup) -> list[str]:
    """One line per provider: live or not, and the source of each key it will use."""
    width = max((len(n) for n in s.config.providers), default=0)
    lines = []
    for name, pc in s.config.providers.items():
        if s.config.provider_type(name) == "simulated":
            state, detail = "live", "built in: simulated replies, no key, no network"
        else:
            usable, _crossed = usable_keys(pc, s.environ)
            usable_names = {k.name for k in usable}
            sources = [f"key {k.name!r} from {_source(s, name, k)}"
                       for k in pc.keys if k.name in usable_names]  # fmt: skip
            state = "live" if usable else "NOT LIVE"
            detail = "; ".join(sources) if sources else "no usable key: requests to it fail"
        lines.append(f"    {name.ljust(width)}  {state.ljust(8)}  {detail}")
    return lines


def warnings(s: Startup) -> list[str]:
    """Provider keys refused because they hold a Tollway virtual key."""
    out: list[str] = []
    named: set[str] = set()
    for name, pc in s.config.providers.items():
        if s.config.provider_type(name) == "simulated":
            continue
        for key in usable_keys(pc, s.environ)[1]:
            out.append(crossed_message(name, key))
            named.add(variable_of(key) or "")
    for name, var in ENV_PROVIDERS.items():
        value = s.environ.get(var, "")
        if is_virtual_key(value) and var not in named and name not in s.config.providers:
            out.append(crossed_env_message(var))
    return out


def redact_url(url: str) -> str:
    """A database URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def banner(s: Startup) -> str:
    base = s.base_url
    lines = [f"Tollway gateway listening on {base}", "  providers:", *provider_lines(s)]
    lines += [f"  WARNING: {w}" for w in warnings(s)]
    if list(s.config.providers) == ["simulated"] and s.config_path is None:
        lines.append(
            "  NOTE: no provider key found (ANTHROPIC_API_KEY, OPENAI_API_KEY); the built-in "
            "'simulated' provider answers every model"
        )
    if s.database:
        lines.append(f"  database:  {redact_url(s.database)}")
    lines.append(f"  admin API: {base}/api (OpenAPI: {base}/api/openapi.json)")
    lines.append(f"  dashboard: {base}/ui (log in with the admin token)")
    if s.admin_token:
        lines.append(f"  admin token (shown once, stored beside the database): {s.admin_token}")
    if s.first_key:
        lines += ["", "First start: created the virtual key 'default' (shown once):"]
    else:
        lines += ["", "Point Claude Code at it with a virtual key (tollway keys create NAME):"]
    lines += [
        f"  export ANTHROPIC_BASE_URL={base}",
        f"  export ANTHROPIC_API_KEY={s.first_key or '<virtual key>'}",
        "Other clients: tollway codex|cursor|openai|anthropic|curl env|config --key KEY",
    ]
    return "\n".join(lines)
