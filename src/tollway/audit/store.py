"""The audit tables on either backend: agent actions, the hash-chained log, checkpoints.

Statements only; the store runs them (``store.execute``, ``store.query``). The chain's
sequence number is the primary key, so two writers that both extend the same head cannot
both commit: the second fails, reads the new head and links again (audit/log.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from tollway.audit.chain import Checkpoint, Entry, Head, entry_of
from tollway.storage.schema import from_pico

if TYPE_CHECKING:
    from tollway.storage.base import Store

Statement = tuple[str, list[tuple[Any, ...]]]

ACTION_COLUMNS = (
    "id", "request_id", "session_id", "vk_id", "vk_name", "proposed_at", "dialect", "tool",
    "kind", "mcp_server", "mcp_tool", "command", "paths", "domain", "edit_bytes",
    "edit_sha256", "input_sha256", "status", "decided_by", "reason", "policy",
)  # fmt: skip
INSERT_ACTION = (
    f"INSERT INTO agent_actions ({', '.join(ACTION_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in ACTION_COLUMNS)}) ON CONFLICT (id) DO NOTHING"
)
# A result settles a proposed action once; a denial by policy may still overwrite "failed".
SETTLE_ACTION = (
    "UPDATE agent_actions SET status = ?, decided_by = ?, reason = ?, "
    "policy = COALESCE(?, policy), result_request_id = ?, result_at = ?, result_bytes = ?, "
    "result_sha256 = ? "
    "WHERE id = ? AND status = 'proposed'"
)
INSERT_ENTRY = (
    "INSERT INTO audit_log (seq, at, kind, actor, subject, doc, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_CHECKPOINT = (
    "INSERT INTO audit_checkpoints (seq, hash, at, key_id, signature) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (seq) DO NOTHING"
)
_ENTRY_COLUMNS = "seq, at, kind, actor, subject, doc, prev_hash, hash"
PAGE = 5000


async def head(store: Store) -> Head:
    rows = await store.query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    return Head(int(rows[0]["seq"]), str(rows[0]["hash"])) if rows else Head()


async def entries(store: Store, since: int = 0, kinds: str | None = None) -> AsyncIterator[Entry]:
    """Every entry after ``since`` in sequence order, read a page at a time."""
    after = since
    while True:
        rows = await store.query(
            f"SELECT {_ENTRY_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT {PAGE}",
            (after,),
        )
        for row in rows:
            entry = entry_of(row)
            if kinds is None or entry.kind.startswith(kinds):
                yield entry
        if len(rows) < PAGE:
            return
        after = int(rows[-1]["seq"])


async def checkpoints(store: Store) -> list[Checkpoint]:
    rows = await store.query(
        "SELECT seq, hash, at, key_id, signature FROM audit_checkpoints ORDER BY seq"
    )
    return [Checkpoint(int(r["seq"]), str(r["hash"]), float(r["at"]), str(r["key_id"]),
                       str(r["signature"])) for r in rows]  # fmt: skip


def _action_doc(row: dict[str, Any]) -> dict[str, Any]:
    doc = dict(row)
    doc["paths"] = json.loads(doc["paths"]) if doc.get("paths") else []
    return doc


async def actions(store: Store, session: str) -> list[dict[str, Any]]:
    cols = ", ".join((*ACTION_COLUMNS, "result_request_id", "result_at", "result_bytes",
                      "result_sha256"))  # fmt: skip
    rows = await store.query(
        f"SELECT {cols} FROM agent_actions WHERE session_id = ? ORDER BY proposed_at, id",
        (session,),
    )
    return [_action_doc(r) for r in rows]


async def sessions(store: Store, key: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Sessions newest first: requests, cost, actions and denials of each."""
    where, params = "session_id IS NOT NULL", []
    if key is not None:
        where += " AND (vk_id = ? OR vk_name = ?)"
        params = [key, key]
    rows = await store.query(
        "SELECT session_id, MIN(started_at) AS first_at, MAX(started_at) AS last_at, "
        "COUNT(*) AS requests, SUM(cost_total_pico) AS cost_pico, MAX(vk_name) AS key, "
        f"MAX(client) AS client FROM requests WHERE {where} GROUP BY session_id "
        f"ORDER BY last_at DESC LIMIT {max(1, min(int(limit), 1000))}",
        params,
    )
    if not rows:
        return []
    ids = [r["session_id"] for r in rows]
    counts = await store.query(
        "SELECT session_id, COUNT(*) AS n, "
        "SUM(CASE WHEN status = 'denied' THEN 1 ELSE 0 END) AS denied "
        f"FROM agent_actions WHERE session_id IN ({', '.join('?' for _ in ids)}) "
        "GROUP BY session_id",
        ids,
    )
    by_id = {c["session_id"]: c for c in counts}
    return [_session_summary(r, by_id.get(r["session_id"])) for r in rows]


def _session_summary(row: dict[str, Any], counts: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "session_id": row["session_id"], "key": row["key"], "client": row["client"],
        "first_at": float(row["first_at"]), "last_at": float(row["last_at"]),
        "requests": int(row["requests"]), "cost": str(from_pico(row["cost_pico"])),
        "actions": int(counts["n"]) if counts else 0,
        "denials": int(counts["denied"] or 0) if counts else 0,
    }  # fmt: skip


async def session(store: Store, session_id: str) -> dict[str, Any] | None:
    """One session's timeline: its requests and agent actions in time order."""
    reqs = await store.query(
        "SELECT id, started_at, vk_name, requested_model, served_model, status, error_type, "
        "input_tokens, output_tokens, cost_total_pico, latency_ms FROM requests "
        "WHERE session_id = ? ORDER BY started_at, id",
        (session_id,),
    )
    acts = await actions(store, session_id)
    if not reqs and not acts:
        return None
    timeline: list[dict[str, Any]] = [
        {"at": float(r["started_at"]), "type": "request", "request_id": r["id"],
         "model": r["served_model"] or r["requested_model"], "status": r["status"],
         "error_type": r["error_type"], "input_tokens": r["input_tokens"],
         "output_tokens": r["output_tokens"], "cost": str(from_pico(r["cost_total_pico"])),
         "latency_ms": r["latency_ms"]}
        for r in reqs
    ]  # fmt: skip
    for a in acts:
        timeline.append({"at": float(a["proposed_at"]), "type": "action", **a})
    timeline.sort(key=lambda item: (item["at"], item["type"] != "request"))
    total = sum(int(r["cost_total_pico"]) for r in reqs)
    return {
        "session_id": session_id, "key": reqs[0]["vk_name"] if reqs else acts[0]["vk_name"],
        "requests": len(reqs), "cost": str(from_pico(total)), "actions": len(acts),
        "denials": sum(1 for a in acts if a["status"] == "denied"),
        "by_status": _by_status(acts), "timeline": timeline,
    }  # fmt: skip


def _by_status(acts: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in acts:
        out[a["status"]] = out.get(a["status"], 0) + 1
    return out
