"""Which state a CLI command works on: a running gateway's admin API, or a database.

Order: ``--url`` (or ``$TOLLWAY_URL``): that gateway's admin API. ``--db`` (or
``$TOLLWAY_DB``, else ``./tollway.db`` if it exists): that database, through the admin API
of a gateway running on it when there is one (so budget resets reach its in-memory
counters). Neither: a running gateway (announced in the state folder, the default port
first, or answering on the default port). A SQLite file that does not exist is not
created (except by a ``create`` command given an explicit ``--db``): the command stops
and says where it looked.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from tollway.cli.runtime import GatewayRecord, absolute_db, live_gateways
from tollway.errors import ConfigError

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_DB_FILE = "tollway.db"
PROBE_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Target:
    """An admin API (``url`` and ``token``) or a database URL (``db``)."""

    url: str | None = None
    token: str | None = None
    db: str | None = None

    def describe(self) -> str:
        return f"the gateway at {self.url}" if self.url else f"the database {self.db}"


def answers(url: str) -> bool:
    """Does a Tollway gateway answer ``GET /health`` at ``url``?"""
    try:
        resp = httpx.get(url.rstrip("/") + "/health", timeout=PROBE_TIMEOUT_S)
        return resp.status_code == 200 and resp.json() == {"status": "ok"}
    except (httpx.HTTPError, ValueError):
        return False


def _token_from(record: GatewayRecord | None) -> str | None:
    if record is None:
        return None
    try:
        return Path(record.token_file).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _api(
    url: str, flag: str | None, env: Mapping[str, str], record: GatewayRecord | None
) -> Target:
    token = flag or env.get("TOLLWAY_ADMIN_TOKEN") or _token_from(record)
    if not token:
        raise ConfigError(
            f"the gateway at {url} needs its admin token: pass --admin-token or set "
            "TOLLWAY_ADMIN_TOKEN (printed at its first start; stored beside its database "
            "as tollway.db.admin-token)"
        )
    return Target(url=url.rstrip("/"), token=token)


def _existing_db(url: str, origin: str, may_create: bool) -> Target:
    full = absolute_db(url)
    missing = full.startswith("sqlite:") and not Path(full.removeprefix("sqlite:///")).exists()
    if missing and not may_create:
        raise ConfigError(
            f"no database at {full.removeprefix('sqlite:///')} ({origin}); the CLI does not "
            "create an empty one (only `create` with an explicit --db starts a new database). "
            "Start the gateway once there, or point at its state: --db "
            "sqlite:///PATH/tollway.db or --url URL"
        )
    return Target(db=full)


def resolve(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None, may_create: bool = False
) -> Target:
    """``may_create``: a command that creates an entity may start a database named by --db."""
    env = os.environ if environ is None else environ
    records = live_gateways(env)
    url = getattr(args, "url", None) or env.get("TOLLWAY_URL")
    if url:
        record = next((r for r in records if r.url == url.rstrip("/")), None)
        return _api(url, getattr(args, "admin_token", None), env, record)
    token = getattr(args, "admin_token", None)
    db = getattr(args, "db", None) or env.get("TOLLWAY_DB")
    origin = "--db" if getattr(args, "db", None) else "$TOLLWAY_DB"
    if not db and Path(DEFAULT_DB_FILE).exists():
        db, origin = DEFAULT_DB_FILE, "./tollway.db"
    if db:
        for record in records:
            if record.database == absolute_db(db) and answers(record.url):
                return _api(record.url, token, env, record)
        return _existing_db(db, origin, may_create and origin == "--db")
    for record in sorted(records, key=lambda r: r.url != DEFAULT_URL):
        if answers(record.url):
            return _api(record.url, token, env, record)
    if answers(DEFAULT_URL):
        return _api(DEFAULT_URL, token, env, None)
    raise ConfigError(
        f"no Tollway state found: no gateway answers at {DEFAULT_URL} and there is no "
        f"./{DEFAULT_DB_FILE} in {Path.cwd()} (the CLI does not create an empty database). "
        "Run it in the gateway's folder, or pass --db sqlite:///PATH/tollway.db, "
        "or --url http://HOST:PORT with --admin-token"
    )
