"""A client that goes away is still billed: the gateway keeps the upstream until the
response shows its usage (within a bound), then cancels; input plus output delivered,
marked partial. Real sockets: the gateway runs as a subprocess, the client hangs up."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import GatewayServer, start_gateway
from tollway.accounting.bounds import read_shape, request_bound
from tollway.accounting.cost import compute_cost
from tollway.accounting.limits import model_limits
from tollway.accounting.pricing import PriceBook
from tollway.accounting.usage import Usage
from upstream_mock import SSE, MockUpstream, Reply, anthropic_events, chat_events

pytestmark = pytest.mark.timeout(120)
BOOK = PriceBook()
USAGE = {"input_tokens": 5000, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0,
         "output_tokens": 700}  # fmt: skip


def _hang_up_after(gw: GatewayServer, key: str, path: str, body: bytes, wait: float) -> None:
    """Send a request on a raw socket and close it ``wait`` seconds later, unread."""
    host, port = gw.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = (f"POST {path} HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
                f"x-api-key: {key}\r\nauthorization: Bearer {key}\r\n"
                f"content-length: {len(body)}\r\n\r\n")  # fmt: skip
        sock.sendall(head.encode() + body)
        time.sleep(wait)


def _record(gw: GatewayServer, key_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(f"{gw.base_url}/api/logs", params={"key": key_id},
                      headers=gw.admin_headers())  # fmt: skip
        rows = r.json()["data"]
        if rows:
            return dict(rows[0])
        time.sleep(0.2)
    raise AssertionError(f"no record\n{gw.logs()}")


def test_disconnect_before_the_first_event_is_billed_for_input_and_delivered(
    tmp_path: Path,
) -> None:
    body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 1000, "stream": True,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()  # fmt: skip
    with MockUpstream() as mock:
        events = anthropic_events("word " * 50, model="claude-sonnet-4-5", usage=USAGE)
        events[0] = replace(events[0], delay=1.5)  # message_start long after the client left
        mock.enqueue(Reply(events=events, event_delay=0.3))
        gw = start_gateway(mock, tmp_path)
        try:
            created = gw.create_key("gone")
            _hang_up_after(gw, created["key"], "/v1/messages", body, 0.3)
            served = mock.wait_disconnect(15)
            assert served is not None, gw.logs()
            # The upstream was kept until message_start (its usage), then cancelled.
            assert b"message_start" in served.reply_body and not served.completed
            assert served.disconnect.is_set()
            record = _record(gw, created["id"])
        finally:
            gw.stop()
    assert record["status"] == 499 and record["partial"]
    assert record["error_type"] == "client_disconnected"
    assert record["tokens"]["input"] == 5000
    price = BOOK.lookup("claude-sonnet-4-5")
    billed = compute_cost(Usage(5000, record["tokens"]["output"]), price).total
    assert Decimal(record["cost"]["total"]) == billed > 0


def test_usage_that_never_comes_is_billed_at_the_input_bound(tmp_path: Path) -> None:
    """An OpenAI stream carries usage only at its end, so waiting for it would let the
    provider generate (and bill) everything: the upstream is cancelled at once and the
    input billed at its proven bound, never $0."""
    doc = {"model": "gpt-5", "stream": True, "max_completion_tokens": 500,
           "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    body = json.dumps(doc).encode()
    with MockUpstream() as mock:
        events = [SSE(e.data, e.event, delay=1.0) for e in chat_events("a b c d e f g h i j")]
        mock.enqueue(Reply(events=events))
        gw = start_gateway(mock, tmp_path)
        try:
            created = gw.create_key("gone")
            _hang_up_after(gw, created["key"], "/v1/chat/completions", body, 0.2)
            served = mock.wait_disconnect(5)  # well before the 20 s bound
            assert served is not None and not served.completed, gw.logs()
            assert served.events_sent <= 2
            record = _record(gw, created["id"])
        finally:
            gw.stop()
    price = BOOK.lookup("gpt-5")
    assert price is not None
    bound = request_bound(read_shape(body, "openai_chat"), price, model_limits("gpt-5"))
    assert record["status"] == 499 and record["partial"]
    assert record["tokens"]["input"] == bound.input_tokens
    assert Decimal(record["cost"]["total"]) >= bound.input_tokens * price.rates.input / 10**6 > 0
