"""Failover before the first byte, in-process against a loopback mock: other keys first,
then the fallback chain; one deadline; retry budget and max attempts; breakers; no retry
once a byte reached the client; every attempt logged with its reason."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from dispatch_helpers import B1, MSG, P1, P2, by_key, config, sent_with

from inprocess import Running, running
from tollway.accounting.cost import compute_cost
from tollway.accounting.usage import Usage
from tollway.config import Budget
from tollway.pipeline.route import Target
from upstream_mock import MockUpstream, Reply, anthropic_error, anthropic_events

pytestmark = pytest.mark.timeout(60)
OVERLOADED = anthropic_error(529, "overloaded_error", "Overloaded")


def _529(_req: Any) -> Reply:
    return anthropic_error(529, "overloaded_error", "Overloaded")


async def _post(gw: Running, key: str, stream: bool = True, **headers: str) -> Any:
    body = json.dumps({**MSG, "stream": stream})
    return await gw.client.post("/v1/messages", content=body,
                                headers={"x-api-key": key, **headers})  # fmt: skip


async def _rows(gw: Running) -> list[dict[str, Any]]:
    await gw.services.writer.flush()
    rows = await gw.services.store.query("SELECT * FROM requests ORDER BY started_at")
    return [dict(r) for r in rows]


async def _attempts(gw: Running, request_id: str) -> list[dict[str, Any]]:
    rows = await gw.services.store.query(
        "SELECT * FROM attempts WHERE request_id = ? ORDER BY idx", (request_id,)
    )
    return [dict(r) for r in rows]


async def test_529_tries_the_other_key_then_the_fallback_provider(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    mock_upstream.responder = by_key({P1: _529, P2: _529})
    async with running(tmp_path, config(mock_upstream)) as gw:
        key = await gw.key()
        r = await _post(gw, key)
        assert r.status_code == 200
        assert r.text.count("event: message_stop") == 1 and "event: error" not in r.text
        [row] = await _rows(gw)
        attempts = await _attempts(gw, row["id"])
    assert row["provider"] == "backup" and row["retries"] == 2 and row["fallback_index"] == 1
    assert [(a["provider"], a["status"]) for a in attempts] == [
        ("primary", 529), ("primary", 529), ("backup", 200)]  # fmt: skip
    assert {a["key_name"] for a in attempts[:2]} == {"one", "two"}
    assert attempts[0]["reason"] == "by model: 529"
    assert attempts[2]["reason"] == "fallback of primary"
    assert len(sent_with(mock_upstream, P1)) == len(sent_with(mock_upstream, P2)) == 1


async def test_no_retry_once_a_byte_reached_the_client(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    cut = Reply(events=anthropic_events("one two three four"), cut_after=3)
    mock_upstream.responder = by_key({P1: lambda _r: cut, P2: lambda _r: cut})
    async with running(tmp_path, config(mock_upstream)) as gw:
        key = await gw.key()
        r = await _post(gw, key)
        [row] = await _rows(gw)
    assert r.status_code == 200 and "event: message_stop" not in r.text
    assert r.text.rstrip().splitlines()[-1].startswith("data: ") and "event: error" in r.text
    assert row["status"] == 200 and row["error_type"] == "upstream_stream_error"
    assert row["retries"] == 0 and sent_with(mock_upstream, B1) == []


async def test_a_stream_cut_before_its_first_byte_fails_over(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    cut = Reply(events=anthropic_events(), cut_after=0)
    mock_upstream.responder = by_key({P1: lambda _r: cut, P2: lambda _r: cut})
    async with running(tmp_path, config(mock_upstream)) as gw:
        r = await _post(gw, await gw.key())
        [row] = await _rows(gw)
        attempts = await _attempts(gw, row["id"])
    assert r.status_code == 200 and r.text.count("event: message_stop") == 1
    assert [a["status"] for a in attempts] == [0, 0, 200]
    assert attempts[0]["error_type"] == "api_error"
    assert "before the first byte" in attempts[0]["reason"] or "broke" in attempts[0]["reason"]


async def test_a_hung_provider_times_out_and_the_next_answers(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    hung = Reply(json={}, delay=10)
    mock_upstream.responder = by_key({P1: lambda _r: hung, P2: lambda _r: hung})
    text = config(mock_upstream, first_byte_timeout_s=0.3)
    async with running(tmp_path, text) as gw:
        t = time.monotonic()
        r = await _post(gw, await gw.key(), stream=False)
        took = time.monotonic() - t
        [row] = await _rows(gw)
        attempts = await _attempts(gw, row["id"])
    assert r.status_code == 200 and r.json()["type"] == "message"
    assert took < 5, took
    assert [(a["status"], a["error_type"]) for a in attempts] == [
        (0, "timeout_error"), (0, "timeout_error"), (200, None)]  # fmt: skip


async def test_one_deadline_for_all_attempts(tmp_path: Path, mock_upstream: MockUpstream) -> None:
    hung = Reply(json={}, delay=10)
    mock_upstream.responder = lambda _r: hung
    routing = {"fallbacks": {"primary": ["backup"]}, "retry": {"deadline_s": 0.5}}
    async with running(tmp_path, config(mock_upstream, routing)) as gw:
        t = time.monotonic()
        r = await _post(gw, await gw.key(), stream=False)
        took = time.monotonic() - t
        [row] = await _rows(gw)
    assert r.status_code == 504 and "routing.retry.deadline_s" in r.json()["error"]["message"]
    assert took < 3, took
    assert row["status"] == 504 and row["retries"] == 0  # the one attempt used it all


async def test_max_attempts_bounds_the_tries(tmp_path: Path, mock_upstream: MockUpstream) -> None:
    mock_upstream.responder = lambda _r: OVERLOADED
    routing = {"fallbacks": {"primary": ["backup"]}, "retry": {"max_attempts": 2}}
    async with running(tmp_path, config(mock_upstream, routing)) as gw:
        r = await _post(gw, await gw.key())
    assert r.status_code == 529 and r.json()["error"]["type"] == "overloaded_error"
    assert len(mock_upstream.calls("/v1/messages")) == 2


async def test_the_retry_budget_stops_retries_that_would_multiply(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    """One retry token per provider and none earned: the first request fails over (a token
    of primary for its other key, one of backup), later ones answer the upstream's 529
    after a single try (Claude Code retries those itself)."""
    mock_upstream.responder = by_key({P1: _529, P2: _529})
    retry = {"burst": 1, "ratio": 0, "per_second": 0}
    routing = {"fallbacks": {"primary": ["backup"]}, "retry": retry,
               "breaker": {"failures": 1000}}  # fmt: skip
    async with running(tmp_path, config(mock_upstream, routing)) as gw:
        key = await gw.key()
        statuses = [(await _post(gw, key)).status_code for _ in range(3)]
        rows = await _rows(gw)
    assert statuses == [200, 529, 529]
    assert [row["retries"] for row in rows] == [2, 0, 0]
    assert len(mock_upstream.calls("/v1/messages")) == 5


async def test_an_open_circuit_is_skipped_while_another_is_healthy(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    mock_upstream.responder = by_key({P1: _529, P2: _529})
    routing = {"fallbacks": {"primary": ["backup"]}, "breaker": {"failures": 1}}
    async with running(tmp_path, config(mock_upstream, routing)) as gw:
        key = await gw.key()
        assert (await _post(gw, key)).status_code == 200
        assert (await _post(gw, key)).status_code == 200
        rows = await _rows(gw)
        second = await _attempts(gw, rows[1]["id"])
    assert len(sent_with(mock_upstream, P1)) == len(sent_with(mock_upstream, P2)) == 1
    assert [(a["provider"], a["status"]) for a in second] == [("backup", 200)]


async def test_a_4xx_is_the_answer_and_is_not_retried(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    bad = anthropic_error(400, "invalid_request_error", "max_tokens: too large")
    mock_upstream.responder = lambda _r: bad
    async with running(tmp_path, config(mock_upstream)) as gw:
        r = await _post(gw, await gw.key())
    assert r.status_code == 400 and r.json()["error"]["message"] == "max_tokens: too large"
    assert len(mock_upstream.calls("/v1/messages")) == 1


async def test_a_session_keeps_its_provider_and_key(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    """Keys weighted 1:1 would split 20 requests; one session stays on one key."""
    async with running(tmp_path, config(mock_upstream)) as gw:
        key = await gw.key()
        for _ in range(20):
            r = await _post(gw, key, **{"x-claude-code-session-id": "s-1"})
            assert r.status_code == 200
        for i in range(40):
            await _post(gw, key, **{"x-claude-code-session-id": f"other-{i}"})
    first = mock_upstream.calls("/v1/messages")[:20]
    assert len({r.header("x-api-key") for r in first}) == 1
    later = mock_upstream.calls("/v1/messages")[20:]
    assert {r.header("x-api-key") for r in later} == {P1, P2}


async def test_a_session_moves_when_its_key_fails_and_stays_there(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    routing = {"fallbacks": {"primary": ["backup"]}, "breaker": {"failures": 1000}}
    async with running(tmp_path, config(mock_upstream, routing)) as gw:
        key = await gw.key()
        session = {"x-claude-code-session-id": "s-2"}
        assert (await _post(gw, key, **session)).status_code == 200
        pinned = mock_upstream.calls("/v1/messages")[0].header("x-api-key")
        other = P2 if pinned == P1 else P1
        mock_upstream.responder = by_key({pinned or "": _529})
        assert (await _post(gw, key, **session)).status_code == 200
        mock_upstream.responder = None
        for _ in range(5):
            assert (await _post(gw, key, **session)).status_code == 200
    keys = [r.header("x-api-key") for r in mock_upstream.calls("/v1/messages")]
    assert keys == [pinned, pinned, other, other, other, other, other, other]


async def test_a_pricier_fallback_is_reserved_for_and_billed_at_its_price(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    """The fallback asks for opus: its worst case is reserved before its try; with a budget
    that covers haiku's worst case only, it is skipped and the 529 is the answer."""
    mock_upstream.responder = by_key({P1: _529, P2: _529})
    routing = {"fallbacks": {"primary": ["backup/claude-opus-4-5"]}}
    async with running(tmp_path, config(mock_upstream, routing)) as gw:
        book = gw.services.prices
        rich = await gw.key("rich", budgets=[Budget(max_limit="1", reset_duration="1d")])
        r = await _post(gw, rich)
        assert r.status_code == 200
        [row] = await _rows(gw)
        usage = Usage(21, 9)  # the mock's reply
        opus = compute_cost(usage, book.resolve("claude-opus-4-5", "backup")).total
        assert row["served_model"] == "claude-opus-4-5" and row["provider"] == "backup"
        [status] = gw.services.admission.statuses(await _record(gw, "rich"))
        assert (status.spent, status.reserved) == (opus, 0)
        # a budget between haiku's worst case for this body and opus's
        body = json.dumps({**MSG, "stream": True}).encode()
        bounds = [
            gw.services.admission.worst_case(
                Target(gw.services.providers[p], m, m), body, "anthropic"
            ).cost
            for p, m in (("primary", "claude-haiku-4-5"), ("backup", "claude-opus-4-5"))
        ]
        assert bounds[0] < bounds[1]
        limit = str((bounds[0] + bounds[1]) / 2)
        poor = await gw.key("poor", budgets=[Budget(max_limit=limit, reset_duration="1d")])
        r = await _post(gw, poor)
        assert r.status_code == 529
        [status] = gw.services.admission.statuses(await _record(gw, "poor"))
        assert (status.spent, status.reserved) == (0, 0)
        rows = await _rows(gw)
        attempts = await _attempts(gw, rows[-1]["id"])
    assert [(a["provider"], a["status"]) for a in attempts] == [("primary", 529)] * 2
    assert len(sent_with(mock_upstream, B1)) == 1  # only the rich key's request


async def _record(gw: Running, name: str) -> Any:
    return next(k for k in gw.services.registry.snapshot.keys.values() if k.name == name)


async def test_open_circuits_wait_while_a_healthy_one_is_left(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    """The primary's keys cool down; when the backup then fails too, the cooling keys are
    not tried again. Once every circuit is open they are all tried, soonest to reopen first."""
    mock_upstream.responder = by_key({P1: _529, P2: _529})
    routing = {"fallbacks": {"primary": ["backup"]},
               "breaker": {"failures": 1, "cooldown_s": 60}}  # fmt: skip
    async with running(tmp_path, config(mock_upstream, routing)) as gw:
        key = await gw.key()
        assert (await _post(gw, key)).status_code == 200  # p1, p2 open; backup answers
        mock_upstream.responder = lambda _r: OVERLOADED
        assert (await _post(gw, key)).status_code == 529  # backup alone: now open too
        assert (await _post(gw, key)).status_code == 529  # every circuit open
        rows = await _rows(gw)
        second = await _attempts(gw, rows[1]["id"])
        third = await _attempts(gw, rows[2]["id"])
    assert [a["provider"] for a in second] == ["backup"]
    assert [a["provider"] for a in third] == ["primary", "primary", "backup"]
    assert all(a["reason"].endswith("every circuit is open, the soonest to reopen first: 529")
               for a in third)  # fmt: skip


async def test_failovers_and_open_circuits_are_in_the_metrics(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    mock_upstream.responder = by_key({P1: _529, P2: _529})
    routing = {"fallbacks": {"primary": ["backup"]}, "breaker": {"failures": 1}}
    async with running(tmp_path, config(mock_upstream, routing)) as gw:
        assert (await _post(gw, await gw.key())).status_code == 200
        text = (await gw.client.get("/metrics")).text
    assert 'tollway_upstream_failovers_total{provider="primary",status="529"} 2.0' in text
    assert "tollway_circuits_open 2.0" in text


async def test_failover_to_a_provider_of_another_dialect_is_translated(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    """The fallback speaks Chat Completions: the Anthropic client still gets one clean
    Anthropic stream, billed at the fallback model's price from the upstream's usage."""
    mock_upstream.responder = by_key({P1: _529, P2: _529})
    doc = yaml.safe_load(config(mock_upstream, {"fallbacks": {"primary": ["oai/gpt-4o"]}}))
    doc["providers"]["oai"] = {"type": "openai", "base_url": mock_upstream.base_url + "/v1",
                               "keys": [{"name": "one", "value": "sk-oai"}]}  # fmt: skip
    # an OpenAI-type provider at another URL has no maintained prices: one is set here
    # (without it the fallback is skipped under a budget: nothing unpriced runs on one)
    doc["pricing"] = {"gpt-4o": {"provider": "oai", "input": "2.5", "output": "10"}}
    async with running(tmp_path, yaml.safe_dump(doc, sort_keys=False)) as gw:
        key = await gw.key("k", budgets=[Budget(max_limit="1", reset_duration="1d")])
        r = await _post(gw, key)
        [row] = await _rows(gw)
        [status] = gw.services.admission.statuses(await _record(gw, "k"))
        price = gw.services.prices.resolve("gpt-4o", "oai")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.text.count("event: message_stop") == 1 and "event: error" not in r.text
    assert (row["provider"], row["served_model"]) == ("oai", "gpt-4o")
    [chat] = mock_upstream.calls("/v1/chat/completions")
    assert chat.json()["model"] == "gpt-4o" and chat.header("authorization") == "Bearer sk-oai"
    assert status.spent == compute_cost(Usage(17, 6), price).total and status.reserved == 0
