"""The request body over real sockets: read only after the key and the slot, and bounded."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx

from conftest import GatewayServer
from upstream_mock import MockUpstream, Reply, anthropic_events

Factory = Callable[..., GatewayServer]
READ_S = 10.0


def _open(gw: GatewayServer) -> socket.socket:
    host, port = gw.base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=READ_S)
    return sock


def _head(key: str, length: int, path: str = "/v1/messages") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: gw\r\nx-api-key: {key}\r\n"
            f"anthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n"
            f"content-length: {length}\r\n\r\n").encode()  # fmt: skip


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], Any]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before an answer: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        rest += sock.recv(65536)
    return int(lines[0].split()[1]), headers, json.loads(rest[:length] or b"null")


def test_bad_key_is_refused_without_reading_a_huge_body(gateway_server: GatewayServer) -> None:
    """10 MB declared, 100 bytes sent: the 401 comes without the rest ever arriving."""
    with _open(gateway_server) as sock:
        sock.sendall(_head("tw-not-a-key", 10_000_000) + b'{"model":"claude-opus-4-6",' + b" " * 73)
        started = time.monotonic()
        status, headers, body = _answer(sock)
    assert status == 401 and headers["x-should-retry"] == "false"
    assert body["error"]["type"] == "authentication_error"
    assert time.monotonic() - started < READ_S


def test_a_body_that_never_finishes_gets_408(gateway_factory: Factory) -> None:
    gw = gateway_factory({"gateway": {"body_timeout_s": 1}})
    key = gw.key("slow-body")
    with _open(gw) as sock:
        sock.sendall(_head(key, 5000) + b'{"model":"claude-sonnet-4-5"')
        status, _, body = _answer(sock)
    assert status == 408 and body["error"]["type"] == "timeout_error"
    assert "did not arrive within 1 s" in body["error"]["message"]


def test_past_the_concurrency_limit_the_body_is_not_read(
    gateway_factory: Factory, mock_upstream: MockUpstream
) -> None:
    """The slot is taken from the headers: a request past the limit is refused while its
    body is still unsent, after waiting concurrency_wait_s for a turn."""
    gw = gateway_factory({"gateway": {"concurrency_wait_s": 0.5}})
    created = gw.create_key("one-at-a-time", rate_limit={"concurrency_max": 1})
    key = created["key"]
    mock_upstream.enqueue(Reply(events=anthropic_events("slow " * 40), event_delay=0.1))
    body = {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True,
            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    with httpx.Client(timeout=30) as client:
        with client.stream("POST", gw.base_url + "/v1/messages", json=body,
                           headers={"x-api-key": key}) as first:  # fmt: skip
            assert first.status_code == 200
            with _open(gw) as sock:
                sock.sendall(_head(key, 4000))  # headers only
                status, headers, refused = _answer(sock)
            first.read()
    assert status == 429 and headers["retry-after"] == "1"
    message = refused["error"]["message"]
    assert "virtual key 'one-at-a-time': at most 1 request at once" in message
    assert "within 0.5 s" in message
