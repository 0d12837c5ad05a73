"""Relay an upstream response to the client: SSE event by event, with no buffering."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tollway.errors import UpstreamError
from tollway.pipeline.asgi import Send
from tollway.pipeline.meter import Meter, Outcome
from tollway.providers.base import ANTHROPIC, UpstreamResponse

if TYPE_CHECKING:
    from tollway.pipeline.handler import Call

_STREAM_ERROR = (
    b'event: error\ndata: {"type":"error","error":{"type":"api_error",'
    b'"message":"the upstream stream broke before it finished; retry the request"}}\n\n'
)


def _is_sse(resp: UpstreamResponse) -> bool:
    for name, value in resp.headers:
        if name == b"content-type":
            return value.startswith(b"text/event-stream")
    return False


async def relay(call: Call, resp: UpstreamResponse, send: Send, meter: Meter) -> Outcome:
    """Send status, headers and body as they come; ``call.outcome`` tracks progress."""
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
            async for chunk in resp.chunks():
                if outcome.ttft_ms is None:
                    outcome.ttft_ms = (time.perf_counter() - call.t0) * 1000
                out = outcome.feed(chunk)
                if out:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
        except UpstreamError as err:
            outcome.upstream_error = err.message
            if call.route.surface.dialect == ANTHROPIC:
                await send({"type": "http.response.body", "body": _STREAM_ERROR, "more_body": True})
        else:
            outcome.complete = True
        tail = outcome.finish()
        await send({"type": "http.response.body", "body": tail, "more_body": False})
        return outcome
    finally:
        resp.close()
