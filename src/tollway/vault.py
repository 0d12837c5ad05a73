"""Secrets at rest and in the environment.

``SecretBox`` encrypts the provider keys that the admin API stores (Fernet: AES-128-CBC
with HMAC-SHA256, through ``MultiFernet`` so that old keys still decrypt while a new one
encrypts). The key comes from, in order: ``TOLLWAY_SECRET_KEY`` (Fernet keys, comma
separated, newest first), the file named by ``TOLLWAY_SECRET_KEY_FILE`` (one key a line,
newest first), or for SQLite a file beside the database, ``<db>.secret-key``, generated
0600 on first use. With PostgreSQL and no key configured there is no box, and the admin
API refuses to store a literal provider key (``env.NAME`` references still work).

``EnvPolicy`` decides which ``env.NAME`` references resolve: the names the config file
itself uses (each only with the provider base URLs the file pairs it with), and the names
the operator allows explicitly (``gateway.env_allowlist`` or ``TOLLWAY_ENV_ALLOWLIST``).
So an admin cannot point a provider at a URL of their choosing with
``value: env.AWS_SECRET_ACCESS_KEY`` and collect the gateway's environment.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from tollway.config import Config, env_name
from tollway.providers.catalog import DEFAULT_BASE_URLS as DEFAULT_BASE_URLS
from tollway.providers.catalog import SPECS

log = logging.getLogger("tollway.secrets")
PREFIX = "enc:v1:"
KEY_ENV = "TOLLWAY_SECRET_KEY"
KEY_FILE_ENV = "TOLLWAY_SECRET_KEY_FILE"
ALLOW_ENV = "TOLLWAY_ENV_ALLOWLIST"


class SecretError(Exception):
    """A stored secret cannot be decrypted with the configured keys."""


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def sqlite_path(url: str) -> str | None:
    if not url.startswith("sqlite:"):
        return None
    return url.removeprefix("sqlite:///").removeprefix("sqlite://") or "tollway.db"


@dataclass(frozen=True)
class KeySource:
    """Where the box's keys live: ``file`` (rewritable by rotation) or the environment."""

    keys: list[bytes]
    file: Path | None = None
    generated: bool = False


def key_source(db_url: str, environ: Mapping[str, str]) -> KeySource | None:
    if environ.get(KEY_ENV):
        return KeySource([k.strip().encode() for k in environ[KEY_ENV].split(",") if k.strip()])
    db = sqlite_path(db_url)
    if environ.get(KEY_FILE_ENV):
        path = Path(environ[KEY_FILE_ENV])
    elif db == ":memory:":
        return KeySource([Fernet.generate_key()])  # the database dies with the process
    elif db is not None:
        path = Path(db).with_name(Path(db).name + ".secret-key")
    else:
        return None
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, Fernet.generate_key().decode() + "\n")
        log.warning("generated %s (0600): it decrypts the stored provider keys; back it up "
                    "with the database, or set %s", path, KEY_ENV)  # fmt: skip
        return KeySource(read_keys(path), path, generated=True)
    return KeySource(read_keys(path), path)


def read_keys(path: Path) -> list[bytes]:
    return [line.strip().encode() for line in path.read_text().splitlines() if line.strip()]


class SecretBox:
    """``box.encrypt("sk-...") -> "enc:v1:..."``; ``box.decrypt(stored)``; ``box.rotate``."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError(f"{KEY_ENV}: no key given")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except ValueError:
            raise ValueError(
                "a secret key must be a Fernet key (32 url-safe base64 bytes): make one "
                "with `tollway secrets generate-key`"
            ) from None

    @staticmethod
    def is_encrypted(value: str) -> bool:
        return value.startswith(PREFIX)

    def encrypt(self, plain: str) -> str:
        return PREFIX + self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, stored: str) -> str:
        try:
            return self._fernet.decrypt(stored.removeprefix(PREFIX).encode()).decode()
        except InvalidToken:
            raise SecretError(
                "cannot be decrypted with the configured secret key(s) "
                f"({KEY_ENV}, {KEY_FILE_ENV} or the key file beside the database)"
            ) from None

    def rotate(self, stored: str) -> str:
        """Re-encrypt with the newest key (the first)."""
        try:
            return PREFIX + self._fernet.rotate(stored.removeprefix(PREFIX).encode()).decode()
        except InvalidToken:
            raise SecretError("cannot be decrypted with the configured secret key(s)") from None


def open_box(db_url: str, environ: Mapping[str, str] | None = None) -> SecretBox | None:
    source = key_source(db_url, os.environ if environ is None else environ)
    return SecretBox(source.keys) if source is not None else None


@dataclass(frozen=True)
class EnvPolicy:
    """Which ``env.NAME`` references may resolve, fixed when the gateway starts."""

    allowed: frozenset[str] = frozenset()
    origins: Mapping[str, frozenset[str]] = field(default_factory=dict)
    values: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def at_start(cls, config: Config, environ: Mapping[str, str]) -> EnvPolicy:
        extra = [n.strip() for n in environ.get(ALLOW_ENV, "").split(",") if n.strip()]
        allowed = frozenset([*config.gateway.env_allowlist, *extra])
        origins: dict[str, set[str]] = {}
        for name, pc in config.providers.items():
            url = base_url(config.provider_type(name), pc.base_url, pc.region)
            for key in pc.keys:
                for _, value in key.references():
                    var = env_name(value)
                    if var is not None:
                        origins.setdefault(var, set()).add(url)
        names = allowed | set(origins)
        values = {n: environ[n] for n in names if n in environ}
        return cls(allowed, {n: frozenset(u) for n, u in origins.items()}, values)

    def problem(self, var: str, url: str) -> str | None:
        """None when ``env.var`` may be sent to ``url``, else why not."""
        if var in self.allowed or url in self.origins.get(var, ()):
            return None if var in self.values else f"environment variable {var} is not set"
        if var in self.origins:
            return (
                f"env.{var} is allowed only with the base URL the config file gives it "
                f"({', '.join(sorted(self.origins[var]))}); add {var} to "
                f"gateway.env_allowlist to use it elsewhere"
            )
        return (
            f"env.{var} is not an allowed environment reference: the config file does not "
            f"use it and it is not in gateway.env_allowlist ({ALLOW_ENV})"
        )

    def resolve(self, value: str) -> str:
        var = env_name(value)
        if var is None:
            return value
        if var not in self.values:
            raise ValueError(f"environment variable {var} is not set or not allowed")
        return self.values[var]


def base_url(kind: str, configured: str | None, region: str | None = None) -> str:
    spec = SPECS.get(kind)
    return (configured or (spec.base_url_for(region) if spec else "")).rstrip("/")
