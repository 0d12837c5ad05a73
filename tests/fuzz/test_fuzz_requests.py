"""Fuzzing request reading: ``read_fields`` alone, and the whole request path in-process.

Whatever a client sends to any of the surfaces, the gateway answers in the client's
dialect and never with a 5xx of its own (the simulated provider never fails here). The
app runs in a background event loop (tests/inprocess.py), so hypothesis drives it from a
plain test function; every call has a timeout.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from inprocess import Running, running
from tollway.config import Budget
from tollway.errors import InvalidRequest
from tollway.surfaces.base import RequestFields, read_fields

T = TypeVar("T")

ANTHROPIC_PATHS = ["/v1/messages", "/anthropic/v1/messages", "/v1/messages/count_tokens",
                   "/anthropic/v1/messages/count_tokens"]  # fmt: skip
OPENAI_PATHS = ["/v1/chat/completions", "/openai/v1/chat/completions", "/v1/responses",
                "/openai/v1/responses"]  # fmt: skip

# Object keys: the names the gateway itself reads in a body (so their values are hostile
# too), and any others.
_names = st.sampled_from(["type", "content", "output", "cache_control", "ttl", "role", "text",
                          "audio", "file_id"]) | st.text(max_size=8)  # fmt: skip
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(_names, inner, max_size=4)
    ),  # fmt: skip
    max_leaves=20,
)
_models = (
    st.sampled_from(
        [
            "claude-haiku-4-5",
            "gpt-5",
            "simulated/claude-sonnet-4-5",
            "no-such-model",
            "",
            "/",
            "simulated/",
            "a" * 300,
        ]
    )
    | _json_values
)
_counts = st.integers(min_value=-(2**70), max_value=2**70) | _json_values


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["request", "json", "bytes", "deep"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "json":
        return json.dumps(draw(_json_values)).encode()
    if kind == "deep":
        depth = draw(st.integers(min_value=1, max_value=5000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        return f'{{"model":"claude-haiku-4-5","x":{opener * depth}1{closer * depth}}}'.encode()
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}]}
    for name, values in (("model", _models), ("stream", _json_values | st.booleans()),
                         ("max_tokens", _counts), ("max_completion_tokens", _counts),
                         ("max_output_tokens", _counts), ("messages", _json_values),
                         ("stream_options", _json_values)):  # fmt: skip
        if draw(st.booleans()):
            body[name] = draw(values)
    return json.dumps(body).encode()


_fault = st.lists(
    st.tuples(st.sampled_from(["cut-after", "latency-ms", "retry-after", "nonsense", ""]),
              st.sampled_from(["", "x", "-1", "0", "1", "2", "1e999", "nan", "=;"])),
    max_size=3,
).map(lambda pairs: "; ".join(f"{k}={v}" for k, v in pairs))  # fmt: skip


class _Loop:
    """An event loop in a thread; ``run(coro)`` waits for its result, with a timeout."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[_Loop, Running, str]]:
    loop = _Loop()
    context = running(Path(tmp_path_factory.mktemp("fuzz")))
    gw = loop.run(context.__aenter__())
    # A budget, so that admission reads every body's worst case (accounting/bounds.py).
    key = loop.run(gw.key("fuzz", budgets=[Budget(max_limit="1000", reset_duration="1d")]))
    try:
        yield loop, gw, key
    finally:
        loop.run(context.__aexit__(None, None, None))
        loop.close()


def _assert_dialect_error(path: str, resp: httpx.Response) -> None:
    body = resp.json()
    if path in ANTHROPIC_PATHS:
        assert body["type"] == "error", body
        assert isinstance(body["error"]["type"], str) and body["error"]["message"], body
    else:
        assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
        assert isinstance(body["error"]["type"], str), body


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400) | _bodies())
def test_read_fields_returns_fields_or_a_clear_400(body: bytes) -> None:
    try:
        fields = read_fields(body)
    except InvalidRequest as err:
        assert err.status == 400 and err.message
    else:
        assert isinstance(fields, RequestFields)


@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(ANTHROPIC_PATHS + OPENAI_PATHS),
    body=_bodies(),
    auth=st.sampled_from(["valid", "none", "bogus"]),
    fault=st.none() | _fault,
    content_type=st.sampled_from(["application/json", "text/plain", ""]),
)
@example(  # a block type that is an object: the worst-case bound once hashed it (a 500)
    path="/v1/messages", auth="valid", fault=None, content_type="application/json",
    body=b'{"model":"claude-haiku-4-5","max_tokens":5,"messages":[{"role":"user",'
    b'"content":[{"type":{"a":1},"text":"x"}]}]}',
)  # fmt: skip
def test_no_request_gets_a_5xx_from_the_gateway(
    gateway: tuple[_Loop, Running, str],
    path: str,
    body: bytes,
    auth: str,
    fault: str | None,
    content_type: str,
) -> None:
    loop, gw, key = gateway
    headers = {"content-type": content_type} if content_type else {}
    if auth != "none":
        secret = key if auth == "valid" else "tw-" + "x" * 40
        headers["x-api-key" if path in ANTHROPIC_PATHS else "authorization"] = (
            secret if path in ANTHROPIC_PATHS else f"Bearer {secret}"
        )
    if fault is not None:
        headers["x-tollway-simulate"] = fault
    resp = loop.run(gw.client.post(path, content=body, headers=headers))
    assert resp.status_code < 500, (resp.status_code, resp.text[:500])
    if resp.status_code >= 400:
        _assert_dialect_error(path, resp)
    else:
        assert resp.status_code == 200 and resp.content
