"""The real Claude Code CLI driven into a $5 budget until the gateway refuses it.

The mock upstream answers like Anthropic would bill a Claude Code turn: the prompt is
about one token per four bytes of the body, mostly cache reads after the first request
(the 24 tool definitions repeat), and 16,000 output tokens (or the output cap the gateway
shrank the request to). The gateway must never let the spend pass $5; how close it gets
(the spend ratio) is printed and kept in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from clients import installed
from conftest import GatewayServer
from test_claude_code import run_claude
from tollway.accounting.cost import compute_cost
from tollway.accounting.pricing import PriceBook
from tollway.accounting.usage import anthropic_usage
from upstream_mock import MockUpstream, RecordedRequest, Reply, anthropic_events, anthropic_message

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
LIMIT = Decimal(5)
OUTPUT = 16000


@pytest.fixture(scope="module")
def claude_bin() -> Path:
    return installed("claude")


def _answer(seen: set[str]) -> Any:
    def reply(req: RecordedRequest) -> Reply | None:
        if req.method != "POST" or req.path != "/v1/messages":
            return None
        body = req.json()
        prompt = len(req.body) // 4
        prefix = json.dumps(body.get("tools", []))[:4000]
        cached = int(prompt * 0.9) if prefix in seen else 0
        seen.add(prefix)
        usage = {"input_tokens": prompt - cached - prompt // 20,
                 "cache_creation_input_tokens": prompt // 20 if cached else prompt - cached,
                 "cache_read_input_tokens": cached,
                 "output_tokens": min(OUTPUT, int(body.get("max_tokens", OUTPUT)))}  # fmt: skip
        if not cached:
            usage["input_tokens"] = 0
        model = body.get("model", "claude-opus-4-8")
        if body.get("stream"):
            return Reply(events=anthropic_events(model=model, usage=usage))
        return Reply(json=anthropic_message(model=model, usage=usage))

    return reply


def test_claude_code_spends_a_5_dollar_budget_and_never_more(
    claude_bin: Path, gateway_server: GatewayServer, mock_upstream: MockUpstream, tmp_path: Path
) -> None:
    mock_upstream.responder = _answer(set())
    created = gateway_server.create_key(
        "five-dollars", budgets=[{"max_limit": "5", "reset_duration": "1d"}]
    )
    runs, refused = 0, None
    while runs < 60:
        runs += 1
        result = run_claude(claude_bin, gateway_server, created["key"], tmp_path / "home",
                            "-p", "write the module", check=False)  # fmt: skip
        if result.get("is_error"):
            refused = str(result.get("result"))
            break
    assert refused is not None and "budget exceeded" in refused, (runs, refused)
    status = httpx.get(f"{gateway_server.base_url}/api/virtual-keys/{created['id']}/status",
                       headers=gateway_server.admin_headers()).json()  # fmt: skip
    [budget] = status["budgets"]
    spent = Decimal(budget["spent"])
    # What the upstream billed, from its own replies, agrees with the ledger to the cent.
    book = PriceBook()
    served = Decimal(0)
    for req in mock_upstream.calls("/v1/messages", "POST"):
        usage = anthropic_usage(json.dumps(_final_usage(req)).encode())
        assert usage is not None
        served += compute_cost(usage, book.lookup(req.json().get("model", ""))).total
    assert served == spent <= LIMIT
    ratio = spent / LIMIT
    print(f"\nClaude Code: {runs} runs, {len(mock_upstream.calls('/v1/messages'))} requests, "
          f"spent ${spent:.4f} of $5 ({ratio:.1%}); refused with: {refused}")  # fmt: skip
    assert not status["usable"] or status["request_now"]["can_request"]
    assert ratio >= Decimal("0.85")


def _final_usage(req: RecordedRequest) -> dict[str, Any]:
    """The usage the mock billed for one reply (its message_delta or its JSON body)."""
    text = bytes(req.reply_body).decode()
    if req.json().get("stream"):
        start = final = {}
        for line in text.splitlines():
            if line.startswith("data: "):
                data = json.loads(line[6:])
                if data.get("type") == "message_start":
                    start = data["message"]["usage"]
                if data.get("type") == "message_delta":
                    final = data["usage"]
        return {"usage": {**start, **final}}
    return dict(json.loads(text))
