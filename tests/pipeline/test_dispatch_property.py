"""A property over thousands of random fault scripts, in-process (no sockets): whatever
the upstreams do (error statuses, timeouts, connection errors, streams cut at byte N),
the client sees a complete response or the upstream's error, never a fake success; no
try follows a committed one; and the spend recorded equals what the upstreams billed,
priced at the model that answered each time (two providers, two prices)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tollway.accounting.cost import compute_cost
from tollway.accounting.usage import Usage, estimate_tokens
from tollway.admin.ops import EntityOps, KeyInput
from tollway.app import build_app
from tollway.config import Budget, parse_config
from tollway.errors import UpstreamError, UpstreamTimeout
from tollway.providers.base import ANTHROPIC, KeyChoice, UpstreamRequest
from tollway.services import Services
from tollway.storage import open_store
from upstream_mock import anthropic_error, anthropic_events

TEXT = "Hello there"  # 3 tokens by the estimate: below the 9 the final usage reports
USAGE = {"input_tokens": 21, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
         "output_tokens": 9}  # fmt: skip
EVENTS = [e.encode() for e in anthropic_events(TEXT, usage=USAGE)]
STREAM = b"".join(EVENTS)
BODY = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 50, "stream": True,
                   "messages": [{"role": "user", "content": "hi"}]}).encode()  # fmt: skip
MAX_ATTEMPTS = 4
EXAMPLES = 2000

Script = tuple[str, int]  # ("status", 529) | ("timeout", 0) | ("conn", 0) | ("ok", 0) | ("cut", N)


def _cut_points() -> list[int]:
    """Byte offsets inside an event's data (its JSON never complete), event by event."""
    points, at = [], 0
    for event in EVENTS:
        points += range(at, at + len(event) - 3, 7)
        at += len(event)
    return points


CUTS = _cut_points()
SCRIPT = st.one_of(
    st.tuples(st.just("status"), st.sampled_from([408, 429, 500, 502, 503, 504, 529, 400])),
    st.tuples(st.sampled_from(["timeout", "conn", "ok"]), st.just(0)),
    st.tuples(st.just("cut"), st.sampled_from(CUTS)),
)


def billed(cut: int | None) -> Usage:
    """What a stream delivered up to byte ``cut`` (None: all of it) bills: the usage its
    complete events report, output at least the delivered text."""
    if cut is None:
        return Usage(21, 9)
    done, at = [], 0
    for event in EVENTS:
        at += len(event)
        if at <= cut:
            done.append(event)
    started = any(b"message_start" in e for e in done)
    final = any(b"message_delta" in e for e in done)
    chars = sum(len(json.loads(e.split(b"data: ", 1)[1])["delta"]["text"])
                for e in done if b"text_delta" in e)  # fmt: skip
    out = 9 if final else (1 if started else 0)
    return Usage(21 if started else 0, max(out, estimate_tokens(chars)), partial=True)


class _Resp:
    def __init__(self, status: int, body: bytes, cut: int | None = None) -> None:
        self.status = status
        kind = b"text/event-stream" if status == 200 else b"application/json"
        self.headers = [(b"content-type", kind)]
        self._body, self._cut = body, cut

    async def chunks(self) -> AsyncIterator[bytes]:
        data = self._body if self._cut is None else self._body[: self._cut]
        for i in range(0, len(data), 97):
            yield data[i : i + 97]
        if self._cut is not None:
            raise UpstreamError("the upstream stream broke: cut")

    async def read(self) -> bytes:
        return b"".join([c async for c in self.chunks()])

    def close(self) -> None:
        pass


@dataclass
class Scripted:
    """A provider that plays the next script of a shared list on every send."""

    name: str
    keys: list[KeyChoice]
    plays: list[tuple[str, str, Script]]  # (provider, model, script), in order
    scripts: list[Script] = field(default_factory=list)
    dialects: frozenset[str] = frozenset({ANTHROPIC})
    kind: str = "anthropic"

    async def send(self, request: UpstreamRequest, key: KeyChoice) -> _Resp:
        script = self.scripts.pop(0) if self.scripts else ("ok", 0)
        self.plays.append((self.name, request.model, script))
        kind, value = script
        if kind == "timeout":
            raise UpstreamTimeout(f"provider {self.name} did not answer (scripted)")
        if kind == "conn":
            raise UpstreamError(f"cannot reach provider {self.name} (scripted)")
        if kind == "status":
            err = anthropic_error(value, "api_error", f"scripted {value}")
            return _Resp(value, json.dumps(err.json).encode())
        return _Resp(200, STREAM, value if kind == "cut" else None)

    async def close(self) -> None:
        pass


CONFIG = yaml.safe_dump({
    "providers": {
        "alpha": {"type": "anthropic", "base_url": "http://127.0.0.1:9", "keys": [
            {"name": "a1", "value": "sk-a1"}, {"name": "a2", "value": "sk-a2"}]},
        "beta": {"type": "anthropic", "base_url": "http://127.0.0.1:9",
                 "keys": [{"name": "b1", "value": "sk-b1"}]},
    },
    "routing": {"fallbacks": {"alpha": ["beta/claude-sonnet-4-5"]},
                "retry": {"max_attempts": MAX_ATTEMPTS, "burst": 100000, "per_second": 1000},
                "affinity": {"enabled": False}},
    "logging": {"content": False},
}, sort_keys=False)  # fmt: skip


def _committed(script: Script) -> bool:
    return script[0] == "ok" or (script[0] == "cut" and script[1] > 0)


def _status_of(script: Script) -> int:
    kind, value = script
    return {"status": value, "timeout": 504, "conn": 502, "cut": 502}[kind]


def test_random_fault_scripts_never_fake_a_success(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_property(tmp_path))
    finally:
        loop.close()


async def _property(tmp_path: Path) -> None:
    services = Services(parse_config(CONFIG, environ={}),
                        open_store(f"sqlite:///{tmp_path / 'p.db'}"))  # fmt: skip
    await services.start()
    plays: list[tuple[str, str, Script]] = []
    shared: list[Script] = []
    fakes = {n: Scripted(n, p.keys, plays) for n, p in services.providers.items()}
    for fake in fakes.values():
        fake.scripts = shared
    services._retired.extend(services.providers.values())
    services.providers = dict(fakes)  # type: ignore[arg-type]
    services.router = services.gateway.router = services._router()
    _r, secret = await EntityOps(services.store).create("virtual_key", KeyInput(
        name="prop", budgets=[Budget(max_limit="1000000", reset_duration="1d")]))  # fmt: skip
    await services.registry.refresh()
    assert secret is not None
    key = next(iter(services.registry.snapshot.keys.values()))
    transport = httpx.ASGITransport(app=build_app(services))
    client = httpx.AsyncClient(transport=transport, base_url="http://gw")
    loop = asyncio.get_running_loop()
    seen: Counter[str] = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.lists(SCRIPT, max_size=6))
    def check(scripts: list[Script]) -> None:
        plays.clear()
        shared[:] = scripts
        before = services.admission.statuses(key)[0].spent
        r = asyncio.run_coroutine_threadsafe(_send(client, secret), loop)
        status, text = r.result(30)
        _check(services, key, plays, status, text, before)
        seen["examples"] += 1
        seen[f"last {plays[-1][2][0]}"] += 1
        seen["served by beta"] += plays[-1][0] == "beta" and _committed(plays[-1][2])
        seen["failed over"] += len(plays) > 1

    try:
        await asyncio.to_thread(check)
    finally:
        await client.aclose()
        await services.stop()
    assert seen["examples"] == EXAMPLES
    # the scripts reach every path: failovers, cuts after commit, answers from the fallback
    # (another model, another price), and requests every try of which failed
    for path in ("last ok", "last cut", "last status", "last timeout", "last conn",
                 "served by beta", "failed over"):  # fmt: skip
        assert seen[path] >= EXAMPLES // 50, seen


async def _send(client: httpx.AsyncClient, secret: str) -> tuple[int, str]:
    r = await client.post("/v1/messages", content=BODY, headers={"x-api-key": secret})
    return r.status_code, r.text


def _check(services: Services, key: Any, plays: list[tuple[str, str, Script]], status: int,
           text: str, before: Decimal) -> None:  # fmt: skip
    assert 1 <= len(plays) <= MAX_ATTEMPTS, plays
    assert not any(_committed(s) for _, _, s in plays[:-1]), plays  # nothing after a commit
    *_, (provider, model, last) = plays
    if last[0] == "ok":
        assert status == 200 and text == STREAM.decode(), (plays, text[-300:])
    elif _committed(last):
        assert status == 200 and '"type":"message_stop"' not in text, plays
        assert text.startswith(STREAM[: last[1]].decode("utf-8", "replace")[:50])
        assert text.rstrip().endswith("}") and "event: error" in text, text[-300:]
    else:
        assert status == _status_of(last), (plays, status, text)
        assert "message_start" not in text and json.loads(text)["type"] == "error"
    spent = services.admission.statuses(key)[0]
    assert spent.reserved == 0, plays  # nothing left held
    expected = Decimal(0)
    for name, served, script in plays:
        if _committed(script):
            usage = billed(None if script[0] == "ok" else script[1])
            expected += compute_cost(usage, services.prices.resolve(served, name)).total
    assert spent.spent - before == expected, (plays, spent.spent - before, expected)
