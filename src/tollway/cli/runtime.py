"""Running gateways announce themselves, so the CLI finds the same state from any folder.

``tollway serve`` writes ``$XDG_STATE_HOME/tollway/gateway-PORT.json`` (default
``~/.local/state/tollway``, mode 0600) with its URL, its database and its admin token
file, and removes it on exit (uvicorn re-raises SIGTERM after its shutdown, so a record
left by a stopped gateway is removed by the next reader that finds its process gone).
The file holds paths, never the token itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class GatewayRecord:
    url: str
    database: str
    token_file: str
    pid: int


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local/state")
    return Path(base) / "tollway"


def absolute_db(url: str) -> str:
    """``sqlite:///tollway.db`` -> ``sqlite:////abs/path/tollway.db``; other URLs as they are."""
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:///").removeprefix("sqlite://") or "tollway.db"
        return "sqlite:///" + str(Path(path).resolve())
    if "://" not in url:
        return "sqlite:///" + str(Path(url).resolve())
    return url


def announce(record: GatewayRecord, environ: Mapping[str, str] | None = None) -> Path | None:
    """Write the record; None if the state folder cannot be written (the CLI then needs flags)."""
    port = record.url.rsplit(":", 1)[-1]
    path = state_dir(environ) / f"gateway-{port}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(asdict(record), f)
    except OSError:
        return None
    return path


def withdraw(path: Path | None, pid: int) -> None:
    """Remove our record (not one a later gateway on the same port wrote)."""
    if path is None:
        return
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_gateways(environ: Mapping[str, str] | None = None) -> list[GatewayRecord]:
    """Records of gateways whose process still runs, newest file first."""
    folder = state_dir(environ)
    try:
        files = sorted(folder.glob("gateway-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return []
    found = []
    for path in files:
        try:
            record = GatewayRecord(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue
        if _alive(record.pid):
            found.append(record)
        else:  # a gateway stopped by a signal leaves its record: the next reader removes it
            withdraw(path, record.pid)
    return found
