"""Metering: usage observed on the way back, priced, settled and recorded.

``Outcome`` watches one response (SSE events or a JSON body) and ``Meter.settle`` turns it
into cost, settles the admission ticket and hands a record to the background writer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

import msgspec

from tollway.accounting.cost import CostBreakdown, charged_reservation, compute_cost
from tollway.accounting.pricing import PriceBook
from tollway.accounting.usage import (
    AnthropicStreamUsage,
    GeminiStreamUsage,
    OpenAIChatStreamUsage,
    ResponsesStreamUsage,
    Usage,
    anthropic_usage,
    ensure_stream_usage,
    gemini_usage,
    is_usage_only_chunk,
    openai_chat_usage,
    responses_usage,
)
from tollway.config import ContentMode
from tollway.errors import GatewayError
from tollway.observability.metrics import Metrics
from tollway.observability.writer import LogWriter
from tollway.pipeline.admit import Admission
from tollway.pipeline.disconnect import billed_after_disconnect
from tollway.pipeline.identity import detect_client
from tollway.providers.base import ANTHROPIC, GEMINI, OPENAI_CHAT
from tollway.sse import SSEEvent, SSEParser
from tollway.storage.records import AttemptRecord, ContentRecord, RequestRecord
from tollway.surfaces.dialects import surface_for

if TYPE_CHECKING:
    from tollway.accounting.bounds import Bound
    from tollway.audit.log import AuditLog
    from tollway.audit.observe import ToolEvents
    from tollway.pipeline.handler import Call
    from tollway.pipeline.route import Target

_raw_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_encoder = msgspec.json.Encoder()
NO_USAGE = Usage()


class _StreamObserver(Protocol):
    @property
    def seen(self) -> bool: ...
    def observe(self, event: SSEEvent) -> None: ...
    def result(self, complete: bool) -> Usage: ...


def rewrite_model(body: bytes, model: str) -> bytes:
    """Change only the top-level ``model``; every other value keeps its exact bytes."""
    doc = _raw_decoder.decode(body)
    doc["model"] = msgspec.Raw(_encoder.encode(model))
    return _encoder.encode(doc)


class Outcome:
    """One response as it passes: usage observer, timing, content for the log."""

    def __init__(
        self,
        dialect: str,
        status: int,
        drop_usage_chunk: bool,
        keep: bool,
        metered: bool = True,
        is_terminal: Callable[[SSEEvent], bool] | None = None,
        tools: ToolEvents | None = None,
    ) -> None:
        self.status = status
        self.tools = tools  # the audit's tool-call events (audit/observe.py)
        self._is_terminal = is_terminal
        self.terminal = False  # the dialect's final event has been seen (e.g. message_stop)
        self.metered = metered
        self.dialect = dialect
        self.complete = False
        self.ttft_ms: float | None = None
        self.upstream_error: str | None = None
        self.usage: Usage | None = None
        self._body_read = False
        self._drop_usage = drop_usage_chunk
        self._keep = keep
        self._parts: list[bytes] = []
        self._parser = SSEParser()
        self._stream: _StreamObserver | None = None
        if status == 200 and metered:
            if dialect == ANTHROPIC:
                self._stream = AnthropicStreamUsage()
            elif dialect == OPENAI_CHAT:
                self._stream = OpenAIChatStreamUsage()
            elif dialect == GEMINI:
                self._stream = GeminiStreamUsage()
            else:
                self._stream = ResponsesStreamUsage()

    def body(self, body: bytes) -> None:
        if self._keep:
            self._parts.append(body)
        if self.tools is not None:
            self.tools.keep_body(body)
        if self.status != 200 or not self.metered:
            return
        self._body_read = True
        if self.dialect == ANTHROPIC:
            self.usage = anthropic_usage(body)
        elif self.dialect == OPENAI_CHAT:
            self.usage = openai_chat_usage(body)
        elif self.dialect == GEMINI:
            self.usage = gemini_usage(body)
        else:
            self.usage = responses_usage(body)

    def _observe(self, chunk: bytes) -> list[SSEEvent]:
        events = self._parser.feed(chunk)
        if self._stream is not None:
            for event in events:
                self._stream.observe(event)
        if self.tools is not None:
            for event in events:
                self.tools.observe(event)
        if events and self._is_terminal is not None and not self.terminal:
            # The final event is the last one a stream sends: one check per chunk.
            self.terminal = self._is_terminal(events[-1])
        return events

    def events(self, chunk: bytes) -> list[SSEEvent]:
        """Observe a chunk of the upstream's stream; returns the events it completed."""
        events = self._observe(chunk)
        if self._keep:
            self._parts.append(chunk)
        return events

    def feed(self, chunk: bytes) -> bytes:
        """Observe a chunk; returns what to send on (the chunk itself unless filtering)."""
        events = self._observe(chunk)
        if not self._drop_usage:
            if self._keep:
                self._parts.append(chunk)
            return chunk
        out = b"".join(
            b"data: " + e.data + b"\n\n" for e in events if not is_usage_only_chunk(e.data)
        )
        if self._keep:
            self._parts.append(out)
        return out

    def finish(self) -> list[SSEEvent]:
        """The stream ended: observe (and return) an event left unterminated."""
        events = self._parser.flush()
        for event in events:
            if self._stream is not None:
                self._stream.observe(event)
            if self.tools is not None:
                self.tools.observe(event)
        return events

    def saw_terminal(self, events: list[SSEEvent]) -> bool:
        """Whether the last of ``events`` (e.g. a flushed, unterminated one) is final."""
        if events and self._is_terminal is not None and not self.terminal:
            self.terminal = self._is_terminal(events[-1])
        return self.terminal

    def usage_known(self) -> bool:
        """The provider's count of the prompt has been seen (the bill is readable)."""
        if self.usage is not None:
            return True
        if self._stream is None:
            return self.status != 200 or not self.metered  # nothing to bill
        return self._stream.result(False).prompt_tokens > 0

    def final_usage(self) -> Usage:
        if self.usage is not None:
            return self.usage
        if self._stream is not None:
            return self._stream.result(self.complete)
        return NO_USAGE

    def usage_unreadable(self) -> bool:
        """A complete 200 that carried no usage the gateway could read."""
        if self.status != 200 or not self.metered or not self.complete:
            return False
        if self._body_read:
            return self.usage is None
        return self._stream is not None and not self._stream.seen

    def content(self) -> bytes:
        return b"".join(self._parts)


class Meter:
    """Prices and records every request; never awaits."""

    def __init__(
        self,
        prices: PriceBook,
        admission: Admission,
        writer: LogWriter,
        log_content: bool | ContentMode,
        metrics: Metrics,
        audit: AuditLog | None = None,
    ) -> None:
        self.audit = audit
        self.metrics = metrics
        self.prices = prices
        self.admission = admission
        self.writer = writer
        self.content_mode = _mode(log_content)

    def content_mode_of(self, call: Call) -> ContentMode:
        """The key's ``content``, else its ``log_content``, else ``logging.content``."""
        key = call.key
        if key is not None and key.content is not None:
            return key.content
        if key is not None and key.log_content is not None:
            return _mode(key.log_content)
        return self.content_mode

    def _keep_content(self, call: Call) -> bool:
        return self.content_mode_of(call) != "off"

    def upstream_body(self, call: Call, target: Target) -> bytes:
        body = call.body
        if target.translator is not None:  # the upstream's dialect asks for usage itself
            call.drop_usage_chunk = False
            return target.translator.request(body, target.model, call.stream)
        if target.model != target.requested and call.route.surface.dialect != GEMINI:
            body = rewrite_model(body, target.model)
        call_drop = False
        if call.route.surface.dialect == OPENAI_CHAT and call.stream:
            body, call_drop = ensure_stream_usage(body)
        call.drop_usage_chunk = call_drop
        return body

    def outcome(self, call: Call, status: int) -> Outcome:
        """Watches the upstream's bytes, in the upstream's dialect (usage, completeness)."""
        translator = call.target.translator if call.target is not None else None
        dialect = translator.upstream if translator is not None else call.route.surface.dialect
        tools = self.audit.observer(dialect, status) if self.audit is not None else None
        return Outcome(dialect, status, call.drop_usage_chunk, self._keep_content(call),
                       call.route.billable, surface_for(dialect).is_terminal, tools)  # fmt: skip

    def cost(self, call: Call, usage: Usage) -> CostBreakdown:
        """Priced at the request's start time, by the provider that served it."""
        target = call.target
        if target is None:
            return compute_cost(usage, None)
        at = datetime.fromtimestamp(call.started, UTC)
        return compute_cost(usage, self.prices.resolve(target.model, target.provider.name, at=at))

    def settle(self, call: Call, disconnected: bool) -> None:
        outcome = call.outcome
        usage = outcome.final_usage() if outcome is not None else NO_USAGE
        if outcome is not None and outcome.status == 200 and not outcome.complete:
            usage = usage if usage.partial else _as_partial(usage)
        if (
            disconnected
            and call.ticket is not None
            and call.route.billable
            and (outcome is None or (outcome.status == 200 and not outcome.complete))
        ):  # admitted, so the request may have reached the provider; not finished
            usage = billed_after_disconnect(usage, self._bound(call))
        cost = self.cost(call, usage)
        if outcome is not None and outcome.usage_unreadable():
            # Billed what was held for it: the most it could have cost, marked unknown.
            held = call.ticket.reservation if call.ticket is not None else None
            cost = charged_reservation(held.amount if held else None, cost.price_version)
        if call.ticket is not None:
            tokens = (
                usage.input_tokens
                + usage.output_tokens
                + usage.cache_read_tokens
                + (usage.cache_write_5m_tokens + usage.cache_write_1h_tokens)
            )
            self.admission.settle(call.ticket, cost.total, tokens)
        record = self._record(call, usage, cost, disconnected)
        self.metrics.observe(record)
        self.writer.submit(record, self._content(call))
        if self.audit is not None:
            tools = outcome.tools if outcome is not None else None
            self.audit.submit(record, call.route.surface.dialect, call.body, tools)

    def _bound(self, call: Call) -> Bound | None:
        if call.ticket is not None and call.ticket.bound is not None:
            return call.ticket.bound
        if call.target is None:
            return None
        try:
            return self.admission.worst_case(call.target, call.body, call.route.surface.dialect)
        except GatewayError:
            return None

    def _content(self, call: Call) -> ContentRecord | None:
        if call.outcome is None or not self._keep_content(call) or not call.body:
            return None
        # Raw here; the writer prepares it on its own thread.
        required = self.content_mode_of(call) == "required"
        return ContentRecord(call.id, call.started, call.body, call.outcome.content(), required)

    def _record(
        self, call: Call, usage: Usage, cost: CostBreakdown, disconnected: bool
    ) -> RequestRecord:
        key, target, outcome, err = call.key, call.target, call.outcome, call.error
        team = customer = None
        if key is not None:
            team, customer = self.admission.owners(key)
        status = err.status if err else (outcome.status if outcome else 499)
        # A stream whose terminal event was relayed is complete, whoever closes first.
        finished = outcome is not None and outcome.complete
        if disconnected and not finished:
            status = 499 if outcome is None or outcome.status == 200 else outcome.status
        ua = call.headers.get(b"user-agent", b"").decode("latin-1")
        attempts = tuple(
            AttemptRecord(call.id, i, a.started, a.provider, a.key, a.model, a.status,
                          a.latency_ms, a.error, a.reason)
            for i, a in enumerate(call.attempts)
        )  # fmt: skip
        error_type = err.anthropic_type if err else None
        if outcome is not None and outcome.upstream_error:
            error_type = "upstream_stream_error"
        elif disconnected and not finished:
            error_type = "client_disconnected"
        return RequestRecord(
            id=call.id, started_at=call.started,
            latency_ms=(time.perf_counter() - call.t0) * 1000,
            ttft_ms=outcome.ttft_ms if outcome else None,
            vk_id=key.id if key else None, vk_name=key.name if key else None,
            team_id=team.id if team else None, team_name=team.name if team else None,
            customer_id=customer.id if customer else None,
            customer_name=customer.name if customer else None,
            user_id=_header(call, b"x-tollway-user"), session_id=call.session,
            client=detect_client(ua, call.headers), surface=call.route.surface.name,
            provider=target.provider.name if target else None,
            requested_model=target.requested if target else call.model,
            endpoint=call.endpoint,
            served_model=target.model if target else None,
            status=status, error_type=error_type,
            error_message=err.message if err else outcome.upstream_error if outcome else None,
            stream=call.stream, partial=usage.partial,
            retries=max(0, len(call.attempts) - 1), fallback_index=call.fallback_index,
            routing_rule=call.rule,
            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_5m_tokens=usage.cache_write_5m_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost_input=cost.input, cost_output=cost.output, cost_cache_read=cost.cache_read,
            cost_cache_write_5m=cost.cache_write_5m, cost_cache_write_1h=cost.cache_write_1h,
            cost_reasoning=cost.reasoning, cost_server_tools=cost.server_tools,
            cost_total=cost.total, cost_unknown=cost.unknown and call.outcome is not None
            and call.outcome.status == 200,
            cost_estimated=cost.estimated, web_searches=usage.web_searches,
            simulated=target is not None and getattr(target.provider, "simulated", False),
            price_version=cost.price_version, service_tier=cost.service_tier,
            attempts=attempts, translation=_translation(target),
        )  # fmt: skip


def _translation(target: Target | None) -> str | None:
    translator = target.translator if target is not None else None
    if translator is None:
        return None
    pair = f"{translator.client}>{translator.upstream}"
    return f"{pair} dropped: {', '.join(translator.dropped)}" if translator.dropped else pair


def _mode(setting: bool | ContentMode) -> ContentMode:
    if setting is True:
        return "best_effort"
    return "off" if setting is False else setting


def _header(call: Call, name: bytes) -> str | None:
    value = call.headers.get(name)
    return value.decode("latin-1") if value else None


def _as_partial(usage: Usage) -> Usage:
    return replace(usage, partial=True)
