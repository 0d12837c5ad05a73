"""One request's path: authenticate, route, admit, dispatch, relay, settle.

Everything on this path is in memory; the only awaits are the client and the upstream.
Settlement runs in ``finally`` and never awaits, so a cancelled request is still settled.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tollway.accounting.bounds import RequestBody, decode_body
from tollway.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    Overloaded,
    RateLimited,
    RequestTimeout,
)
from tollway.governance.entities import KeyRecord, hash_key
from tollway.pipeline.admit import Admission, Ticket
from tollway.pipeline.asgi import (
    BodyBytes,
    ClientDisconnected,
    Receive,
    Scope,
    Send,
    peek_model,
    read_body,
    respond,
)
from tollway.pipeline.attempt import Attempt
from tollway.pipeline.disconnect import Departure, DisconnectPolicy
from tollway.pipeline.dispatch import Dispatcher
from tollway.pipeline.identity import SESSION_HEADERS, detect_client, find_key
from tollway.pipeline.meter import Meter, Outcome
from tollway.pipeline.registry import Registry
from tollway.pipeline.route import Plan, Router, Target
from tollway.pipeline.slots import SlotGate, SlotHold
from tollway.providers.base import OPENAI_RESPONSES
from tollway.routing.rules import Facts, estimate_tokens
from tollway.routing.settings import RoutingConfig
from tollway.surfaces.base import RequestFields, Route, read_fields

log = logging.getLogger("tollway.gateway")

# Request headers that are about the hop or the credential, never forwarded upstream.
_DROP_REQUEST = frozenset(
    {b"host", b"content-length", b"connection", b"keep-alive", b"transfer-encoding", b"te",
     b"trailer", b"upgrade", b"proxy-authorization", b"proxy-connection", b"accept-encoding",
     b"x-api-key", b"authorization", b"api-key", b"x-goog-api-key", b"x-tollway-user"}
)  # fmt: skip
_NO_KEY = (
    "no virtual key was sent: set ANTHROPIC_API_KEY (or send x-api-key / "
    "Authorization: Bearer) to a Tollway virtual key; create one with `tollway keys create`"
)


@dataclass(slots=True)
class Call:
    """What one request accumulates on its way through, for settlement and the log."""

    id: str
    route: Route
    started: float
    t0: float
    headers: dict[bytes, bytes]
    key: KeyRecord | None = None
    target: Target | None = None
    ticket: Ticket | None = None
    stream: bool = False
    session: str | None = None
    drop_usage_chunk: bool = False
    body: bytes = b""
    attempts: list[Attempt] = field(default_factory=list)
    plan: Plan | None = None
    rule: str | None = None  # the routing rule that fired
    fallback_index: int = 0  # the served candidate's place in the plan (0: the primary)
    outcome: Outcome | None = None
    error: GatewayError | None = None
    model: str | None = None  # as the body named it, kept even when the request is refused
    endpoint: str = ""  # the path the client called
    holds: list[SlotHold] = field(default_factory=list)


class Gateway:
    """Holds the request path's collaborators; ``await gateway.handle(route, scope, ...)``."""

    def __init__(
        self,
        *,
        registry: Registry,
        router: Router,
        admission: Admission,
        meter: Meter,
        max_body_bytes: int,
        rng: random.Random | None = None,
        slots: SlotGate | None = None,
        concurrency_wait_s: float = 5.0,
        body_timeout_s: float = 60.0,
        body_bytes: BodyBytes | None = None,
        routing: RoutingConfig | None = None,
    ) -> None:
        self.registry = registry
        self.router = router
        self.admission = admission
        self.meter = meter
        self.max_body_bytes = max_body_bytes
        self.rng = rng or random.Random()
        self.disconnects = DisconnectPolicy()
        self.slots = slots or SlotGate()
        self.concurrency_wait_s = concurrency_wait_s
        self.body_timeout_s = body_timeout_s
        self.body_bytes = body_bytes or BodyBytes(4 * max_body_bytes)
        self.dispatcher = Dispatcher(routing or RoutingConfig(), meter, admission, self.slots,
                                     self.rng)  # fmt: skip
        # Request ids: a random per-process prefix and a counter (no syscall per request).
        self._id_prefix = "req_" + secrets.token_hex(6)
        self._ids = itertools.count(1)

    def _next_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):012x}"

    def lookup(self, raw: list[tuple[bytes, bytes]]) -> KeyRecord:
        """The key the headers name, usable or not; 401 when none is sent or known."""
        secret = find_key(raw)
        if secret is None:
            raise AuthenticationFailed(_NO_KEY)
        key = self.registry.snapshot.keys_by_hash.get(hash_key(secret))
        if key is None:
            raise AuthenticationFailed(
                "the virtual key is not known to this gateway: check ANTHROPIC_API_KEY "
                "(or your client's API key setting) against `tollway keys list`"
            )
        return key

    def authenticate(
        self, headers: Mapping[bytes, bytes], raw: list[tuple[bytes, bytes]]
    ) -> KeyRecord:
        return _usable(self.lookup(raw))

    async def handle(self, route: Route, scope: Scope, receive: Receive, send: Send) -> None:
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        call = Call(
            id=self._next_id(),
            route=route,
            started=time.time(),
            t0=time.perf_counter(),
            headers=dict(raw_headers),
            endpoint=scope["path"],
        )
        call.session = self.session_of(call.headers)
        task = asyncio.current_task()
        watcher: asyncio.Task[None] | None = None
        departure: Departure | None = None
        disconnected = False
        try:
            # The key and its concurrency slot come from the headers: a caller without a
            # valid key, or past its limit, never makes the gateway buffer a body.
            try:
                call.key = self.lookup(raw_headers)  # a revoked key is still named in the log
                _usable(call.key)
            except AuthenticationFailed:
                call.model = await peek_model(receive)
                raise
            await self._take(call, self.admission.key_caps(call.key))
            await self._content_room(call)
            call.body = await self._read_body(receive)
            doc: RequestBody | None
            try:  # one parse for routing and admission's bound
                doc = decode_body(call.body)
            except (InvalidRequest, RecursionError):
                # A body the bound cannot type: its routing fields may still be readable
                # (a key without a budget never needs the bound); else read_fields' 400.
                doc = None
            fields: RequestFields | RequestBody = doc or read_fields(call.body)
            call.model = route.model or fields.model
            call.stream = bool(fields.stream) if route.stream is None else route.stream
            call.plan = self.router.plan(
                call.model, route.surface.dialect, call.key, self.facts(call), self.rng,
                self.dispatcher.pinned(call),
            )  # fmt: skip
            call.rule = call.plan.rule
            call.target = call.plan.candidates[0].target
            await self._take(
                call, self.admission.provider_caps(call.key, call.target.provider.name)
            )
            call.ticket = self.admission.admit(
                call.key, call.target, call.body, route.surface.dialect, call.session,
                billable=route.billable, doc=doc,
            )  # fmt: skip
            if call.ticket.body is not None:  # output cap shrunk to fit the budget
                call.body = call.ticket.body
            watcher = asyncio.create_task(_wait_disconnect(receive))
            if task is not None:
                # A client that leaves is billed: the upstream is kept until its usage shows.
                departure = self.disconnects.watch(call, task)
                watcher.add_done_callback(departure.left)
                send = departure.send(send)
            call.outcome = await self.dispatcher.dispatch(
                call, call.plan, scope["method"], scope.get("query_string", b""),
                _forward_headers(scope["headers"]), send,
                _leaving(departure),
            )  # fmt: skip
        except GatewayError as err:
            call.error = err
            await _send_error(route, send, err, call.headers)
        except ClientDisconnected:
            disconnected = True
        except asyncio.CancelledError:
            if watcher is None or not watcher.done() or task is None:
                raise
            task.uncancel()
            disconnected = True
        except Exception:  # a bug: answered in the client's dialect and logged, not a bare 500
            log.exception("request %s failed inside the gateway", call.id)
            call.error = GatewayError(
                f"the gateway failed on this request (request id {call.id}); the error is in "
                "its log: retry, and report the id if it happens again"
            )
            if call.outcome is not None:  # the response has begun: it cannot be replaced
                raise
            await _send_error(route, send, call.error, call.headers)
        finally:
            if departure is not None:
                departure.close()
            if watcher is not None and not watcher.done():
                if departure is not None:
                    watcher.remove_done_callback(departure.left)
                watcher.cancel()
            for hold in call.holds:
                self.slots.release(hold)
            self.body_bytes.release(len(call.body))
            self.meter.settle(call, disconnected)

    async def refuse(self, route: Route, scope: Scope, send: Send, err: GatewayError) -> None:
        """Answer a request the gateway cannot route (an unknown path), and log it."""
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        call = Call(id=self._next_id(), route=route, started=time.time(), t0=time.perf_counter(),
                    headers=dict(raw_headers), endpoint=scope["path"])  # fmt: skip
        call.session = self.session_of(call.headers)
        secret = find_key(raw_headers)
        if secret is not None:
            call.key = self.registry.snapshot.keys_by_hash.get(hash_key(secret))
        call.error = err
        try:
            await _send_error(route, send, err, call.headers)
        finally:
            self.meter.settle(call, False)

    async def _take(self, call: Call, caps: list[tuple[str, int]]) -> None:
        """Wait (bounded) for a concurrency slot at every level that limits it."""
        if not caps:
            return
        hold = await self.slots.take(caps, self.concurrency_wait_s)
        if hold is None:
            busy = next((s for s, cap in caps if self.slots.in_flight(s) >= cap), caps[0][0])
            cap = dict(caps)[busy]
            raise RateLimited(
                f"concurrency limit of {self.admission.describe(busy)}: at most {cap} "
                f"request{'s' if cap != 1 else ''} at once, and none finished within "
                f"{self.concurrency_wait_s:g} s; retry shortly, or ask your gateway admin to "
                "raise the limit",
                retry_after=1,
            )
        call.holds.append(hold)

    async def _content_room(self, call: Call) -> None:
        """Back-pressure (observability/writer.py): a key whose every body must be stored
        waits while the content backlog is past capacity, and is refused if it stays so."""
        if self.meter.content_mode_of(call) != "required":
            return
        if not await self.meter.writer.room(self.concurrency_wait_s):
            key = call.key.name if call.key is not None else "this key"
            raise Overloaded(
                f"the request log is past capacity and key {key} must have every request "
                f"body stored; it did not drain within {self.concurrency_wait_s:g} s; "
                "retry shortly"
            )

    async def _read_body(self, receive: Receive) -> bytes:
        try:
            async with asyncio.timeout(self.body_timeout_s):
                return await read_body(receive, self.max_body_bytes, self.body_bytes)
        except TimeoutError:
            raise RequestTimeout(
                f"the request body did not arrive within {self.body_timeout_s:g} s; "
                "check the connection and send the request again"
            ) from None

    def session_of(self, headers: Mapping[bytes, bytes]) -> str | None:
        for name in SESSION_HEADERS:
            value = headers.get(name)
            if value:
                return value.decode("latin-1")
        return None

    def facts(self, call: Call) -> Facts | None:
        """What routing rules look at; None when there are no rules to look."""
        if not self.router.rules.rules or call.key is None or not call.model:
            return None
        return self.facts_of(call.key, call.model, call.headers, call.body)

    def facts_of(
        self, key: KeyRecord, model: str, raw: Mapping[bytes, bytes], body: bytes
    ) -> Facts:
        team, customer = self.admission.owners(key)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw.items()}
        ua = headers.get("user-agent", "")
        return Facts(
            model=model, headers=headers, client=detect_client(ua, dict(raw)),
            tokens=estimate_tokens(body), key=key.name,
            team=team.name if team else None, customer=customer.name if customer else None,
            budget_used_pct=lambda: self.budget_used_pct(key),
        )  # fmt: skip

    def budget_used_pct(self, key: KeyRecord) -> float | None:
        """The fullest of the key's, its team's and its customer's budgets, in percent."""
        fullest: float | None = None
        for status in self.admission.statuses(key):
            if status.scope.startswith("pc:"):
                continue
            limit = status.limit + status.credit
            used = 100.0 if limit <= 0 else float((status.spent + status.reserved) / limit * 100)
            fullest = used if fullest is None else max(fullest, used)
        return fullest


def _leaving(departure: Departure | None) -> Callable[[], bool]:
    """Whether the client has gone (nothing more is tried for a client that left)."""
    if departure is None:
        return lambda: False
    return lambda: departure.gone


def _usable(key: KeyRecord) -> KeyRecord:
    why = key.usable(now_utc())
    if why is not None:
        raise AuthenticationFailed(
            f"{why} (virtual key {key.name!r}); ask your gateway admin for a new key"
        )
    return key


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _send_error(
    route: Route, send: Send, err: GatewayError, headers: Mapping[bytes, bytes]
) -> None:
    raw = [(k.encode(), v.encode()) for k, v in err.headers.items()]
    status = _wire_status(route, err, headers)
    if status != err.status:
        raw.append((b"x-tollway-status", str(err.status).encode()))
    with contextlib.suppress(OSError, RuntimeError):
        await respond(send, status, route.surface.error_body(err), headers=raw)


def _wire_status(route: Route, err: GatewayError, headers: Mapping[bytes, bytes]) -> int:
    """The status to send. Codex CLI retries every status but 400 and quota 429s five
    times and ignores ``x-should-retry``; a final answer (401, 402, 403) goes to it as 400,
    which it shows with the message at once. The log keeps the real status."""
    final = err.headers.get("x-should-retry") == "false" and err.status in (401, 402, 403)
    if final and route.surface.dialect == OPENAI_RESPONSES:
        ua = headers.get(b"user-agent", b"").decode("latin-1")
        if detect_client(ua, dict(headers)) == "codex":
            return 400
    return err.status


def _forward_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    out = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw if k not in _DROP_REQUEST]
    out.append(("accept-encoding", "gzip, deflate"))
    return out


def now_utc() -> datetime:
    return datetime.now(UTC)
