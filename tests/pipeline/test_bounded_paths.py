"""The 200-concurrent proof on every billable path of issue 10's table: a loopback upstream
answers each request with the most usage the provider may legally bill for it, and the
spend it served (priced from its own replies) never exceeds the budget."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from conftest import gateway_config
from inprocess import running
from tollway.accounting.bounds import read_shape, request_bound
from tollway.accounting.cost import compute_cost
from tollway.accounting.limits import model_limits
from tollway.accounting.pricing import PriceBook
from tollway.accounting.usage import (
    Usage,
    anthropic_usage,
    openai_chat_usage,
    responses_usage,
)
from tollway.config import Budget
from upstream_mock import (
    MockUpstream,
    RecordedRequest,
    Reply,
    anthropic_message,
    chat_completion,
    responses_object,
)

BOOK = PriceBook()
Replier = Callable[[dict[str, Any]], Reply]


def _anthropic(input_tokens: Callable[[dict[str, Any]], int]) -> Replier:
    def reply(body: dict[str, Any]) -> Reply:
        usage = {"input_tokens": input_tokens(body), "output_tokens": body["max_tokens"],
                 "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}  # fmt: skip
        return Reply(json=anthropic_message(model=body["model"], usage=usage))

    return reply


def _chat(completion: Callable[[dict[str, Any]], int]) -> Replier:
    def reply(body: dict[str, Any]) -> Reply:
        usage = {"prompt_tokens": 30, "completion_tokens": completion(body), "total_tokens": 0}
        return Reply(json=chat_completion(model=body["model"], usage=usage))

    return reply


def _responses(input_tokens: int, output: Callable[[dict[str, Any]], int]) -> Replier:
    def reply(body: dict[str, Any]) -> Reply:
        usage = {"input_tokens": input_tokens, "output_tokens": output(body), "total_tokens": 0}
        return Reply(json=responses_object(model=body["model"], usage=usage))

    return reply


GPT5 = model_limits("gpt-5")
HAIKU = model_limits("claude-haiku-4-5")
DOC = {"type": "document", "source": {"type": "url", "url": "https://example.com/big.pdf"}}
SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}

# (path, request body, the most usage the provider may bill for it)
PATHS: dict[str, tuple[str, dict[str, Any], Replier]] = {
    "previous_response_id": (
        "/v1/responses",
        {"model": "gpt-5", "previous_response_id": "resp_1", "input": "go on",
         "max_output_tokens": 100},
        _responses(GPT5.context_window, lambda b: b["max_output_tokens"]),
    ),
    "file_id": (
        "/v1/responses",
        {"model": "gpt-5", "max_output_tokens": 50, "input": [{"role": "user", "content": [
            {"type": "input_file", "file_id": "file-1"}]}]},
        _responses(GPT5.context_window, lambda b: b["max_output_tokens"]),
    ),
    "url_document": (
        "/v1/messages",
        {"model": "claude-haiku-4-5", "max_tokens": 200,
         "messages": [{"role": "user", "content": [DOC]}]},
        _anthropic(lambda b: HAIKU.context_window),
    ),
    "server_tool": (
        "/v1/messages",
        {"model": "claude-haiku-4-5", "max_tokens": 200, "tools": [SEARCH],
         "messages": [{"role": "user", "content": "search"}]},
        _anthropic(lambda b: 3 * HAIKU.context_window),  # three samplings over a full context
    ),
    "n": (
        "/v1/chat/completions",
        {"model": "gpt-5", "n": 8, "max_completion_tokens": 500, "messages": []},
        _chat(lambda b: 8 * b["max_completion_tokens"]),
    ),
    "both_caps": (
        "/v1/chat/completions",
        {"model": "gpt-5", "max_tokens": 1, "max_completion_tokens": 20000, "messages": []},
        _chat(lambda b: max(b["max_tokens"], b["max_completion_tokens"])),
    ),
    "no_cap": (
        "/v1/chat/completions",
        {"model": "gpt-5", "messages": [{"role": "user", "content": "write"}]},
        _chat(lambda b: b.get("max_completion_tokens") or GPT5.max_output),
    ),
}  # fmt: skip


def _usage(req: RecordedRequest) -> Usage:
    """The usage the upstream sent in one reply."""
    read = {"/v1/messages": anthropic_usage, "/v1/chat/completions": openai_chat_usage,
            "/v1/responses": responses_usage}[req.path]  # fmt: skip
    usage = read(bytes(req.reply_body))
    assert usage is not None
    return usage


def _served_cost(req: RecordedRequest) -> Decimal:
    """What the upstream billed for one reply, priced from the usage it sent."""
    if req.reply_status != 200:
        return Decimal(0)
    model = msgspec.json.decode(req.body)["model"]
    return compute_cost(_usage(req), BOOK.lookup(model)).total


@pytest.mark.parametrize("path", sorted(PATHS))
async def test_200_concurrent_requests_on_every_billable_path(tmp_path: Path, path: str) -> None:
    url, doc, usage = PATHS[path]
    with MockUpstream() as mock:

        def respond(req: RecordedRequest) -> Reply:
            return usage(msgspec.json.decode(req.body))

        mock.responder = respond
        async with running(tmp_path, gateway_config(mock)) as gw:
            one = await _one_worst_case(gw, url, doc)
            limit = one * Decimal("3.5")
            key = await gw.key("cap", budgets=[Budget(max_limit=str(limit), reset_duration="1d")])
            headers = {"x-api-key": key, "authorization": f"Bearer {key}"}
            body = msgspec.json.encode(doc)

            async def call() -> int:
                r = await gw.client.post(url, content=body, headers=headers)
                return r.status_code

            statuses = await asyncio.gather(*(call() for _ in range(200)))
            assert set(statuses) <= {200, 402} and statuses.count(200) >= 3, statuses
            await gw.services.writer.flush()
            served = sum((_served_cost(r) for r in mock.requests), Decimal(0))
            rows = await gw.services.store.query(
                "SELECT SUM(cost_total_pico) AS pico, COUNT(*) AS n FROM requests "
                "WHERE status = 200"
            )
            recorded = Decimal(rows[0]["pico"]) / 10**12
            assert rows[0]["n"] == statuses.count(200) == len(mock.requests)
            assert recorded == served  # to the picodollar
            assert served <= limit, (path, served, limit)


async def _one_worst_case(gw: Any, url: str, doc: dict[str, Any]) -> Decimal:
    """The reservation one such request makes."""
    price = gw.services.prices.lookup(doc["model"])
    shape = read_shape(msgspec.json.encode(doc), _DIALECTS[url])
    return request_bound(shape, price, model_limits(doc["model"])).cost


_DIALECTS = {"/v1/messages": "anthropic", "/v1/chat/completions": "openai_chat",
             "/v1/responses": "openai_responses"}  # fmt: skip


async def test_a_request_is_shrunk_to_fit_what_is_left(tmp_path: Path) -> None:
    doc = {"model": "claude-sonnet-4-5", "max_tokens": 64000,
           "thinking": {"type": "enabled", "budget_tokens": 40000},
           "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    body = msgspec.json.encode(doc)
    with MockUpstream() as mock:
        mock.responder = lambda req: _anthropic(lambda b: 10)(msgspec.json.decode(req.body))
        async with running(tmp_path, gateway_config(mock)) as gw:
            fit = await gw.key("fit", budgets=[Budget(max_limit="0.05", reset_duration="1d")])
            strict = await gw.key("strict", budgets=[Budget(max_limit="0.05", reset_duration="1d",
                                                            shrink_to_fit=False)])  # fmt: skip
            r = await gw.client.post("/v1/messages", content=body, headers={"x-api-key": fit})
            assert r.status_code == 200
            sent = msgspec.json.decode(mock.requests[-1].body)
            price = BOOK.lookup("claude-sonnet-4-5")
            assert price is not None
            room = Decimal("0.05") - (len(body) + 1024) * price.rates.input / 10**6
            assert sent["max_tokens"] == int(room / (price.rates.output / 10**6))
            assert sent["thinking"] == {"type": "enabled", "budget_tokens": sent["max_tokens"] - 1}
            r = await gw.client.post("/v1/messages", content=body, headers={"x-api-key": strict})
            assert r.status_code == 402 and len(mock.requests) == 1
            assert "can never run under it" in r.json()["error"]["message"]


async def test_402_says_when_one_request_can_never_fit(tmp_path: Path) -> None:
    body = b'{"model":"claude-sonnet-4-5","max_tokens":64000,"messages":[]}'
    async with running(tmp_path) as gw:
        key = await gw.key("tiny", budgets=[Budget(max_limit="0.001", reset_duration="1d")])
        r = await gw.client.post("/v1/messages", content=body, headers={"x-api-key": key})
        assert r.status_code == 402
        message = r.json()["error"]["message"]
        assert "more than the whole budget ($0.001), so it can never run" in message
        assert "wait for the reset" not in message


async def test_token_limits_count_real_input_and_output(tmp_path: Path) -> None:
    """Admission holds the request's token bound; settling corrects it to the real input
    plus output, so 200 concurrent requests and then a drain never pass the limit."""
    from tollway.accounting.bounds import token_bound
    from tollway.config import RateLimit

    doc = {"model": "claude-haiku-4-5", "max_tokens": 400,
           "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    body = msgspec.json.encode(doc)
    prompt, out, _ = token_bound(read_shape(body, "anthropic"), HAIKU)
    held, real = prompt + out, 100 + 400
    limit = 2 * real + held  # room for the held bound after two real requests, not three
    with MockUpstream() as mock:
        mock.responder = lambda req: _anthropic(lambda b: 100)(msgspec.json.decode(req.body))
        async with running(tmp_path, gateway_config(mock)) as gw:
            key = await gw.key("tpm", rate_limit=RateLimit(token_max_limit=limit,
                                                           token_reset_duration="1h"))  # fmt: skip

            async def call() -> int:
                r = await gw.client.post("/v1/messages", content=body, headers={"x-api-key": key})
                return r.status_code

            burst = await asyncio.gather(*(call() for _ in range(200)))
            assert burst.count(200) == 1 and burst.count(429) == 199
            drained = [await call() for _ in range(5)]
            assert drained == [200, 200, 429, 429, 429]
            served = sum(
                u.input_tokens + u.output_tokens for r in mock.requests for u in [_usage(r)]
            )
            assert served == 3 * real <= limit
