"""The tools a request may see: every upstream's tools, renamed, filtered and sorted.

Pure: built from the upstreams' last listings, the key's `Policy` and the endpoint's
group. A tool of an upstream that is down stays listed, marked unavailable, so an agent
sees why it cannot call it instead of the tool silently vanishing.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

import mcp_types as types

from tollway.mcp.access import Policy
from tollway.mcp.names import exposed_name, full_name


@dataclass(frozen=True, slots=True)
class Listing:
    """One upstream's last known tools and whether it is connected now."""

    server: str
    tools: list[types.Tool]
    up: bool
    why_down: str | None = None


@dataclass(frozen=True, slots=True)
class Exposed:
    name: str  # what the client sees and calls
    server: str
    tool: str  # the upstream's own name
    full: str  # <server>__<tool>, what access globs match
    up: bool
    definition: types.Tool


def visible(
    listings: list[Listing], policy: Policy, group: tuple[str, ...] | None, limit: int
) -> list[Exposed]:
    """Permitted tools, sorted by exposed name; ``group`` narrows to a curated endpoint."""
    out: dict[str, Exposed] = {}
    for listing in listings:
        for tool in listing.tools:
            full = full_name(listing.server, tool.name)
            if not policy.permits(full):
                continue
            if group is not None and not any(fnmatchcase(full, g) for g in group):
                continue
            name = exposed_name(listing.server, tool.name, limit)
            definition = _renamed(tool, name, listing)
            out[name] = Exposed(name, listing.server, tool.name, full, listing.up, definition)
    return [out[name] for name in sorted(out)]


def _renamed(tool: types.Tool, name: str, listing: Listing) -> types.Tool:
    description = tool.description
    if not listing.up:
        why = f" ({listing.why_down})" if listing.why_down else ""
        note = (
            f"[unavailable: MCP server {listing.server} is down{why}; the gateway is reconnecting]"
        )
        description = f"{note} {description or ''}".strip()
    return tool.model_copy(update={"name": name, "description": description})
