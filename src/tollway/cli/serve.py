"""``tollway serve``: load config, open the store, print the banner, run uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import sys
from pathlib import Path

from tollway.config import ServerConfig, load_config
from tollway.connections import ServerLimits, connection_cap, guarded_protocol, raise_fd_limit
from tollway.storage import open_store
from tollway.storage.journal import journal_path_for

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


async def first_key(url: str) -> str | None:
    """On a store with no virtual keys, create one named ``default``; its secret, once."""
    from tollway.admin.ops import EntityOps, KeyInput

    store = open_store(url)
    await store.open()
    try:
        if await store.list_entities("virtual_key"):
            return None
        _record, secret = await EntityOps(store).create("virtual_key", KeyInput(name="default"))
        return secret
    finally:
        await store.close()


def banner(
    host: str,
    port: int,
    providers: list[str],
    simulated: bool,
    token: str | None,
    key: str | None = None,
) -> str:
    base = f"http://{host}:{port}"
    lines = [
        f"Tollway gateway listening on {base}",
        f"  providers: {', '.join(providers)}",
        f"  admin API: {base}/api (OpenAPI: {base}/api/openapi.json)",
        f"  dashboard: {base}/ui (log in with the admin token)",
    ]
    if simulated:
        lines.append(
            "  NOTE: no provider key found (ANTHROPIC_API_KEY, OPENAI_API_KEY); the built-in "
            "'simulated' provider answers every model"
        )
    if token:
        lines.append(f"  admin token (shown once, stored beside the database): {token}")
    if key:
        lines += ["", "First start: created the virtual key 'default' (shown once):"]
    else:
        lines += ["", "Point Claude Code at it with a virtual key (tollway keys create NAME):"]
    lines += [
        f"  export ANTHROPIC_BASE_URL={base}",
        f"  export ANTHROPIC_API_KEY={key or '<virtual key>'}",
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
    services = Services(config, open_store(url), journal=journal_path_for(url))
    services.admin_token, new = admin_token_for(url)
    services.freeze_gc = True
    names = list(config.providers)
    simulated = names == ["simulated"] and args.config is None
    key = asyncio.run(first_key(url)) if not config.virtual_keys else None
    token = services.admin_token if new else None
    print(banner(args.host, args.port, names, simulated, token, key), file=sys.stderr, flush=True)
    server = config.server
    uvicorn.run(
        build_app(services),
        host=args.host,
        port=args.port,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http=guarded_protocol(server_limits(server, raise_fd_limit())),
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=30,
        timeout_keep_alive=server.keep_alive_s,
        backlog=server.backlog,
    )
    return 0


def server_limits(server: ServerConfig, fd_limit: int) -> ServerLimits:
    """The connection limits in force: ``max_connections`` defaults to what fds allow."""
    cap = connection_cap(fd_limit)
    if server.max_connections is not None and server.max_connections > cap:
        logging.getLogger("tollway").warning(
            "server.max_connections %d is more than the open-files limit (%d) allows; using %d",
            server.max_connections, fd_limit, cap,
        )  # fmt: skip
    return ServerLimits(
        header_timeout_s=server.header_timeout_s,
        max_header_bytes=server.max_header_bytes,
        max_connections=min(server.max_connections or cap, cap),
        keep_alive_max_requests=server.keep_alive_max_requests,
    )
