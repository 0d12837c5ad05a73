"""``tollway serve``: load config, open the store, print the banner, run uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from pathlib import Path

from tollway.config import load_config
from tollway.storage import open_store

DEFAULT_DB = "sqlite:///tollway.db"


def db_url(arg: str | None) -> str:
    return arg or os.environ.get("TOLLWAY_DB") or DEFAULT_DB


def admin_token_for(url: str) -> tuple[str, bool]:
    """TOLLWAY_ADMIN_TOKEN, else a token stored beside the database (made on first start)."""
    token = os.environ.get("TOLLWAY_ADMIN_TOKEN")
    if token:
        return token, False
    if url.startswith("sqlite:"):
        path = Path(url.removeprefix("sqlite:///").removeprefix("sqlite://") or "tollway.db")
        token_file = path.with_name(path.name + ".admin-token")
    else:
        token_file = Path("tollway.admin-token")
    if token_file.exists():
        return token_file.read_text().strip(), False
    token = "twadmin-" + secrets.token_urlsafe(24)
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    return token, True


def banner(host: str, port: int, providers: list[str], simulated: bool, token: str | None) -> str:
    base = f"http://{host}:{port}"
    lines = [
        f"Tollway gateway listening on {base}",
        f"  providers: {', '.join(providers)}",
        f"  admin API: {base}/api (OpenAPI: {base}/api/openapi.json)",
        f"  dashboard: {base}/dashboard (coming in a later release)",
    ]
    if simulated:
        lines.append(
            "  NOTE: no provider key found (ANTHROPIC_API_KEY, OPENAI_API_KEY); the built-in "
            "'simulated' provider answers every model"
        )
    if token:
        lines.append(f"  admin token (shown once, stored beside the database): {token}")
    lines += [
        "",
        "Point Claude Code at it with a virtual key (create one: tollway keys create NAME):",
        f"  export ANTHROPIC_BASE_URL={base}",
        "  export ANTHROPIC_API_KEY=<virtual key>",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from tollway.app import build_app
    from tollway.services import Services

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = load_config(args.config)
    url = db_url(args.db)
    services = Services(config, open_store(url))
    services.admin_token, new = admin_token_for(url)
    names = list(config.providers)
    simulated = names == ["simulated"] and args.config is None
    print(banner(args.host, args.port, names, simulated, services.admin_token if new else None),
          file=sys.stderr, flush=True)  # fmt: skip
    uvicorn.run(
        build_app(services),
        host=args.host,
        port=args.port,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=30,
    )
    return 0
