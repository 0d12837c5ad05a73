"""``tollway serve``: load config, open the store, print the banner, run uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from tollway.cli.banner import Startup, banner
from tollway.cli.runtime import GatewayRecord, absolute_db, announce, withdraw
from tollway.config import Config, ProviderConfig, ServerConfig, read_config, with_env_providers
from tollway.connections import ServerLimits, connection_cap, guarded_protocol, raise_fd_limit
from tollway.errors import ConfigError
from tollway.storage import open_store
from tollway.storage.journal import journal_path_for
from tollway.vault import write_private

DEFAULT_DB = "sqlite:///tollway.db"
DEFAULT_PORT = 8080


def db_url(arg: str | None) -> str:
    return arg or os.environ.get("TOLLWAY_DB") or DEFAULT_DB


def token_file_for(url: str) -> Path:
    """Where the generated admin token lives: beside the SQLite file, else in the cwd."""
    if url.startswith("sqlite:") or "://" not in url:
        path = Path(url.removeprefix("sqlite:///").removeprefix("sqlite://") or "tollway.db")
        return path.with_name(path.name + ".admin-token")
    return Path("tollway.admin-token")


def check_db_dir(url: str) -> None:
    """A SQLite database is created on first start, but never its folder. For a server
    database ``token_file_for`` names the working directory, which exists."""
    folder = token_file_for(url).parent
    if not folder.is_dir():
        raise ConfigError(
            f"--db {url}: the folder {folder.resolve()} does not exist; create it, or give "
            "a path in an existing folder (sqlite:////absolute/path/tollway.db has four "
            "slashes)"
        )


def admin_token_for(url: str) -> tuple[str, bool]:
    """TOLLWAY_ADMIN_TOKEN, else a token stored beside the database (made on first start)."""
    token = os.environ.get("TOLLWAY_ADMIN_TOKEN")
    if token:
        return token, False
    token_file = token_file_for(url)
    if token_file.exists():
        return token_file.read_text().strip(), False
    token = "twadmin-" + secrets.token_urlsafe(24)
    write_private(token_file, token + "\n")
    return token, True


def check_port(host: str, port: int) -> None:
    """Fail before printing anything when the address is taken (uvicorn would die later)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: cannot resolve it ({exc.strerror})") from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror}. Another program (another "
                f"Tollway? try `curl http://{host}:{port}/health`) holds the port; stop it or "
                "choose another with --port"
            ) from None


@dataclass(frozen=True)
class _Prepared:
    stored_providers: dict[str, ProviderConfig] | None
    first_key: str | None


async def _prepare(url: str, make_key: bool) -> _Prepared:
    """Read the providers the admin API stored; on a store with no keys, create ``default``."""
    from tollway.admin.ops import EntityOps, KeyInput

    store = open_store(url)
    await store.open()
    try:
        raw = await store.get_setting("providers")
        stored = None
        if raw:
            stored = {n: ProviderConfig.model_validate(p) for n, p in json.loads(raw).items()}
        secret = None
        if make_key and not await store.list_entities("virtual_key"):
            _record, secret = await EntityOps(store).create("virtual_key", KeyInput(name="default"))
        return _Prepared(stored, secret)
    finally:
        await store.close()


async def first_key(url: str) -> str | None:
    """On a store with no virtual keys, create one named ``default``; its secret, once."""
    return (await _prepare(url, True)).first_key


def startup(args: argparse.Namespace, file_config: Config, url: str, token: str | None) -> Startup:
    config = with_env_providers(file_config, os.environ)
    prepared = asyncio.run(_prepare(url, make_key=not config.virtual_keys))
    shown = config
    if prepared.stored_providers is not None:
        shown = config.model_copy(update={"providers": prepared.stored_providers})
    return Startup(
        host=args.host, port=args.port, config=shown,
        file_providers=frozenset(file_config.providers), config_path=args.config,
        stored=prepared.stored_providers is not None,
        database=absolute_db(url), environ=dict(os.environ), admin_token=token,
        first_key=prepared.first_key,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from tollway.app import build_app
    from tollway.services import Services

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    file_config = read_config(args.config)
    check_port(args.host, args.port)
    url = db_url(args.db)
    check_db_dir(url)
    config = with_env_providers(file_config, os.environ)
    services = Services(config, open_store(url), journal=journal_path_for(url))
    services.admin_token, new = admin_token_for(url)
    services.freeze_gc = True
    info = startup(args, file_config, url, services.admin_token if new else None)
    print(banner(info), file=sys.stderr, flush=True)
    record = GatewayRecord(info.base_url, info.database,
                           str(token_file_for(url).resolve()), os.getpid())  # fmt: skip
    announced = announce(record)
    server = config.server
    try:
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
    finally:
        withdraw(announced, os.getpid())
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
