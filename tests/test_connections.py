"""Hostile clients against the real gateway process: floods, slowloris, huge headers.

Each test opens raw sockets against ``tollway serve`` (uvicorn + tollway.connections) and
watches ``/health`` on fresh connections throughout. Every loop is bounded in time.
"""

from __future__ import annotations

import http.client
import json
import resource
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import httpx
import pytest

from conftest import GatewayServer
from upstream_mock import MockUpstream, Reply, anthropic_events
from watch import HealthWatch, open_fds

HALF_HEADERS = b"POST /v1/messages HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
HALF_BODY = (
    b"POST /v1/messages HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
    b'Content-Length: 100000\r\n\r\n{"model":'
)


def _port(server: GatewayServer) -> int:
    port = urlsplit(server.base_url).port
    assert port is not None
    return port


def _open(port: int, count: int, payload: bytes) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setblocking(False)
        if payload:
            s.send(payload)
        socks.append(s)
    return socks


def _poll_closed(socks: Iterable[socket.socket], closed: set[int], wait: float) -> None:
    """Add to ``closed`` the index of every socket the server has closed (EOF or reset)."""
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        if i not in closed:
            sel.register(s, selectors.EVENT_READ, i)
    try:
        for key, _ in sel.select(wait):
            i = key.data
            try:
                while True:
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        closed.add(i)
                        break
            except BlockingIOError:
                continue  # an answer (408, 431...) whose close has not arrived yet
            except OSError:
                closed.add(i)
    finally:
        sel.close()


def _close_all(socks: Iterable[socket.socket]) -> None:
    for s in socks:
        s.close()


def _stream_request(server: GatewayServer, key: str) -> tuple[int, str]:
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 16,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    with httpx.Client(timeout=30) as client:
        resp = client.post(f"{server.base_url}/v1/messages", json=body, headers=headers)
    return resp.status_code, resp.text


def _in_thread(fn: Callable[[], tuple[int, str]]) -> tuple[threading.Thread, list[object]]:
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    return thread, out


@pytest.mark.parametrize("gateway_extra_config", ["server: {header_timeout_s: 2}"])
def test_slowloris_connections_are_closed_after_the_header_timeout(
    gateway_server: GatewayServer, mock_upstream: MockUpstream
) -> None:
    key = gateway_server.key()
    socks = _open(_port(gateway_server), 500, HALF_HEADERS)
    closed: set[int] = set()
    with HealthWatch(gateway_server.base_url) as health:
        thread, result = _in_thread(lambda: _stream_request(gateway_server, key))
        started = time.monotonic()
        # Drip one header line every 0.5 s to every open socket, for at most 30 s (without
        # a header deadline the server would hold them all for ever).
        while len(closed) < len(socks) and time.monotonic() - started < 30:
            for i, s in enumerate(socks):
                if i not in closed:
                    try:
                        s.send(b"X-Drip: 1\r\n")
                    except OSError:
                        closed.add(i)
            _poll_closed(socks, closed, 0.5)
        thread.join(30)
    _close_all(socks)
    assert len(closed) == 500, f"{500 - len(closed)} slowloris connections still open"
    health.assert_all_ok()
    assert result and result[0][0] == 200, result  # type: ignore[index]
    assert "message_stop" in result[0][1]  # type: ignore[index]


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))


def test_a_flood_of_half_sent_requests_cannot_exhaust_file_descriptors(
    gateway_factory: Callable[..., GatewayServer], mock_upstream: MockUpstream
) -> None:
    server = gateway_factory(preexec_fn=_low_fd_limit)
    key = server.key()
    port = _port(server)
    socks: list[socket.socket] = []
    with HealthWatch(server.base_url) as health:
        for _ in range(11):  # 1,100 connections, half with half-sent headers, half a body
            socks += _open(port, 50, HALF_HEADERS) + _open(port, 50, HALF_BODY)
        peak_fds = open_fds(server.process.pid)
        status, text = _stream_request(server, key)
        time.sleep(2)
        peak_fds = max(peak_fds, open_fds(server.process.pid))
    _close_all(socks)
    assert server.process.poll() is None, server.logs()
    assert peak_fds < 512
    health.assert_all_ok()
    assert status == 200 and "message_stop" in text, (status, text[:300])
    assert "Too many open files" not in server.logs()


def test_the_fd_soft_limit_is_raised_to_the_hard_limit(
    gateway_factory: Callable[..., GatewayServer],
) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    server = gateway_factory(preexec_fn=lower)
    soft_now, hard_now = resource.prlimit(server.process.pid, resource.RLIMIT_NOFILE)
    assert (soft_now, hard_now) == (hard, hard)


def test_oversized_request_headers_get_431_and_a_close(gateway_server: GatewayServer) -> None:
    s = socket.create_connection(("127.0.0.1", _port(gateway_server)), timeout=10)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: gw\r\n")
    line = b"X-Big: " + b"a" * 1000 + b"\r\n"
    answer = b""
    try:
        for _ in range(200):  # 200 KB of headers, never ended
            s.sendall(line)
    except OSError:
        pass  # the server closed while we were still sending: fine, read what it said
    try:
        while chunk := s.recv(65536):
            answer += chunk
    except OSError:
        pass
    s.close()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"connection: close" in answer.lower()


@pytest.mark.parametrize("gateway_extra_config", ["server: {keep_alive_max_requests: 3}"])
def test_a_connection_is_closed_after_keep_alive_max_requests(
    gateway_server: GatewayServer,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", _port(gateway_server), timeout=10)
    seen = []
    for _ in range(3):
        conn.request("GET", "/health")
        resp = conn.getresponse()
        assert json.loads(resp.read()) == {"status": "ok"}
        seen.append(resp.getheader("connection"))
    conn.close()
    assert seen == [None, None, "close"]


@pytest.mark.parametrize(
    "gateway_extra_config", ["server: {max_connections: 64, header_timeout_s: 60}"]
)
def test_idle_connections_are_evicted_at_the_cap_and_busy_ones_kept(
    gateway_server: GatewayServer, mock_upstream: MockUpstream
) -> None:
    key = gateway_server.key()
    mock_upstream.enqueue(Reply(events=anthropic_events("one two three four five six"),
                                event_delay=0.25))  # fmt: skip
    thread, result = _in_thread(lambda: _stream_request(gateway_server, key))
    mock_upstream.wait_for_requests(1, timeout=10)
    socks: list[socket.socket] = []
    closed: set[int] = set()
    with HealthWatch(gateway_server.base_url, interval=0.1) as health:
        socks = _open(_port(gateway_server), 300, b"")
        started = time.monotonic()
        while len(closed) < 300 - 64 and time.monotonic() - started < 20:
            _poll_closed(socks, closed, 0.2)
        thread.join(30)
    _close_all(socks)
    # Before the 60 s header timeout: the cap, not the timer, closed them.
    assert len(closed) >= 300 - 64, len(closed)
    health.assert_all_ok()
    assert result and result[0][0] == 200, result  # type: ignore[index]
    assert "message_stop" in result[0][1]  # type: ignore[index]
    assert "one two three four five six" in "".join(
        json.loads(line[6:]).get("delta", {}).get("text", "")
        for line in result[0][1].splitlines()  # type: ignore[index]
        if line.startswith("data: ")
    )


def test_the_connection_cap_follows_the_fd_limit() -> None:
    from tollway.cli.serve import server_limits
    from tollway.config import ServerConfig

    assert server_limits(ServerConfig(), 512).max_connections == (512 - 64) // 2
    assert server_limits(ServerConfig(), 20000).max_connections == 9968
    assert server_limits(ServerConfig(max_connections=100), 20000).max_connections == 100
    # Never more than the descriptors allow, whatever the config says.
    assert server_limits(ServerConfig(max_connections=10**6), 1024).max_connections == 480
