"""The audit log: requests, agent actions, policy decisions and admin changes, chained.

The request path only calls ``submit`` (an append to a bounded queue). Every
``flush_interval`` a background loop reads the queued responses' tool calls and the
requests' tool results on its own thread (audit/actions.py), joins each result with the
call it answers, links the new entries into the hash chain and writes actions, entries and
any due checkpoint in one transaction; then forwards the entries to the sinks.

    audit = AuditLog(store, config.audit, metrics)
    await audit.start(); audit.submit(record, body, tools); await audit.stop()
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter

from tollway.audit import store as sql
from tollway.audit.actions import ToolCall, ToolResult, proposed_calls, tool_results
from tollway.audit.chain import Draft, Entry, Head, link
from tollway.audit.observe import ToolEvents
from tollway.audit.policy import Decision
from tollway.audit.redact import redact, redact_doc
from tollway.audit.settings import AuditConfig
from tollway.audit.signing import Signer, load_signer
from tollway.audit.sinks import Forwarder, build_sinks
from tollway.background import Periodic
from tollway.observability.metrics import Metrics
from tollway.storage.base import Store
from tollway.storage.records import RequestRecord

log = logging.getLogger("tollway.audit")
_REMEMBERED = 20_000  # hook decisions and settled call ids kept for joining
_REASON_CHARS = 500
# Substrings that say a request body may carry tool results (else it is not parsed).
_RESULT_MARKS = (b'"tool_result"', b"_call_output", b'"functionResponse"', b'"tool_call_id"')


@dataclass(slots=True)
class Pending:
    record: RequestRecord
    dialect: str
    body: bytes
    tools: ToolEvents | None


@dataclass(slots=True)
class Read:
    """What the audit thread read off one request and its response."""

    pending: Pending
    calls: list[ToolCall] = field(default_factory=list)
    results: list[ToolResult] = field(default_factory=list)


def read(items: list[Pending]) -> list[Read]:
    """Runs on the audit thread: parse the kept events and bodies."""
    out = []
    for p in items:
        r = Read(p)
        try:
            if p.tools is not None and (p.tools.events or p.tools.body is not None):
                r.calls = proposed_calls(p.tools.dialect, p.tools.events, p.tools.body)
            if p.body and any(m in p.body for m in _RESULT_MARKS):
                r.results = tool_results(p.dialect, p.body)
        except Exception:  # one unreadable exchange must not hold back the whole log
            log.exception("audit: the tool calls of request %s could not be read; "
                          "it is logged without them", p.record.id)  # fmt: skip
            r.calls, r.results = [], []
        out.append(r)
    return out


class ChainWriter:
    """Appends entries to the chain; the head is read from the store and re-read when
    another writer moved it (its insert then fails on the sequence number)."""

    def __init__(self, store: Store, signer: Signer | None, config: AuditConfig) -> None:
        self.store = store
        self.signer = signer
        self.config = config
        self.head: Head | None = None
        self._since_checkpoint = 0
        self._checkpoint_at = time.time()

    async def write(self, drafts: list[Draft], extra: list[sql.Statement],
                    seal: bool = False) -> list[Entry]:  # fmt: skip
        """Link and write ``drafts`` with ``extra`` in one transaction; ``seal``: sign the
        new head now (admin changes are signed at once)."""
        for attempt in range(3):
            if self.head is None:
                self.head = await sql.head(self.store)
            entries = link(self.head, drafts)
            statements = list(extra)
            if entries:
                statements.append((sql.INSERT_ENTRY, [e.row() for e in entries]))
            checkpoint = self._checkpoint(entries, seal)
            if checkpoint is not None:
                statements.append((sql.INSERT_CHECKPOINT, [checkpoint]))
            try:
                if statements:
                    await self.store.execute(statements)
            except Exception:  # another writer took these numbers, or the store failed
                self.head = None
                if attempt == 2:
                    raise
                continue
            if entries:
                self.head = Head(entries[-1].seq, entries[-1].hash)
            if checkpoint is not None:
                self._since_checkpoint, self._checkpoint_at = 0, time.time()
            else:
                self._since_checkpoint += len(entries)
            return entries
        return []

    def _checkpoint(self, entries: list[Entry], seal: bool) -> tuple[Any, ...] | None:
        if self.signer is None or not entries:
            return None
        if seal:
            return self.checkpoint_row(entries[-1])
        many = self._since_checkpoint + len(entries) >= self.config.checkpoint_every
        due = many or time.time() - self._checkpoint_at >= self.config.checkpoint_interval_s
        return self.checkpoint_row(entries[-1]) if due else None

    def checkpoint_row(self, last: Entry) -> tuple[Any, ...] | None:
        if self.signer is None:
            return None
        cp = self.signer.sign(last.seq, last.hash, last.at)
        return (cp.seq, cp.hash, cp.at, cp.key_id, cp.signature)

    async def seal(self) -> None:
        """A checkpoint on the current head now (at shutdown, so the tail is signed)."""
        head = await sql.head(self.store)
        if self.signer is None or head.seq == 0:
            return
        rows = await self.store.query("SELECT seq FROM audit_checkpoints WHERE seq = ?",
                                      (head.seq,))  # fmt: skip
        if rows:
            return
        last = [e async for e in sql.entries(self.store, head.seq - 1)]
        row = self.checkpoint_row(last[-1])
        if row is not None:
            await self.store.execute([(sql.INSERT_CHECKPOINT, [row])])


class AuditLog:
    """``submit`` on the request path; ``decided`` from the hook; ``admin_change`` from
    admin operations. ``start()``/``stop()`` with the services (stop flushes)."""

    def __init__(self, store: Store, config: AuditConfig, metrics: Metrics | None = None) -> None:
        self.store = store
        self.config = config
        self.enabled = config.enabled
        self.dropped = 0
        self.bodies_skipped = 0
        self._body_bytes = 0
        self._queue: deque[Pending] = deque()
        self._drafts: list[Draft] = []
        self._retry: tuple[list[Draft], list[sql.Statement]] | None = None
        self._decisions: OrderedDict[str, tuple[Decision, str]] = OrderedDict()
        self._settled: OrderedDict[str, None] = OrderedDict()
        self._gemini: dict[str, list[tuple[str, str]]] = {}  # session -> [(action id, tool)]
        self._lock = asyncio.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tollway-audit")
        self._loop = Periodic("tollway-audit", config.flush_interval_ms / 1000, self.flush,
                              "writing the audit log", log=log)  # fmt: skip
        self.forwarder = Forwarder(build_sinks(config.sinks))
        self.chain = ChainWriter(store, None, config)
        self.decisions: Counter | None = None
        if metrics is not None:
            self.decisions = Counter(
                "tollway_tool_policy_decisions", "PreToolUse hook decisions by outcome",
                ["decision"], registry=metrics.registry,
            )  # fmt: skip
            metrics.gauge("tollway_audit_queue", "Requests waiting for the audit log",
                          lambda: len(self._queue))  # fmt: skip
            metrics.gauge("tollway_audit_dropped", "Requests the audit log dropped: queue full",
                          lambda: self.dropped)  # fmt: skip
            metrics.gauge("tollway_audit_bodies_skipped",
                          "Request bodies not read for tool results: body queue full",
                          lambda: self.bodies_skipped)  # fmt: skip

    # -- the request path (never awaits)

    def observer(self, dialect: str, status: int) -> ToolEvents | None:
        return ToolEvents(dialect) if self.enabled and status == 200 else None

    def submit(self, record: RequestRecord, dialect: str, body: bytes,
               tools: ToolEvents | None) -> None:  # fmt: skip
        if not self.enabled:
            return
        if len(self._queue) >= self.config.queue_size:
            self.dropped += 1
            return
        if self._body_bytes + len(body) > self.config.body_queue_mb * 1024 * 1024:
            # Bodies waiting are bounded: past that, this request's tool results go unread
            # (its actions stay "proposed") rather than the gateway's memory growing.
            self.bodies_skipped += 1
            body = b""
        self._body_bytes += len(body)
        self._queue.append(Pending(record, dialect, body, tools))

    # -- the hook and admin operations

    def decided(self, call: ToolCall, decision: Decision, who: dict[str, Any], session: str | None,
                cwd: str | None) -> None:  # fmt: skip
        """A PreToolUse decision: remembered for the join, and an entry of its own."""
        if self.decisions is not None:
            self.decisions.labels(decision.decision).inc()
        if not self.enabled:
            return
        self._remember(self._decisions, call.id, (decision, decision.decision))
        doc = {**who, "session_id": session, "tool": call.tool, "tool_use_id": call.id,
               "command": call.command, "paths": list(call.paths), "domain": call.domain,
               "input_sha256": call.input_sha256, "cwd": cwd, "decision": decision.decision,
               "reason": decision.reason, "rule": decision.rule}  # fmt: skip
        self._drafts.append(Draft(time.time(), f"policy.{decision.decision}",
                                  str(who.get("key") or "-"), call.id or call.tool,
                                  redact_doc(doc)))  # fmt: skip

    async def admin_change(self, actor: str, action: str, kind: str, entity_id: str,
                           before: Any, after: Any) -> None:  # fmt: skip
        """Who changed which entity, with before and after; written before this returns."""
        doc = redact_doc({"action": action, "kind": kind, "id": entity_id,
                          "before": _plain(before), "after": _plain(after)})  # fmt: skip
        self._drafts.append(Draft(time.time(), f"admin.{kind}.{action}", actor, entity_id, doc))
        await self.flush()

    @staticmethod
    def _remember(table: OrderedDict[str, Any], key: str, value: Any) -> None:
        if not key:
            return
        table[key] = value
        table.move_to_end(key)
        while len(table) > _REMEMBERED:
            table.popitem(last=False)

    # -- the background loop

    async def start(self) -> None:
        if self.enabled:
            self.chain.signer = await load_signer(self.store)
            self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self.flush()
        if self.enabled:
            await self.chain.seal()
        await self.forwarder.close()
        self._pool.shutdown(wait=True)

    async def flush(self) -> int:
        async with self._lock:
            items = list(self._queue)
            self._queue.clear()
            self._body_bytes = 0
            drafts, self._drafts = self._drafts, []
            extra: list[sql.Statement] = []
            if self._retry is not None:  # a batch the store refused last time, joined already
                drafts[:0], extra = self._retry
                self._retry = None
            try:
                reads = await asyncio.get_running_loop().run_in_executor(self._pool, read, items)
            except BaseException:
                self._queue.extendleft(reversed(items))
                self._body_bytes += sum(len(p.body) for p in items)
                self._drafts[:0] = drafts
                raise
            rows, settles = self._join(reads, drafts)
            if rows:
                extra.append((sql.INSERT_ACTION, rows))
            if settles:
                extra.append((sql.SETTLE_ACTION, settles))
            try:
                seal = any(d.kind.startswith("admin.") for d in drafts)
                entries = await self.chain.write(drafts, extra, seal)
            except BaseException:
                self._retry = (drafts, extra)
                raise
        if entries and self.forwarder.sinks:
            await self.forwarder.forward(entries)
        return len(entries)

    def _join(self, reads: list[Read], drafts: list[Draft]) -> tuple[list[Any], list[Any]]:
        rows: list[tuple[Any, ...]] = []
        settles: list[tuple[Any, ...]] = []
        for r in reads:
            rec = r.pending.record
            for result in r.results:
                settled = self._settle(rec, result)
                if settled is not None:
                    settles.append(settled[0])
                    drafts.append(settled[1])
            drafts.append(_request_draft(rec))
            for i, call in enumerate(r.calls):
                row, draft = self._proposed(rec, r.pending.tools, call, i)
                rows.append(row)
                drafts.append(draft)
        return rows, settles

    def _proposed(self, rec: RequestRecord, tools: ToolEvents | None, call: ToolCall,
                  index: int) -> tuple[tuple[Any, ...], Draft]:  # fmt: skip
        action_id = call.id or f"{rec.id}:{index}"
        if action_id.startswith("gemini:"):
            action_id = f"{rec.id}:{index}"
            if rec.session_id:
                self._gemini.setdefault(rec.session_id, []).append((action_id, call.tool))
        command = redact(call.command) if call.command is not None else None
        paths = [redact(p) for p in call.paths]
        row = (action_id, rec.id, rec.session_id, rec.vk_id, rec.vk_name, rec.started_at,
               tools.dialect if tools else "", call.tool, call.kind, call.mcp_server,
               call.mcp_tool, command, json.dumps(paths), call.domain, call.edit_bytes,
               call.edit_sha256, call.input_sha256, "proposed", None, None, None)  # fmt: skip
        doc = {"request_id": rec.id, "session_id": rec.session_id, "key": rec.vk_name,
               "tool": call.tool, "kind": call.kind, "command": command, "paths": paths,
               "domain": call.domain, "mcp_server": call.mcp_server, "mcp_tool": call.mcp_tool,
               "edit_bytes": call.edit_bytes, "edit_sha256": call.edit_sha256,
               "input_sha256": call.input_sha256}  # fmt: skip
        return row, Draft(rec.started_at, "action.proposed", rec.vk_name or "-", action_id, doc)

    def _settle(
        self, rec: RequestRecord, result: ToolResult
    ) -> tuple[tuple[Any, ...], Draft] | None:
        call_id = result.call_id
        if result.tool is not None and rec.session_id in self._gemini:  # Gemini: by name
            open_calls = self._gemini[rec.session_id]
            match = next((c for c in open_calls if c[1] == result.tool), None)
            if match is not None:
                open_calls.remove(match)
                call_id = match[0]
        if not call_id or call_id in self._settled:
            return None
        self._remember(self._settled, call_id, None)
        decided = self._decisions.get(call_id)
        policy = decided[1] if decided else None
        if decided is not None and decided[1] == "deny":
            status, by, reason = "denied", "policy", decided[0].reason
        elif result.denied:
            status, by, reason = "denied", "agent", result.text[:_REASON_CHARS]
        elif result.is_error:
            status, by, reason = "failed", None, result.text[:_REASON_CHARS]
        else:
            status, by, reason = "executed", None, None
        reason = redact(reason) if reason else None
        now = time.time()
        row = (status, by, reason, policy, rec.id, rec.started_at, result.size, result.sha256,
               call_id)  # fmt: skip
        doc = {"request_id": rec.id, "session_id": rec.session_id, "status": status,
               "decided_by": by, "reason": reason, "policy": policy,
               "result_bytes": result.size, "result_sha256": result.sha256}  # fmt: skip
        return row, Draft(now, f"action.{status}", rec.vk_name or "-", call_id, doc)


def _request_draft(rec: RequestRecord) -> Draft:
    doc = {"id": rec.id, "key": rec.vk_name, "vk_id": rec.vk_id, "team": rec.team_name,
           "customer": rec.customer_name, "session_id": rec.session_id, "client": rec.client,
           "endpoint": rec.endpoint, "provider": rec.provider, "model": rec.served_model
           or rec.requested_model, "status": rec.status, "error_type": rec.error_type,
           "input_tokens": rec.input_tokens, "output_tokens": rec.output_tokens,
           "cost": str(rec.cost_total), "cost_unknown": rec.cost_unknown}  # fmt: skip
    return Draft(rec.started_at, "request", rec.vk_name or "-", rec.id, redact_doc(doc))


def _plain(doc: Any) -> Any:
    """An entity as the audit keeps it: JSON values, no key hash."""
    if doc is None:
        return None
    if hasattr(doc, "model_dump"):
        doc = doc.model_dump(mode="json")
    if isinstance(doc, dict):
        return {k: v for k, v in doc.items() if k != "key_hash"}
    return doc


async def record_admin_change(store: Store, actor: str, action: str, kind: str,
                              entity_id: str, before: Any, after: Any) -> None:  # fmt: skip
    """An admin change made on the database directly (the CLI without a gateway): one entry,
    written at once and signed at once."""
    signer = await load_signer(store)
    chain = ChainWriter(store, signer, AuditConfig())
    doc = redact_doc({"action": action, "kind": kind, "id": entity_id,
                      "before": _plain(before), "after": _plain(after)})  # fmt: skip
    draft = Draft(time.time(), f"admin.{kind}.{action}", actor, entity_id, doc)
    await chain.write([draft], [], seal=True)
