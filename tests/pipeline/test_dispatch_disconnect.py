"""A client that leaves stops the failover: the try in flight is cancelled (or, for an
Anthropic stream, kept only until its usage could show) and no further try starts.
Real sockets: the gateway runs as a subprocess and the client hangs up."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from dispatch_helpers import B1, P1, P2, by_key, sent_with

from conftest import GatewayServer, start_gateway
from upstream_mock import MockUpstream, Reply, anthropic_error

pytestmark = pytest.mark.timeout(120)


def _extra(mock: MockUpstream) -> dict[str, Any]:
    return {
        "providers": {
            "primary": {"type": "anthropic", "base_url": mock.base_url,
                        "keys": [{"name": "one", "value": P1}, {"name": "two", "value": P2}]},
            "backup": {"type": "anthropic", "base_url": mock.base_url,
                       "keys": [{"name": "one", "value": B1}]},
        },
        "routing": {"fallbacks": {"primary": ["backup"]}},
    }  # fmt: skip


def _hang_up(gw: GatewayServer, key: str, stream: bool, after: float) -> None:
    body = json.dumps({"model": "primary/claude-haiku-4-5", "max_tokens": 20, "stream": stream,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()  # fmt: skip
    host, port = gw.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = (f"POST /v1/messages HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
                f"x-api-key: {key}\r\ncontent-length: {len(body)}\r\n\r\n")  # fmt: skip
        sock.sendall(head.encode() + body)
        time.sleep(after)


def _logged(gw: GatewayServer, key_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = httpx.get(f"{gw.base_url}/api/logs", params={"key": key_id},
                         headers=gw.admin_headers()).json()["data"]  # fmt: skip
        if rows:
            full = httpx.get(f"{gw.base_url}/api/logs/{rows[0]['id']}",
                             headers=gw.admin_headers())  # fmt: skip
            return dict(full.json())
        time.sleep(0.2)
    raise AssertionError(f"no record\n{gw.logs()}")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_the_client_leaving_stops_the_failover(tmp_path: Path, stream: bool) -> None:
    with MockUpstream() as mock:
        slow_529 = Reply(status=529, json=anthropic_error(529, "overloaded_error", "x").json,
                         delay=1.5)  # fmt: skip
        mock.responder = by_key({P1: lambda _r: slow_529, P2: lambda _r: slow_529})
        gw = start_gateway(mock, tmp_path, _extra(mock))
        try:
            created = gw.create_key("leaver")
            _hang_up(gw, created["key"], stream, 0.3)
            first = mock.wait_for_requests(1, 10, "/v1/messages")[0]
            if not stream:  # cancelled at once: the upstream sees its client go
                assert mock.wait_disconnect(10) is first
            record = _logged(gw, created["id"])
            time.sleep(2.0)  # the 529 has come back by now: nothing may follow it
            calls = mock.calls("/v1/messages")
        finally:
            gw.stop()
    assert len(calls) == 1 and sent_with(mock, B1) == []
    assert record["status"] == 499 and record["error_type"] == "client_disconnected"
    [attempt] = record["attempts"]
    if stream:  # kept for its usage until the 529 came, then no further try
        assert attempt["status"] == 529
    else:
        assert attempt["status"] == 0 and attempt["error_type"] == "client_disconnected"
        assert attempt["reason"].endswith("cancelled, the client left")
