"""Relay an upstream response to the client: SSE event by event, with no buffering."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tollway.errors import UpstreamError
from tollway.pipeline.asgi import Send
from tollway.pipeline.meter import Meter, Outcome
from tollway.providers.base import UpstreamResponse

if TYPE_CHECKING:
    from tollway.pipeline.handler import Call

_CUT = "the upstream stream ended before its final event; the answer is incomplete, retry"


def _is_sse(resp: UpstreamResponse) -> bool:
    for name, value in resp.headers:
        if name == b"content-type":
            return value.startswith(b"text/event-stream")
    return False


async def relay(call: Call, resp: UpstreamResponse, send: Send, meter: Meter) -> Outcome:
    """Send status, headers and body as they come; ``call.outcome`` tracks progress.

    A stream is complete once its dialect's final event (``message_stop``, ``[DONE]``,
    ``response.completed``) has been sent on, whatever happens to the connection after.
    A stream that breaks, or ends without that event, ends with the dialect's error event.
    """
    outcome = call.outcome = meter.outcome(call, resp.status)
    try:
        if not (call.stream and resp.status == 200 and _is_sse(resp)):
            body = await resp.read()
            outcome.body(body)
            headers = [*resp.headers, (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": resp.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            outcome.complete = True
            return outcome
        await send({"type": "http.response.start", "status": resp.status, "headers": resp.headers})
        try:
            await _stream(call, resp, send, outcome)
        except UpstreamError as err:
            outcome.upstream_error = err.message
        else:
            if not outcome.terminal:
                outcome.upstream_error = _CUT
        if outcome.upstream_error is not None and not outcome.complete:
            event = call.route.surface.stream_error(UpstreamError(outcome.upstream_error))
            await send({"type": "http.response.body", "body": event, "more_body": True})
        tail = outcome.finish()
        await send({"type": "http.response.body", "body": tail, "more_body": False})
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
