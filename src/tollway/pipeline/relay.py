"""Relay an upstream response to the client: SSE event by event, with no buffering.

With a translator (the upstream speaks another dialect) every upstream event is metered
as it came, then translated, and the translation is what the client is sent.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tollway.errors import UpstreamError
from tollway.pipeline.asgi import Send
from tollway.pipeline.meter import Meter, Outcome
from tollway.providers.base import UpstreamResponse
from tollway.sse import SSEEvent
from tollway.translate import StreamTranslator, Translator

if TYPE_CHECKING:
    from tollway.pipeline.handler import Call

_CUT = "the upstream stream ended before its final event; the answer is incomplete, retry"
# Headers that describe the upstream's body, not the translated one.
_BODY_HEADERS = frozenset({b"content-type", b"content-length", b"content-encoding"})


def _is_sse(resp: UpstreamResponse) -> bool:
    for name, value in resp.headers:
        if name == b"content-type":
            return value.startswith(b"text/event-stream")
    return False


def _headers(
    resp: UpstreamResponse, translator: Translator | None, stream: bool
) -> list[tuple[bytes, bytes]]:
    if translator is None:
        return resp.headers
    kept = [(k, v) for k, v in resp.headers if k not in _BODY_HEADERS]
    return [*kept, (b"content-type", translator.content_type(stream))]


async def relay(call: Call, resp: UpstreamResponse, send: Send, meter: Meter) -> Outcome:
    """Send status, headers and body as they come; ``call.outcome`` tracks progress.

    A stream is complete once its upstream dialect's final event (``message_stop``,
    ``[DONE]``, ``response.completed``, a Gemini ``finishReason``) has been sent on,
    whatever happens to the connection after. A stream that breaks, or ends without that
    event, ends with the client dialect's error event.
    """
    outcome = call.outcome = meter.outcome(call, resp.status)
    translator = call.target.translator if call.target is not None else None
    try:
        if not (call.stream and resp.status == 200 and _is_sse(resp)):
            body = await resp.read()
            outcome.body(body)
            if translator is not None:
                ok = resp.status == 200
                body = translator.response(body) if ok else translator.error(resp.status, body)
            headers = [*_headers(resp, translator, False),
                       (b"content-length", str(len(body)).encode())]  # fmt: skip
            await send({"type": "http.response.start", "status": resp.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            outcome.complete = True
            return outcome
        await send({"type": "http.response.start", "status": resp.status,
                    "headers": _headers(resp, translator, True)})  # fmt: skip
        translating = translator.stream() if translator is not None else None
        try:
            if translating is None:
                await _stream(call, resp, send, outcome)
            else:
                await _translate(call, resp, send, outcome, translating)
        except UpstreamError as err:
            outcome.upstream_error = err.message
        tail = b""
        if translating is None:
            outcome.finish()
        elif not outcome.complete:  # the stream ended before its final event was translated
            flushed = outcome.finish()
            tail = _events(translating, flushed)
            tail += b"".join(translating.close(outcome.saw_terminal(flushed)))
        if not outcome.terminal and outcome.upstream_error is None:
            outcome.upstream_error = _CUT
        if outcome.upstream_error is not None and not outcome.terminal:
            tail += call.route.surface.stream_error(UpstreamError(outcome.upstream_error))
        await send({"type": "http.response.body", "body": tail, "more_body": False})
        outcome.complete = outcome.terminal
        return outcome
    finally:
        resp.close()


async def _stream(call: Call, resp: UpstreamResponse, send: Send, outcome: Outcome) -> None:
    async for chunk in resp.chunks():
        if outcome.ttft_ms is None:
            outcome.ttft_ms = (time.perf_counter() - call.t0) * 1000
        out = outcome.feed(chunk)
        if out:
            await send({"type": "http.response.body", "body": out, "more_body": True})
        if outcome.terminal:
            outcome.complete = True


def _events(translating: StreamTranslator, events: list[SSEEvent]) -> bytes:
    return b"".join(piece for event in events for piece in translating.feed(event))


async def _translate(
    call: Call, resp: UpstreamResponse, send: Send, outcome: Outcome, st: StreamTranslator
) -> None:
    async for chunk in resp.chunks():
        if outcome.ttft_ms is None:
            outcome.ttft_ms = (time.perf_counter() - call.t0) * 1000
        out = _events(st, outcome.events(chunk))
        if outcome.terminal:
            out += b"".join(st.close(True))  # the client dialect's own final events
        if out:
            await send({"type": "http.response.body", "body": out, "more_body": True})
        if outcome.terminal:
            outcome.complete = True
            return
