"""The real anthropic and openai SDKs through the real gateway to the mock upstream.

Native dialects pass through: the upstream gets the client's body byte for byte and its
non-auth headers untouched, with the virtual key swapped for the provider key; the client
gets the upstream's content, usage and request-id / rate-limit headers back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from conftest import ANTHROPIC_UPSTREAM_KEY, OPENAI_UPSTREAM_KEY, REPO, GatewayServer
from upstream_mock import (
    ANTHROPIC_USAGE,
    DEFAULT_TEXT,
    OPENAI_USAGE,
    RESPONSES_USAGE,
    MockUpstream,
    RecordedRequest,
    Reply,
    SentRequests,
    anthropic_error,
    anthropic_events,
    chat_events,
    openai_error,
)

WIRE = REPO / "tests" / "fixtures" / "wire"
ANTHROPIC_MODEL = "claude-sonnet-4-5"
OPENAI_MODEL = "gpt-4o"
BETA = "interleaved-thinking-2025-05-14,context-management-2025-06-27"
# Headers that describe the hop or carry the credential: the gateway may rewrite these.
HOP_AND_AUTH = frozenset(
    {"host", "content-length", "connection", "accept-encoding", "transfer-encoding",
     "x-api-key", "authorization"}
)  # fmt: skip
DISCONNECT_WAIT_S = 5.0


@pytest.fixture
def vkey(gateway_server: GatewayServer) -> str:
    return gateway_server.key("sdk-passthrough")


@pytest.fixture
def sent() -> SentRequests:
    return SentRequests()


@pytest.fixture
def claude(gateway_server: GatewayServer, vkey: str, sent: SentRequests) -> Iterator[Any]:
    http_client = anthropic.DefaultHttpxClient(event_hooks={"request": [sent]}, timeout=30)
    client = anthropic.Anthropic(
        api_key=vkey, base_url=gateway_server.base_url, http_client=http_client, max_retries=0
    )
    with client:
        yield client


@pytest.fixture
def oai(gateway_server: GatewayServer, vkey: str, sent: SentRequests) -> Iterator[Any]:
    http_client = openai.DefaultHttpxClient(event_hooks={"request": [sent]}, timeout=30)
    client = openai.OpenAI(
        api_key=vkey, base_url=gateway_server.base_url + "/v1", http_client=http_client,
        max_retries=0,
    )  # fmt: skip
    with client:
        yield client


# --------------------------------------------------------------------------- checks


def only_request(mock: MockUpstream) -> RecordedRequest:
    model_calls = [r for r in mock.requests if r.method == "POST"]
    assert len(model_calls) == 1, [(r.method, r.raw_path) for r in mock.requests]
    return model_calls[0]


def assert_headers_passed(client_headers: list[tuple[str, str]], upstream: RecordedRequest) -> None:
    for name, value in client_headers:
        if name.lower() in HOP_AND_AUTH:
            continue
        assert upstream.header_all(name) == [value], f"header {name} was not passed through"


def assert_provider_key(upstream: RecordedRequest, dialect: str, vkey: str) -> None:
    if dialect == "anthropic":
        assert upstream.header_all("x-api-key") == [ANTHROPIC_UPSTREAM_KEY]
        assert upstream.header("authorization") is None
    else:
        assert upstream.header_all("authorization") == [f"Bearer {OPENAI_UPSTREAM_KEY}"]
        assert upstream.header("x-api-key") is None
    leaked = [k for k, v in upstream.headers if vkey in v]
    assert not leaked, f"the virtual key reached the upstream in {leaked}"
    assert vkey.encode() not in upstream.body


def assert_response_headers(got: Any, upstream: RecordedRequest, dialect: str) -> None:
    prefix = "anthropic-ratelimit-" if dialect == "anthropic" else "x-ratelimit-"
    id_header = "request-id" if dialect == "anthropic" else "x-request-id"
    names = [k for k, _ in upstream.reply_headers if k.lower().startswith(prefix)]
    assert names, "the mock sent no rate-limit headers"
    for name in [id_header, *names]:
        assert got.get(name) == upstream.reply_header(name), f"response header {name}"


# --------------------------------------------------------------------------- Anthropic SDK


def test_anthropic_sdk_message(
    claude: Any, mock_upstream: MockUpstream, sent: SentRequests, vkey: str
) -> None:
    raw = claude.messages.with_raw_response.create(
        model=ANTHROPIC_MODEL,
        max_tokens=256,
        system=[{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "say hi"}],
        extra_headers={"anthropic-beta": BETA, "x-app": "cli"},
    )
    message = raw.parse()
    assert [(b.type, b.text) for b in message.content] == [("text", DEFAULT_TEXT)]
    assert message.usage.input_tokens == ANTHROPIC_USAGE["input_tokens"]
    assert message.usage.output_tokens == ANTHROPIC_USAGE["output_tokens"]
    upstream = only_request(mock_upstream)
    assert (upstream.path, upstream.query_string) == ("/v1/messages", "")
    assert upstream.body == sent.bodies[0]
    assert upstream.header("anthropic-beta") == BETA
    assert upstream.header("anthropic-version") is not None
    assert_headers_passed(sent.headers[0], upstream)
    assert_provider_key(upstream, "anthropic", vkey)
    assert_response_headers(raw.headers, upstream, "anthropic")


def test_anthropic_sdk_stream(
    claude: Any, mock_upstream: MockUpstream, sent: SentRequests, vkey: str
) -> None:
    with claude.messages.stream(
        model=ANTHROPIC_MODEL,
        max_tokens=256,
        messages=[{"role": "user", "content": "say hi"}],
        extra_headers={"anthropic-beta": BETA},
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
        headers = stream.response.headers
    assert "".join(pieces) == DEFAULT_TEXT and len(pieces) > 1
    assert final.usage.output_tokens == ANTHROPIC_USAGE["output_tokens"]
    assert final.usage.input_tokens == ANTHROPIC_USAGE["input_tokens"]
    upstream = only_request(mock_upstream)
    assert upstream.stream and upstream.completed
    assert upstream.body == sent.bodies[0]
    assert_headers_passed(sent.headers[0], upstream)
    assert_provider_key(upstream, "anthropic", vkey)
    assert_response_headers(headers, upstream, "anthropic")


def test_anthropic_sdk_count_tokens(
    claude: Any, mock_upstream: MockUpstream, sent: SentRequests, vkey: str
) -> None:
    count = claude.messages.count_tokens(
        model=ANTHROPIC_MODEL, messages=[{"role": "user", "content": "say hi"}]
    )
    upstream = only_request(mock_upstream)
    assert upstream.path == "/v1/messages/count_tokens"
    assert count.input_tokens == json.loads(upstream.reply_body)["input_tokens"]
    assert upstream.body == sent.bodies[0]
    assert_provider_key(upstream, "anthropic", vkey)


# --------------------------------------------------------------------------- OpenAI SDK


def test_openai_sdk_chat(
    oai: Any, mock_upstream: MockUpstream, sent: SentRequests, vkey: str
) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=[{"role": "user", "content": "say hi"}], temperature=0
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == DEFAULT_TEXT
    assert completion.usage.prompt_tokens == OPENAI_USAGE["prompt_tokens"]
    assert completion.usage.completion_tokens == OPENAI_USAGE["completion_tokens"]
    upstream = only_request(mock_upstream)
    assert upstream.path == "/v1/chat/completions"
    assert upstream.body == sent.bodies[0]
    assert_headers_passed(sent.headers[0], upstream)
    assert_provider_key(upstream, "openai", vkey)
    assert_response_headers(raw.headers, upstream, "openai")


def test_openai_sdk_chat_stream_with_usage(
    oai: Any, mock_upstream: MockUpstream, sent: SentRequests, vkey: str
) -> None:
    stream = oai.chat.completions.create(
        model=OPENAI_MODEL, messages=[{"role": "user", "content": "say hi"}], stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    with stream:
        chunks = list(stream)
        headers = stream.response.headers
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == DEFAULT_TEXT
    usages = [c.usage for c in chunks if c.usage is not None]
    assert [u.total_tokens for u in usages] == [OPENAI_USAGE["total_tokens"]]
    upstream = only_request(mock_upstream)
    assert upstream.body == sent.bodies[0]
    assert_headers_passed(sent.headers[0], upstream)
    assert_provider_key(upstream, "openai", vkey)
    assert_response_headers(headers, upstream, "openai")


def test_openai_sdk_chat_stream_without_usage(
    oai: Any, mock_upstream: MockUpstream, sent: SentRequests
) -> None:
    """The gateway may ask the upstream for usage to meter the call, but the client, who
    did not ask, must not see a usage chunk; the rest of the body is the client's."""
    stream = oai.chat.completions.create(
        model=OPENAI_MODEL, messages=[{"role": "user", "content": "say hi"}], stream=True
    )
    with stream:
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == DEFAULT_TEXT
    assert [c for c in chunks if not c.choices] == []
    assert all(getattr(c, "usage", None) is None for c in chunks)
    upstream = only_request(mock_upstream)
    got, wanted = upstream.json(), json.loads(sent.bodies[0])
    got.pop("stream_options", None)
    assert got == wanted


def test_openai_sdk_responses(
    oai: Any, mock_upstream: MockUpstream, sent: SentRequests, vkey: str
) -> None:
    raw = oai.responses.with_raw_response.create(model=OPENAI_MODEL, input="say hi")
    response = raw.parse()
    assert response.output_text == DEFAULT_TEXT
    assert response.usage.total_tokens == RESPONSES_USAGE["total_tokens"]
    upstream = only_request(mock_upstream)
    assert upstream.path == "/v1/responses"
    assert upstream.body == sent.bodies[0]
    assert_headers_passed(sent.headers[0], upstream)
    assert_provider_key(upstream, "openai", vkey)
    assert_response_headers(raw.headers, upstream, "openai")


def test_openai_sdk_responses_stream(
    oai: Any, mock_upstream: MockUpstream, sent: SentRequests, vkey: str
) -> None:
    stream = oai.responses.create(model=OPENAI_MODEL, input="say hi", stream=True)
    with stream:
        events = list(stream)
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == (
        DEFAULT_TEXT
    )
    assert events[-1].type == "response.completed"
    assert events[-1].response.usage.total_tokens == RESPONSES_USAGE["total_tokens"]
    upstream = only_request(mock_upstream)
    assert upstream.body == sent.bodies[0]
    assert_provider_key(upstream, "openai", vkey)


# --------------------------------------------------------------------------- Claude Code bodies


def capture_request(name: str) -> dict[str, Any]:
    """The last /v1/messages request of a wire capture."""
    path = WIRE / name
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    posts = [r for r in rows if r["method"] == "POST" and r["path"] == "/v1/messages"]
    return posts[-1]


@pytest.mark.parametrize("capture", ["claude_p_apikey.jsonl", "claude_tool_think.jsonl"])
@pytest.mark.parametrize("form", ["wire", "json.dumps"])
def test_claude_code_request_passes_byte_for_byte(
    gateway_server: GatewayServer,
    vkey: str,
    mock_upstream: MockUpstream,
    capture: str,
    form: str,
) -> None:
    row = capture_request(capture)
    if form == "wire":  # the exact bytes Claude Code sent (same length as recorded)
        body = json.dumps(row["body"], separators=(",", ":"), ensure_ascii=False).encode()
        assert len(body) == row["body_bytes"]
    else:  # spaces and \u escapes: any re-encoding by the gateway would show
        body = json.dumps(row["body"]).encode()
    headers = [(k, v) for k, v in row["headers"] if k.lower() not in HOP_AND_AUTH]
    headers.append(("x-api-key", vkey))
    with httpx.Client(timeout=30) as client:
        resp = client.post(
            f"{gateway_server.base_url}/v1/messages?beta=true", content=body, headers=headers
        )
    assert resp.status_code == 200, resp.text
    upstream = only_request(mock_upstream)
    assert upstream.raw_path == "/v1/messages?beta=true"
    assert upstream.body == body
    assert_headers_passed(headers, upstream)
    for name in ("anthropic-version", "anthropic-beta", "X-Claude-Code-Session-Id", "x-app"):
        assert upstream.header(name) == dict(row["headers"])[name]
    assert_provider_key(upstream, "anthropic", vkey)
    assert_response_headers(resp.headers, upstream, "anthropic")
    assert resp.content == bytes(upstream.reply_body)  # the SSE relayed untouched
    sent_body = json.loads(upstream.body)
    assert any(m["role"] == "system" for m in sent_body["messages"])
    assert b'"cache_control"' in upstream.body and b'"tools"' in upstream.body
    if capture == "claude_tool_think.jsonl":
        assistant = next(m for m in sent_body["messages"] if m["role"] == "assistant")
        assert assistant["content"][0]["signature"] == "EqMOCKSIGNATURE0123456789abcdef=="


# --------------------------------------------------------------------------- 401s


def test_anthropic_missing_key(gateway_server: GatewayServer, mock_upstream: MockUpstream) -> None:
    client = anthropic.Anthropic(api_key="unused", base_url=gateway_server.base_url, max_retries=0)
    with client, pytest.raises(anthropic.AuthenticationError) as info:
        client.messages.create(
            model=ANTHROPIC_MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}],
            extra_headers={"Authorization": anthropic.omit, "X-Api-Key": anthropic.omit},
        )  # fmt: skip
    assert_anthropic_auth_error(info.value)
    assert mock_upstream.requests == []


def test_anthropic_unknown_key(gateway_server: GatewayServer, mock_upstream: MockUpstream) -> None:
    client = anthropic.Anthropic(
        api_key="tw-not-a-key-this-gateway-knows-0123456789",
        base_url=gateway_server.base_url, max_retries=0,
    )  # fmt: skip
    with client, pytest.raises(anthropic.AuthenticationError) as info:
        client.messages.create(
            model=ANTHROPIC_MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert_anthropic_auth_error(info.value)
    assert mock_upstream.requests == []


def assert_anthropic_auth_error(err: Any) -> None:
    assert err.status_code == 401
    body = err.response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert err.response.headers["content-type"].startswith("application/json")


def test_openai_missing_key(gateway_server: GatewayServer, mock_upstream: MockUpstream) -> None:
    client = openai.OpenAI(
        api_key="unused", base_url=gateway_server.base_url + "/v1", max_retries=0
    )
    with client, pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(
            model=OPENAI_MODEL, messages=[{"role": "user", "content": "x"}],
            extra_headers={"Authorization": openai.omit},
        )  # fmt: skip
    assert_openai_auth_error(info.value)
    assert mock_upstream.requests == []


def test_openai_unknown_key(gateway_server: GatewayServer, mock_upstream: MockUpstream) -> None:
    client = openai.OpenAI(
        api_key="tw-not-a-key-this-gateway-knows-0123456789",
        base_url=gateway_server.base_url + "/v1", max_retries=0,
    )  # fmt: skip
    with client, pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(
            model=OPENAI_MODEL, messages=[{"role": "user", "content": "x"}]
        )
    assert_openai_auth_error(info.value)
    assert info.value.code == "invalid_api_key"
    assert mock_upstream.requests == []


def assert_openai_auth_error(err: Any) -> None:
    assert err.status_code == 401
    body = err.response.json()
    assert set(body) == {"error"}
    assert {"message", "type", "code"} <= set(body["error"])
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["type"], str) and body["error"]["type"]


def test_missing_key_raw_request_gets_anthropic_error(gateway_server: GatewayServer) -> None:
    with httpx.Client(timeout=10) as client:
        resp = client.post(
            f"{gateway_server.base_url}/v1/messages?beta=true",
            json={"model": ANTHROPIC_MODEL, "max_tokens": 8, "messages": []},
            headers={"anthropic-version": "2023-06-01"},
        )
    assert resp.status_code == 401
    assert resp.json()["type"] == "error"
    assert resp.json()["error"]["type"] == "authentication_error"


# --------------------------------------------------------------------------- upstream errors


@pytest.mark.parametrize(
    ("status", "kind", "error_class"),
    [
        (429, "rate_limit_error", anthropic.RateLimitError),
        (529, "overloaded_error", anthropic.InternalServerError),
        (400, "invalid_request_error", anthropic.BadRequestError),
    ],
)
def test_anthropic_upstream_error_passes_through(
    claude: Any,
    mock_upstream: MockUpstream,
    status: int,
    kind: str,
    error_class: type[Exception],
) -> None:
    reply = anthropic_error(status, kind, f"mock says {status}")
    reply.headers = [("retry-after", "7"), ("x-should-retry", "false")]
    mock_upstream.enqueue(reply)
    with pytest.raises(error_class) as info:
        claude.messages.create(
            model=ANTHROPIC_MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    err: Any = info.value
    upstream = only_request(mock_upstream)
    assert err.status_code == status
    assert err.response.content == bytes(upstream.reply_body)
    assert err.response.headers.get("retry-after") == "7"
    assert err.response.headers.get("x-should-retry") == "false"
    assert err.response.headers.get("request-id") == upstream.reply_header("request-id")


def test_openai_upstream_error_passes_through(oai: Any, mock_upstream: MockUpstream) -> None:
    reply = openai_error(429, "insufficient_quota", "mock quota", "insufficient_quota")
    mock_upstream.enqueue(reply)
    with pytest.raises(openai.RateLimitError) as info:
        oai.chat.completions.create(model=OPENAI_MODEL, messages=[{"role": "user", "content": "x"}])
    upstream = only_request(mock_upstream)
    assert info.value.code == "insufficient_quota"
    assert info.value.response.content == bytes(upstream.reply_body)


def test_upstream_drop_mid_stream_ends_in_an_anthropic_error_event(
    gateway_server: GatewayServer, vkey: str, mock_upstream: MockUpstream
) -> None:
    """Claude Code retries a broken stream; it must see an error, not a clean end."""
    mock_upstream.enqueue(Reply(events=anthropic_events("a b c d e f"), cut_after=4))
    body = {"model": ANTHROPIC_MODEL, "max_tokens": 64, "stream": True,
            "messages": [{"role": "user", "content": "x"}]}  # fmt: skip
    with httpx.Client(timeout=30) as client:
        resp = client.post(
            gateway_server.base_url + "/v1/messages?beta=true",
            json=body,
            headers={"x-api-key": vkey, "anthropic-version": "2023-06-01"},
        )
    upstream = only_request(mock_upstream)
    assert upstream.cut and upstream.events_sent == 4
    assert resp.content.startswith(bytes(upstream.reply_body))
    names = [line[7:] for line in resp.text.splitlines() if line.startswith("event: ")]
    assert "message_stop" not in names
    assert names[-1] == "error", resp.text
    last_data = [line for line in resp.text.splitlines() if line.startswith("data: ")][-1]
    assert json.loads(last_data[6:])["type"] == "error"


@pytest.mark.parametrize("gateway_extra_config", [{"gateway": {"max_body_bytes": 2048}}])
def test_extra_config_reaches_the_gateway(
    gateway_server: GatewayServer, vkey: str, mock_upstream: MockUpstream
) -> None:
    big = {"model": ANTHROPIC_MODEL, "max_tokens": 8,
           "messages": [{"role": "user", "content": "x" * 4096}]}  # fmt: skip
    with httpx.Client(timeout=30) as client:
        resp = client.post(
            gateway_server.base_url + "/v1/messages", json=big, headers={"x-api-key": vkey}
        )
    assert resp.status_code == 413, resp.text
    assert resp.json()["type"] == "error"
    assert mock_upstream.requests == []


# --------------------------------------------------------------------------- disconnects


def slow_stream(path: str) -> Reply:
    if path == "/v1/messages":
        events = anthropic_events("tick " * 300)
    else:
        events = chat_events("tick " * 300)
    return Reply(events=events, event_delay=0.05)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/messages", {"model": ANTHROPIC_MODEL, "max_tokens": 2000, "stream": True}),
        ("/v1/chat/completions", {"model": OPENAI_MODEL, "stream": True,
                                  "stream_options": {"include_usage": True}}),
    ],
)  # fmt: skip
def test_client_disconnect_cancels_upstream(
    gateway_server: GatewayServer,
    vkey: str,
    mock_upstream: MockUpstream,
    path: str,
    body: dict[str, Any],
) -> None:
    mock_upstream.enqueue(slow_stream(path))
    body = {**body, "messages": [{"role": "user", "content": "count"}]}
    headers = {"x-api-key": vkey, "anthropic-version": "2023-06-01"}
    with httpx.Client(timeout=30) as client:
        with client.stream(
            "POST", gateway_server.base_url + path, json=body, headers=headers
        ) as resp:
            assert resp.status_code == 200
            events = 0
            for line in resp.iter_lines():
                events += line.startswith("data: ")
                if events >= 2:
                    break
    upstream = mock_upstream.wait_disconnect(DISCONNECT_WAIT_S)
    assert upstream is not None, (
        f"the upstream stream was not cancelled within {DISCONNECT_WAIT_S} s of the client "
        f"leaving: {[(r.raw_path, r.events_sent, r.completed) for r in mock_upstream.requests]}"
        f"\n{gateway_server.logs()}"
    )
    assert not upstream.completed and upstream.events_sent < 100


def test_the_upstream_connection_is_kept_alive_and_replaced_after_a_cut(
    claude: Any, mock_upstream: MockUpstream
) -> None:
    """Requests one after another share one kept-alive upstream connection; a stream the
    upstream cuts takes its connection with it, and the next request opens a new one."""

    def say_hi(stream: bool) -> str:
        kwargs: dict[str, Any] = {"model": ANTHROPIC_MODEL, "max_tokens": 64,
                                  "messages": [{"role": "user", "content": "say hi"}]}  # fmt: skip
        if not stream:
            return "".join(b.text for b in claude.messages.create(**kwargs).content)
        with claude.messages.stream(**kwargs) as s:
            return "".join(s.text_stream)

    assert [say_hi(False), say_hi(True), say_hi(True)] == [DEFAULT_TEXT] * 3
    mock_upstream.enqueue(Reply(events=anthropic_events("one two three four"), cut_after=2))
    with pytest.raises(anthropic.APIError, match="the upstream stream broke"):
        say_hi(True)
    assert say_hi(True) == DEFAULT_TEXT
    peers = [r.peer for r in mock_upstream.requests]
    assert len(peers) == 5 and all(peers)
    assert len(set(peers[:4])) == 1, peers  # one connection until the cut
    assert peers[4] != peers[3]
