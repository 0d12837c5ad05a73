"""A fault-injecting upstream against the real gateway process.

Each case makes the mock upstream misbehave for the requests that carry ``x-fault`` (the
gateway forwards that header), while ``/health`` and another client, whose requests are
answered normally, are watched throughout. The gateway itself answers no 5xx except the
documented 502 (upstream failed) and 504 (upstream too slow); an upstream status is relayed
as the upstream sent it. Memory and time are bounded: the deadlines below are short.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from conftest import GatewayServer, start_gateway
from upstream_mock import (
    SSE,
    MockUpstream,
    RecordedRequest,
    Reply,
    anthropic_error,
    anthropic_events,
    chat_events,
    gzip_bomb,
)
from watch import HealthWatch, RssWatch

LIMITS = {"timeout_s": 1, "first_byte_timeout_s": 2, "total_timeout_s": 4, "max_response_mb": 8}
CONFIG = {"providers": {"anthropic": LIMITS, "openai": LIMITS}}
MESSAGES = [{"role": "user", "content": "hi"}]
MIB = b"x" * (1 << 20)


@dataclass
class OtherClient:
    """Normal streamed requests in a loop, in a thread, while the faults go on."""

    server: GatewayServer
    key: str
    results: list[tuple[int, bool]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> OtherClient:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(35)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                status, text = _anthropic(client, self.server, self.key, stream=True)
                self.results.append((status, "event: message_stop" in text))
                self._stop.wait(0.2)

    def assert_all_ok(self) -> None:
        assert len(self.results) >= 2, self.results
        assert all(r == (200, True) for r in self.results), self.results


def _anthropic(
    client: httpx.Client, server: GatewayServer, key: str, stream: bool, fault: str | None = None
) -> tuple[int, str]:
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    if fault:
        headers["x-fault"] = fault
    body = {"model": "claude-haiku-4-5", "max_tokens": 16, "stream": stream, "messages": MESSAGES}
    resp = client.post(f"{server.base_url}/v1/messages", json=body, headers=headers)
    return resp.status_code, resp.text


def _openai(
    client: httpx.Client, server: GatewayServer, key: str, stream: bool, fault: str | None = None
) -> tuple[int, str]:
    headers = {"authorization": f"Bearer {key}"}
    if fault:
        headers["x-fault"] = fault
    body = {"model": "gpt-4o", "stream": stream, "messages": MESSAGES}
    resp = client.post(f"{server.base_url}/v1/chat/completions", json=body, headers=headers)
    return resp.status_code, resp.text


def _pings(count: int) -> list[SSE]:
    return [SSE({"type": "ping"}, "ping")] * count


def _faults(dialect: str) -> dict[str, Callable[[], Reply]]:
    events = anthropic_events if dialect == "anthropic" else chat_events
    sse = [("Content-Type", "text/event-stream")]
    gz = [("Content-Encoding", "gzip")]
    # Made once, before any request: compressing 64 MiB inside the responder took longer
    # than the 2 s first-byte deadline on a loaded machine, and the test saw a 504.
    bomb, bomb_a = gzip_bomb(1024), gzip_bomb(1024, b"a")
    return {
        "hang": lambda: Reply(json={}, delay=60),
        "drip": lambda: Reply(events=[*events()[:2], *_pings(200)], event_delay=0.3),
        "drip-body": lambda: Reply(chunks=[b"{"] + [b" "] * 200, event_delay=0.3),
        "silent": lambda: Reply(events=events()[:2], hold_open=60),
        "cut": lambda: Reply(events=events(), cut_after=2),
        "bomb": lambda: Reply(body=bomb, headers=gz),
        "bomb-stream": lambda: Reply(chunks=[bomb_a], headers=[*gz, *sse]),
        "huge": lambda: Reply(chunks=[b'{"x":"', *[MIB] * 200, b'"}']),  # 200 MB of JSON
        "bad-json": lambda: Reply(body=b'{"type":"message","usage":' + b"[" * 5000),
        "bad-stream": lambda: Reply(
            chunks=[b'data: {"usage":' + b"[" * 5000 + b"\n\n"], headers=sse
        ),  # fmt: skip
        "429": lambda: anthropic_error(429, "rate_limit_error", "slow down"),
        "529": lambda: anthropic_error(529, "overloaded_error", "overloaded"),
        "500": lambda: anthropic_error(500, "api_error", "boom"),
    }


BIG = "larger than the gateway accepts"
# fault -> (stream?, the status the client gets, the stream ends with an error event?, and
# what the answer says: the deadline or bound that cut it, or the upstream's own words)
CASES: dict[str, tuple[bool, int, bool, str]] = {
    "hang": (False, 504, False, "within 2 s (first_byte_timeout_s)"),
    "drip": (True, 200, True, "did not finish within 4 s (total_timeout_s)"),
    "drip-body": (False, 504, False, "did not finish within 4 s (total_timeout_s)"),
    "silent": (True, 200, True, "sent nothing for 1 s (timeout_s)"),
    "cut": (True, 200, True, "stream broke"),
    "bomb": (False, 502, False, BIG),
    "bomb-stream": (True, 200, True, BIG),
    "huge": (False, 502, False, BIG),
    "bad-json": (False, 200, False, '{"type":"message","usage":[[[['),
    "bad-stream": (True, 200, True, "ended before its final event"),
    "429": (False, 429, False, "slow down"),
    "529": (False, 529, False, "overloaded"),
    "500": (False, 500, False, "boom"),
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayServer, str]]:
    """One gateway for the whole matrix; the mock misbehaves only when ``x-fault`` says so."""
    faults = {dialect: _faults(dialect) for dialect in ("anthropic", "openai")}

    def responder(req: RecordedRequest) -> Reply | None:
        fault = req.header("x-fault")
        if not fault:
            return None
        return faults["anthropic" if req.path.startswith("/v1/messages") else "openai"][fault]()

    mock = MockUpstream().start()
    mock.responder = responder
    try:
        server = start_gateway(mock, tmp_path_factory.mktemp("faults"), CONFIG)
        try:
            yield server, server.key()
        finally:
            server.stop()
    finally:
        mock.stop()


def _error_event(dialect: str, text: str) -> bool:
    if dialect == "anthropic":
        return "event: error" in text and "message_stop" not in text
    return '"error"' in text.rsplit("data: ", 1)[-1] and "[DONE]" not in text


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
@pytest.mark.parametrize("fault", list(CASES))
def test_fault(gateway: tuple[GatewayServer, str], dialect: str, fault: str) -> None:
    faulty, key = gateway
    stream, want, error_event, says = CASES[fault]
    call = _anthropic if dialect == "anthropic" else _openai
    with (
        HealthWatch(faulty.base_url) as health,
        RssWatch(faulty.process.pid) as rss,
        OtherClient(faulty, key) as other,
        httpx.Client(timeout=40) as client,
    ):
        baseline = rss.peak_mb
        # Three at once: a storm, not a single bad answer.
        done: list[tuple[int, str]] = []
        threads = [
            threading.Thread(target=lambda: done.append(call(client, faulty, key, stream, fault)))
            for _ in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(50)
        # Watch a little longer when the faults were quick: /health and the other client
        # must have been seen at work (bounded: 15 s at most).
        until = time.monotonic() + 15
        while time.monotonic() < until and (len(health.probes) < 4 or len(other.results) < 3):
            time.sleep(0.1)
    assert len(done) == 3, faulty.logs()
    for status, text in done:
        assert status == want, (status, text[:300])
        assert says in (text if len(text) < 100_000 else text[:1000] + text[-2000:]), text[-400:]
        if status in (502, 504):
            err = httpx.Response(status, content=text.encode()).json()["error"]
            if dialect == "anthropic":
                assert err["type"] == ("api_error" if status == 502 else "timeout_error"), err
            else:
                assert err["type"] == "server_error", err
                assert err["code"] == ("upstream_error" if status == 502 else "upstream_timeout")
        if error_event:
            assert _error_event(dialect, text), text[-400:]
    assert rss.peak_mb - baseline < 120, (baseline, rss.peak_mb)
    health.assert_all_ok()
    other.assert_all_ok()
    assert faulty.process.poll() is None
    assert "Traceback" not in faulty.logs(), faulty.logs()
