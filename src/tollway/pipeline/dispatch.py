"""Dispatch: a request's attempts, with failover before the first byte.

The router's candidates (pipeline/route.py) are expanded into (target, key) tries: each
provider's keys in weighted order (the session's pinned key first), without the open
circuits (routing/breaker.py) unless every circuit is open. Every try runs through one
middleware chain::

    breaker -> deadline -> prime -> provider.send

``breaker`` records the outcome per (provider, key, model), ``deadline`` bounds all tries
together (``routing.retry.deadline_s``), ``prime`` reads a stream's first chunk
(or a whole body) before anything is committed, so a stream that dies before its first
byte still fails over. A 429, 408, 5xx or 529, a timeout or a connection error moves on to
the next try while tries remain (``max_attempts``), the provider's retry tokens allow it
(routing/balance.py), the deadline has not passed and the client is still there.
Once a byte has been sent to the client nothing is retried: the relay carries the stream
to its end, or ends it with the dialect's error event.

A try on another target (provider or model) first rebooks the budget reservation for
that target's worst case (``Admission.rebook``), so the model that answers is covered;
one settlement follows, in the handler's ``finally``. Each try is logged with its reason.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tollway.errors import (
    BudgetExceeded,
    GatewayError,
    NoProviderAvailable,
    PermissionDenied,
    UpstreamError,
    UpstreamTimeout,
)
from tollway.pipeline.asgi import ClientDisconnected, Send
from tollway.pipeline.attempt import Attempt
from tollway.pipeline.relay import relay
from tollway.pipeline.route import Plan, Target
from tollway.providers.base import KeyChoice, UpstreamRequest, UpstreamResponse, key_order
from tollway.routing.balance import Affinity, Pin, RetryBudget
from tollway.routing.breaker import Breakers, Circuit
from tollway.routing.settings import RoutingConfig
from tollway.translate import upstream_headers

if TYPE_CHECKING:
    from tollway.pipeline.admit import Admission
    from tollway.pipeline.handler import Call
    from tollway.pipeline.meter import Meter, Outcome
    from tollway.pipeline.slots import SlotGate

log = logging.getLogger("tollway.routing")
# Statuses after which another key or provider may answer (and every 5xx).
RETRYABLE = frozenset({408, 429, 500, 502, 503, 504, 529})


def retryable(status: int) -> bool:
    return status in RETRYABLE or status >= 500


@dataclass(slots=True)
class Try:
    """One attempt as it goes down the chain."""

    target: Target
    key: KeyChoice
    request: UpstreamRequest
    stream: bool
    deadline: float  # loop time
    circuit: Circuit
    why: str


Next = Callable[[Try], Awaitable[UpstreamResponse]]
Middleware = Callable[[Try, Next], Awaitable[UpstreamResponse]]


def compose(middlewares: Sequence[Middleware], terminal: Next) -> Next:
    """``compose([a, b], send)(t)`` runs ``a(t, b-then-send)``."""
    chain = terminal
    for middleware in reversed(middlewares):
        chain = _bind(middleware, chain)
    return chain


def _bind(middleware: Middleware, after: Next) -> Next:
    async def run(attempt: Try) -> UpstreamResponse:
        return await middleware(attempt, after)

    return run


class Buffered:
    """A response read before commit: the whole body, or the first chunk and the rest."""

    def __init__(
        self, resp: UpstreamResponse, body: bytes | None,
        rest: AsyncIterator[bytes] | None = None,
    ) -> None:  # fmt: skip
        self._resp = resp
        self.status = resp.status
        self.headers = resp.headers
        self._body = body
        self._rest = rest

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._body:
            yield self._body
        if self._rest is not None:
            async for chunk in self._rest:
                yield chunk

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    def close(self) -> None:
        self._resp.close()


def _is_sse(resp: UpstreamResponse) -> bool:
    for name, value in resp.headers:
        if name == b"content-type":
            return value.startswith(b"text/event-stream")
    return False


def _retry_after(resp: UpstreamResponse) -> float | None:
    for name, value in resp.headers:
        if name == b"retry-after":
            try:
                seconds = float(value)
            except ValueError:
                return None
            return seconds if 0 < seconds < 86_400 else None
    return None


@dataclass(slots=True)
class _Failure:
    """The last failure, answered to the client when no try succeeds; and what the
    ticket holds a reservation for (None once freed by a rebooking that did not fit)."""

    booked: tuple[str, str] | None
    response: Buffered | None = None
    target: Target | None = None
    error: GatewayError | None = None
    skipped: list[str] = field(default_factory=list)


class Dispatcher:
    """``await dispatcher.dispatch(call, plan, scope, send, gone)``; owns the breakers,
    the session pins and the retry tokens of one gateway."""

    def __init__(
        self,
        settings: RoutingConfig,
        meter: Meter,
        admission: Admission,
        slots: SlotGate,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.meter = meter
        self.admission = admission
        self.slots = slots
        self.rng = rng or random.Random()
        self.clock = clock
        self.breakers = Breakers(settings.breaker)
        self.affinity = Affinity(settings.affinity)
        self.budget = RetryBudget(settings.retry)
        self._chain = compose([self._breaker, self._deadline, self._prime], self._send)

    def pinned(self, call: Call) -> tuple[str, str] | None:
        pin = self._pin(call)
        return (pin.provider, pin.model) if pin is not None else None

    def _pin(self, call: Call) -> Pin | None:
        if call.key is None:
            return None
        return self.affinity.get(call.key.id, call.session, self.clock())

    def tries(self, call: Call, plan: Plan) -> list[tuple[Target, KeyChoice, str, int]]:
        """Every (target, key, why, candidate index) in the order they would be tried."""
        pin = self._pin(call)
        now = self.clock()
        healthy: list[tuple[Target, KeyChoice, str, int]] = []
        cooling: list[tuple[float, int, tuple[Target, KeyChoice, str, int]]] = []
        for index, candidate in enumerate(plan.candidates):
            target = candidate.target
            provider = target.provider
            keys = key_order(provider.keys, self.rng) if len(provider.keys) > 1 else provider.keys
            if pin is not None and pin.provider == provider.name and pin.model == target.model:
                keys = sorted(keys, key=lambda k: k.name != pin.key)  # stable: pinned first
            for key in keys:
                entry = (target, key, candidate.why, index)
                circuit = (provider.name, key.name, target.model)
                if self.breakers.state(circuit, now) == "open":
                    cooling.append((self.breakers.reopens_at(circuit), len(cooling), entry))
                else:
                    healthy.append(entry)
        if healthy:  # a cooling circuit is not tried while a healthy one is left
            return healthy
        cooling.sort(key=lambda c: (c[0], c[1]))
        return [(t, k, f"{why}; every circuit is open, the soonest to reopen first", i)
                for _, _, (t, k, why, i) in cooling]  # fmt: skip

    async def dispatch(
        self, call: Call, plan: Plan, method: str, query: bytes,
        headers: list[tuple[str, str]], send: Send, gone: Callable[[], bool],
    ) -> Outcome:  # fmt: skip
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.retry.deadline_s
        first = call.target
        failure = _Failure((first.provider.name, first.model) if first is not None else None)
        made = 0
        for target, key, why, index in self.tries(call, plan):
            if made >= self.settings.retry.max_attempts:
                failure.skipped.append(f"{target.provider.name}/{key.name}: max_attempts reached")
                break
            if gone():
                raise ClientDisconnected()
            if loop.time() >= deadline:
                failure.error = failure.error or UpstreamTimeout(self._late(made))
                break
            name = target.provider.name
            if not self._book(call, target, failure):
                continue
            if made and not self.budget.spend(name, self.clock()):
                failure.skipped.append(f"{name}: its retry budget is spent")
                continue
            request = self._request(call, target, method, query, headers)
            attempt = Try(target, key, request, call.stream, deadline,
                          (name, key.name, target.model), why)  # fmt: skip
            if not made:
                self.budget.earn(name, self.clock())
            made += 1
            resp = await self._attempt(call, attempt, failure)
            if resp is None:
                continue
            call.target, call.fallback_index = target, index
            if 200 <= resp.status < 300 and call.key is not None:
                self.affinity.set(call.key.id, call.session,
                                  Pin(name, key.name, target.model, self.clock()))  # fmt: skip
            return await relay(call, resp, send, self.meter)
        return await self._give_up(call, failure, send, made)

    async def _attempt(self, call: Call, attempt: Try, failure: _Failure) -> Buffered | None:
        """One try; the response to relay, or None to go on (the failure recorded)."""
        started, t = time.time(), time.perf_counter()
        target = attempt.target
        try:
            resp = await self._chain(attempt)
        except UpstreamError as err:
            self._log(call, attempt, 0, started, t, err.anthropic_type, f"{attempt.why}: "
                      f"{err.message}")  # fmt: skip
            failure.response, failure.error, failure.target = None, err, target
            return None
        except asyncio.CancelledError:
            self._log(call, attempt, 0, started, t, "client_disconnected",
                      f"{attempt.why}: cancelled, the client left")  # fmt: skip
            raise
        assert isinstance(resp, Buffered)
        status = resp.status
        more = retryable(status)
        self._log(call, attempt, status, started, t, None,
                  f"{attempt.why}: {status}" if more else attempt.why)  # fmt: skip
        if not more:
            if failure.response is not None:
                failure.response.close()
            return resp
        if failure.response is not None:
            failure.response.close()
        failure.response, failure.error, failure.target = resp, None, target
        return None

    async def _give_up(self, call: Call, failure: _Failure, send: Send, made: int) -> Outcome:
        if failure.response is not None and failure.target is not None:
            call.target = failure.target
            return await relay(call, failure.response, send, self.meter)
        if failure.error is not None:
            raise failure.error
        why = "; ".join(failure.skipped) or "no provider key to try"
        raise NoProviderAvailable(f"no upstream could be tried for this request ({why})")

    def _late(self, made: int) -> str:
        return (f"no upstream answered within routing.retry.deadline_s "
                f"({self.settings.retry.deadline_s:g} s) over {made} attempt(s)")  # fmt: skip

    def _book(self, call: Call, target: Target, failure: _Failure) -> bool:
        """Reserve for ``target`` when the ticket was for another provider or model."""
        if call.key is None or call.ticket is None:
            return True
        wanted = (target.provider.name, target.model)
        if failure.booked == wanted:
            call.target = target
            return True
        caps = self.admission.provider_caps(call.key, target.provider.name)
        hold = self.slots.try_take(caps) if caps else None
        if caps and hold is None:
            failure.skipped.append(f"{target.provider.name}: at its concurrency limit")
            return False
        try:
            ticket = self.admission.rebook(call.ticket, call.key, target, call.body,
                                           call.route.surface.dialect, call.session,
                                           call.route.billable)  # fmt: skip
        except (BudgetExceeded, PermissionDenied) as err:
            failure.booked = None  # the old reservation is freed
            if hold is not None:
                self.slots.release(hold)
            failure.skipped.append(f"{target.provider.name}/{target.model}: {err.message}")
            log.info("request %s: fallback %s/%s skipped: %s", call.id, target.provider.name,
                     target.model, err.message)  # fmt: skip
            return False
        if hold is not None:
            call.holds.append(hold)
        call.ticket, call.target, failure.booked = ticket, target, wanted
        if ticket.body is not None:
            call.body = ticket.body
        return True

    def _request(
        self, call: Call, target: Target, method: str, query: bytes, headers: list[tuple[str, str]]
    ) -> UpstreamRequest:
        translator = target.translator
        if translator is None:
            # Paths that carry the model ({model}, Gemini's) name the one the upstream sees.
            path = call.route.path.replace("{model}", target.model)
            body, dialect = self.meter.upstream_body(call, target), call.route.surface.dialect
        else:  # another dialect: its path (first: it says what request() builds), no query
            full = translator.upstream_path(call.route.kind, target.model, call.stream)
            body = self.meter.upstream_body(call, target)
            path, _, rest = full.partition("?")
            query, headers = rest.encode(), upstream_headers(translator, headers)
            dialect = translator.upstream
        return UpstreamRequest(dialect=dialect, method=method, path=path, query=query,
                               headers=headers, body=body, stream=call.stream,
                               model=target.model)  # fmt: skip

    def _log(
        self, call: Call, attempt: Try, status: int, started: float, t: float,
        error: str | None, reason: str,
    ) -> None:  # fmt: skip
        latency = (time.perf_counter() - t) * 1000
        call.attempts.append(Attempt(attempt.target.provider.name, attempt.key.name,
                                     attempt.target.model, status, started, latency, error,
                                     reason))  # fmt: skip

    # -- the chain

    async def _deadline(self, attempt: Try, after: Next) -> UpstreamResponse:
        try:
            async with asyncio.timeout_at(attempt.deadline):
                return await after(attempt)
        except TimeoutError:
            raise UpstreamTimeout(
                f"provider {attempt.target.provider.name} did not answer before the "
                f"routing deadline (routing.retry.deadline_s "
                f"{self.settings.retry.deadline_s:g} s)"
            ) from None

    async def _breaker(self, attempt: Try, after: Next) -> UpstreamResponse:
        circuit = attempt.circuit
        self.breakers.begin(circuit, self.clock())
        try:
            resp = await after(attempt)
        except UpstreamError as err:
            self.breakers.failure(circuit, self.clock(), err.message)
            raise
        if retryable(resp.status):
            retry = _retry_after(resp) if resp.status == 429 else None
            self.breakers.failure(circuit, self.clock(), f"status {resp.status}", retry)
        elif 200 <= resp.status < 300:
            self.breakers.success(circuit)
        return resp

    async def _prime(self, attempt: Try, after: Next) -> UpstreamResponse:
        resp = await after(attempt)
        try:
            if not (attempt.stream and resp.status == 200 and _is_sse(resp)):
                return Buffered(resp, await resp.read())
            rest = aiter(resp.chunks())
            try:
                first = await anext(rest)
            except StopAsyncIteration:
                raise UpstreamError(
                    f"provider {attempt.target.provider.name} ended its stream before the "
                    "first byte"
                ) from None
            return Buffered(resp, first, rest)
        except BaseException:
            resp.close()
            raise

    async def _send(self, attempt: Try) -> UpstreamResponse:
        return await attempt.target.provider.send(attempt.request, attempt.key)
