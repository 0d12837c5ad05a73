"""The names the gateway gives upstream tools: ``<server>__<tool>``, valid, short, stable.

Claude Code calls a tool ``mcp__<client name>__<tool name>`` and the Anthropic API takes
at most 64 characters of ``[A-Za-z0-9_-]``. A name that would not fit is cut and given a
hash of the full name, so it is the same on every listing and on every gateway.
"""

from __future__ import annotations

import hashlib
import re

MAX_TOOL_NAME = 64
SEPARATOR = "__"
_INVALID = re.compile(r"[^A-Za-z0-9_-]")
_HASH_LEN = 8


def full_name(server: str, tool: str) -> str:
    """The name access globs match: ``files__read_file``."""
    return f"{server}{SEPARATOR}{tool}"


def budget(client_name: str) -> int:
    """Characters left for a tool name once Claude Code adds ``mcp__<client>__``."""
    return MAX_TOOL_NAME - len(f"mcp__{client_name}__")


def exposed_name(server: str, tool: str, limit: int) -> str:
    """``<server>__<tool>`` with invalid characters replaced, cut to ``limit`` if needed."""
    name = _INVALID.sub("_", full_name(server, tool))
    if len(name) <= limit and name == full_name(server, tool):
        return name
    digest = hashlib.sha256(full_name(server, tool).encode()).hexdigest()[:_HASH_LEN]
    if len(name) + 1 + _HASH_LEN <= limit:
        return f"{name}_{digest}"  # renamed (characters replaced): keep it unique
    keep = max(limit - 1 - _HASH_LEN, 1)
    return f"{name[:keep]}_{digest}"
