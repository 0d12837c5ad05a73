"""Audit scenarios run on SQLite (test_log_sqlite.py) and PostgreSQL (test_log_postgres.py).

Each takes an open, empty store whose secret box is available (the key file beside a
SQLite database; ``TOLLWAY_SECRET_KEY`` for PostgreSQL).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from audit_wire import body_bytes, capture, observed, sse_bytes

from tollway.audit import store as sql
from tollway.audit.actions import describe
from tollway.audit.chain import GENESIS, entry_hash
from tollway.audit.log import AuditLog
from tollway.audit.policy import Decision
from tollway.audit.settings import AuditConfig
from tollway.audit.verify import verify_store
from tollway.storage.base import Store
from tollway.storage.records import Batch, RequestRecord

T0 = 1_800_000_000.0


def record(rid: str, at: float, session: str, cost: str = "0.01", key: str = "alice",
           surface: str = "anthropic") -> RequestRecord:  # fmt: skip
    return RequestRecord(id=rid, started_at=at, latency_ms=5.0, surface=surface, status=200,
                         vk_id=f"vk_{key}", vk_name=key, session_id=session,
                         requested_model="claude-opus-4-8", served_model="claude-opus-4-8",
                         cost_total=Decimal(cost), input_tokens=100, output_tokens=10)  # fmt: skip


async def _run_capture(audit: AuditLog, store: Store, name: str, dialect: str, session: str,
                       at: float) -> list[RequestRecord]:  # fmt: skip
    records = []
    for i, row in enumerate(capture(name)):
        rec = record(f"{session}-{i}", at + i, session)
        resp = row["response"]
        tools = observed(dialect, sse_bytes(resp)) if "sse" in resp else None
        if tools is None:
            tools = observed(dialect, b"")
            tools.keep_body(json.dumps(resp).encode())
        audit.submit(rec, dialect, body_bytes(row), tools)
        records.append(rec)
    return records


async def check_sessions_join_actions(store: Store) -> None:
    audit = AuditLog(store, AuditConfig(checkpoint_every=1000))
    await audit.start()
    recs = await _run_capture(audit, store, "claude_p_tool.jsonl", "anthropic", "s-claude", T0)
    recs += await _run_capture(audit, store, "codex_tool_default_tool.jsonl", "openai_responses",
                               "s-codex", T0 + 10)  # fmt: skip
    recs += await _run_capture(audit, store, "gemini_tool.jsonl", "gemini", "s-gemini", T0 + 20)
    # A call the hook denied: Claude Code answers it with an error result carrying the reason.
    denied = describe("toolu_denied", "Bash", {"command": "rm -rf /"})
    reason = "Tollway tool policy (rules[0]): no"
    audit.decided(denied, Decision("deny", reason, "rules[0]"), {"key": "alice"}, "s-claude",
                  "/w")  # fmt: skip
    proposal = record("s-claude-2", T0 + 2, "s-claude")
    stream = _anthropic_tool_stream("toolu_denied", "Bash", {"command": "rm -rf /"})
    audit.submit(proposal, "anthropic", b"{}", observed("anthropic", stream))
    answer = record("s-claude-3", T0 + 3, "s-claude")
    body = {"messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_denied", "is_error": True,
         "content": reason}]}]}  # fmt: skip
    audit.submit(answer, "anthropic", json.dumps(body).encode(), observed("anthropic", b""))
    recs += [proposal, answer]
    await store.write_batch(Batch(requests=recs))
    await audit.stop()

    claude = await sql.session(store, "s-claude")
    assert claude is not None
    assert (claude["requests"], claude["cost"], claude["actions"], claude["denials"]) == (
        4,
        "0.04",
        2,
        1,
    )
    acts = [t for t in claude["timeline"] if t["type"] == "action"]
    assert [(a["tool"], a["command"], a["status"], a["decided_by"], a["result_request_id"])
            for a in acts] == [
        ("Bash", "echo hi", "executed", None, "s-claude-1"),
        ("Bash", "rm -rf /", "denied", "policy", "s-claude-3"),
    ]  # fmt: skip
    assert acts[1]["reason"] == reason and acts[1]["policy"] == "deny"
    assert [t["type"] for t in claude["timeline"]] == [
        "request", "action", "request", "request", "action", "request"
    ]  # fmt: skip
    for session, tool in (("s-codex", "exec_command"), ("s-gemini", "run_shell_command")):
        doc = await sql.session(store, session)
        assert doc is not None
        assert [(t["tool"], t["status"]) for t in doc["timeline"] if t["type"] == "action"] == [
            (tool, "executed")
        ]
    listed = await sql.sessions(store)
    assert [(s["session_id"], s["requests"], s["actions"], s["denials"]) for s in listed] == [
        ("s-gemini", 3, 1, 0), ("s-codex", 2, 1, 0), ("s-claude", 4, 2, 1),
    ]  # fmt: skip
    report = await verify_store(store)
    kinds = [e.kind async for e in sql.entries(store)]
    assert kinds.count("request") == 9 and kinds.count("action.proposed") == 4
    assert kinds.count("action.executed") == 3 and kinds.count("action.denied") == 1
    assert kinds.count("policy.deny") == 1
    assert report["ok"] and report["problems"] == [] and report["entries"] == len(kinds)
    assert report["signed_through"] == len(kinds)  # sealed at stop


def _anthropic_tool_stream(call_id: str, name: str, args: dict[str, Any]) -> bytes:
    events = [
        ("message_start", {"type": "message_start", "message": {"id": "m", "content": []}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "tool_use", "id": call_id,
                                                   "name": name, "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "input_json_delta",
                                           "partial_json": json.dumps(args)}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    return b"".join(f"event: {n}\ndata: {json.dumps(d)}\n\n".encode() for n, d in events)


async def _fresh_log(store: Store, entries: int) -> AuditLog:
    await store.execute([("DELETE FROM audit_log", [()]), ("DELETE FROM audit_checkpoints", [()])])
    audit = AuditLog(store, AuditConfig(checkpoint_every=4))
    await audit.start()
    for i in range(entries):
        audit.submit(record(f"r{i}", T0 + i, "s"), "anthropic", b"{}", None)
        if i % 2 == 1:
            await audit.flush()
    await audit.stop()
    return audit


async def _problems(store: Store) -> list[str]:
    report = await verify_store(store)
    problems: list[str] = report["problems"]
    return problems


async def check_tampering_is_found(store: Store) -> None:
    """verify passes, then names the row after an edit, a deletion, an insertion, a swap,
    and a cut at the end (10 rows, checkpoints at 4, 8 and the sealed head 10)."""
    await _fresh_log(store, 10)
    assert await _problems(store) == []
    cps = [c.seq for c in await sql.checkpoints(store)]
    assert cps == [4, 8, 10]

    await store.execute([("UPDATE audit_log SET doc = ? WHERE seq = 3",
                          [(json.dumps({"id": "r2", "cost": "0.00"}),)])])  # fmt: skip
    assert await _problems(store) == ["row 3 was changed: its content does not match its hash"]

    await _fresh_log(store, 10)
    await store.execute([("DELETE FROM audit_log WHERE seq = 6", [()])])
    assert await _problems(store) == ["row 6 missing: deleted from the log"]

    await _fresh_log(store, 10)  # swap rows 5 and 6 (their numbers trade places)
    await store.execute([
        ("UPDATE audit_log SET seq = 1000 WHERE seq = 5", [()]),
        ("UPDATE audit_log SET seq = 5 WHERE seq = 6", [()]),
        ("UPDATE audit_log SET seq = 6 WHERE seq = 1000", [()]),
    ])  # fmt: skip
    assert await _problems(store) == [
        "row 5 is out of place: it was written as row 6 (rows inserted before it, or reordered)",
        "row 6 is out of place: it was written as row 5 (rows inserted before it, or reordered)",
        "row 7 does not follow row 6: inserted or reordered (it follows row 5)",
    ]

    await _fresh_log(store, 10)  # insert a forged row 3, well hashed, moving 3.. up by one
    rows = [e async for e in sql.entries(store)]
    shift = [("UPDATE audit_log SET seq = ? WHERE seq = ?", [(e.seq + 1000, e.seq)])
             for e in reversed(rows) if e.seq >= 3]  # fmt: skip
    back = [("UPDATE audit_log SET seq = ? WHERE seq = ?", [(e.seq + 1, e.seq + 1000)])
            for e in rows if e.seq >= 3]  # fmt: skip
    doc = json.dumps({"id": "forged"})
    forged = (
        3,
        T0,
        "request",
        "mallory",
        "forged",
        doc,
        rows[1].hash,
        entry_hash(3, T0, "request", "mallory", "forged", doc, rows[1].hash),
    )
    await store.execute([*shift, *back, (sql.INSERT_ENTRY, [forged])])
    problems = await _problems(store)
    assert problems[0] == (
        "row 4 is out of place: it was written as row 3 (rows inserted before it, or reordered)"
    )
    assert (
        "checkpoint 4: row 4 differs from what was signed (the chain was rewritten up to it)"
        in problems
    )

    await _fresh_log(store, 10)  # cut the end: rows 9 and 10 deleted
    await store.execute([("DELETE FROM audit_log WHERE seq >= 9", [()])])
    assert await _problems(store) == [
        "checkpoint 10 signed a longer log: rows 9..10 deleted from the end"
    ]
    first = [e async for e in sql.entries(store)][0]
    assert first.prev_hash == GENESIS
