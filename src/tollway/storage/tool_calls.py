"""The MCP tool-call log: one row per ``tools/call`` through the gateway, both backends.

    await store.write_tool_calls([ToolCallRecord(...)])
    rows = await list_tool_calls(store, key="alice", limit=50)

Arguments and results are kept only when content logging is on for the key (the same
switches as request bodies) and are cleared after ``logging.retention_days``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tollway.storage.schema import from_pico, to_pico

if TYPE_CHECKING:
    from tollway.storage.base import Store

TOOL_CALL_COLUMNS = (
    "id", "started_at", "latency_ms", "vk_id", "vk_name", "team_id", "customer_id",
    "mcp_session_id", "agent_session_id", "endpoint", "server", "tool", "exposed_name",
    "outcome", "error_message", "arguments", "result", "arguments_bytes", "result_bytes",
    "cost_pico",
)  # fmt: skip

INSERT_TOOL_CALL = (
    f"INSERT INTO mcp_tool_calls ({', '.join(TOOL_CALL_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in TOOL_CALL_COLUMNS)}) ON CONFLICT (id) DO NOTHING"
)
PURGE_TOOL_CALL_CONTENT = (
    "UPDATE mcp_tool_calls SET arguments = NULL, result = NULL "
    "WHERE started_at < ? AND (arguments IS NOT NULL OR result IS NOT NULL)"
)


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """``outcome``: ok, tool_error (the tool answered isError), upstream_error,
    unavailable, denied, rate_limited, budget, invalid."""

    id: str
    started_at: float
    latency_ms: float
    vk_id: str | None
    vk_name: str | None
    team_id: str | None
    customer_id: str | None
    mcp_session_id: str | None
    agent_session_id: str | None
    endpoint: str
    server: str | None
    tool: str | None
    exposed_name: str
    outcome: str
    error_message: str | None
    arguments: str | None
    result: str | None
    arguments_bytes: int
    result_bytes: int
    cost: Any  # Decimal

    def row(self) -> tuple[Any, ...]:
        return (
            self.id, self.started_at, self.latency_ms, self.vk_id, self.vk_name, self.team_id,
            self.customer_id, self.mcp_session_id, self.agent_session_id, self.endpoint,
            self.server, self.tool, self.exposed_name, self.outcome, self.error_message,
            self.arguments, self.result, self.arguments_bytes, self.result_bytes,
            to_pico(self.cost),
        )  # fmt: skip


async def list_tool_calls(
    store: Store,
    *,
    key: str | None = None,
    session: str | None = None,
    server: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Newest first; ``key`` matches the key's id or name, ``session`` either session id."""
    clauses: list[str] = []
    params: list[Any] = []
    if key is not None:
        clauses.append("(vk_id = ? OR vk_name = ?)")
        params += [key, key]
    if session is not None:
        clauses.append("(mcp_session_id = ? OR agent_session_id = ?)")
        params += [session, session]
    if server is not None:
        clauses.append("server = ?")
        params.append(server)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = (
        f"SELECT {', '.join(TOOL_CALL_COLUMNS)} FROM mcp_tool_calls{where} "
        f"ORDER BY started_at DESC, id DESC LIMIT {max(1, min(int(limit), 1000))}"
    )
    rows = await store.query(sql, params)
    for row in rows:
        row["cost"] = str(from_pico(row.pop("cost_pico")))
    return rows
