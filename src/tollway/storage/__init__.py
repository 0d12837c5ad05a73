"""Storage backends behind one Protocol; ``open_store(url)`` picks one by URL scheme."""

from __future__ import annotations

from tollway.errors import ConfigError
from tollway.storage.base import Store


def open_store(url: str) -> Store:
    """``sqlite:///path`` (default) or ``postgresql://...``."""
    if url.startswith("sqlite:"):
        from tollway.storage.sqlite import SQLiteStore

        return SQLiteStore(url)
    if url.startswith(("postgresql://", "postgres://")):
        from tollway.storage.postgres import PostgresStore

        return PostgresStore(url)
    if "://" not in url:
        from tollway.storage.sqlite import SQLiteStore

        return SQLiteStore("sqlite:///" + url)
    raise ConfigError(f"unsupported database URL {url!r}: use sqlite:///FILE or postgresql://...")


__all__ = ["Store", "open_store"]
