"""Log queries on a real SQLite file: filters, cursor pages, usage sums to the picodollar.

The scenarios (``check_*``) take any store; ``test_postgres.py`` runs them on PostgreSQL.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tollway.accounting.cost import compute_cost
from tollway.accounting.pricing import PriceBook
from tollway.accounting.usage import Usage
from tollway.admin.pricing import apply_stored_prices
from tollway.observability.retention import DAY, ContentRetention
from tollway.storage import queries
from tollway.storage.base import Store
from tollway.storage.queries import LogFilter
from tollway.storage.records import (
    AttemptRecord,
    Batch,
    ContentRecord,
    RequestRecord,
    StoredContent,
)
from tollway.storage.sqlite import SQLiteStore

T0 = 1_760_000_000.0  # 2025-10-09T08:53:20Z
BOOK = PriceBook()

# (id, seconds after T0, key, team, customer, model, provider, status, session, client, usage)
SEED: list[tuple[Any, ...]] = [
    ("r01", 0, "alpha", "red", "acme", "claude-sonnet-4-5", "anthropic", 200, "s1",
     "claude-code", Usage(1000, 500, 2000, 100, 50)),
    ("r02", 10, "alpha", "red", "acme", "claude-sonnet-4-5", "anthropic", 200, "s1",
     "claude-code", Usage(3, 7, 0, 0, 0)),
    ("r03", 20, "beta", "blue", "acme", "gpt-5", "openai", 200, None, "codex",
     Usage(123_456, 7_891, 11_111, 0, 0, 300)),
    ("r04", 30, "beta", "blue", None, "gpt-5", "openai", 429, None, "sdk", Usage()),
    ("r05", 86_400, "gamma", None, None, "claude-haiku-4-5", "anthropic", 200, "s2",
     "claude-code", Usage(250_000, 1, 0, 0, 0)),
    ("r06", 86_410, "gamma", None, None, "no-such-model", "openai", 200, None, "sdk",
     Usage(10, 10)),
    ("r07", 86_420, "alpha", "red", "acme", "claude-sonnet-4-5", "anthropic", 499, "s1",
     "claude-code", Usage(40, 3, 0, 0, 0, 0, True)),
]  # fmt: skip


def make_record(
    rid: str, at: float, key: str | None, model: str = "claude-sonnet-4-5", **kw: Any
) -> RequestRecord:
    usage: Usage = kw.pop("usage", Usage(10, 20))
    cost = compute_cost(usage, BOOK.lookup(model))
    return RequestRecord(
        id=rid, started_at=at, latency_ms=kw.pop("latency_ms", 100.0), surface="anthropic",
        status=kw.pop("status", 200), vk_id=f"vk_{key}" if key else None, vk_name=key,
        requested_model=model, served_model=model, provider=kw.pop("provider", "anthropic"),
        input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_5m_tokens=usage.cache_write_5m_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
        reasoning_tokens=usage.reasoning_tokens, partial=usage.partial,
        cost_input=cost.input, cost_output=cost.output, cost_cache_read=cost.cache_read,
        cost_cache_write_5m=cost.cache_write_5m, cost_cache_write_1h=cost.cache_write_1h,
        cost_total=cost.total, cost_unknown=cost.unknown,
        attempts=(AttemptRecord(rid, 0, at, "anthropic", "main", model, 200, 90.0),),
        **kw,
    )  # fmt: skip


def seed_records() -> list[RequestRecord]:
    out = []
    for rid, dt, key, team, customer, model, provider, status, session, client, usage in SEED:
        out.append(make_record(
            rid, T0 + dt, key, model, usage=usage, provider=provider, status=status,
            team_id=f"team_{team}" if team else None, team_name=team,
            customer_id=f"cus_{customer}" if customer else None, customer_name=customer,
            session_id=session, client=client, stream=rid in ("r01", "r07"),
        ))  # fmt: skip
    return out


async def seed(store: Store) -> list[RequestRecord]:
    records = seed_records()
    # Stored as earlier versions did (zlib, whole): still read back.
    raw = ContentRecord("r01", T0, b'{"model":"x"}', b"data: 1")
    content = StoredContent("r01", T0, None, zlib.compress(raw.request_body),
                            zlib.compress(raw.response_body), (), raw)  # fmt: skip
    await store.write_batch(Batch(requests=records, contents=[content]))
    return records


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


async def check_filters(store: Store) -> None:
    await seed(store)

    async def match(**kw: Any) -> list[str]:
        return ids((await queries.list_logs(store, LogFilter(**kw), limit=100)).records)

    assert await match() == ["r07", "r06", "r05", "r04", "r03", "r02", "r01"]
    assert await match(key="alpha") == ["r07", "r02", "r01"]
    assert await match(key="vk_beta") == ["r04", "r03"]
    assert await match(team="blue") == await match(team="team_blue") == ["r04", "r03"]
    assert await match(customer="acme") == ["r07", "r03", "r02", "r01"]
    assert await match(model="gpt-5") == ["r04", "r03"]
    assert await match(provider="openai") == ["r06", "r04", "r03"]
    assert await match(status=429) == ["r04"]
    assert await match(session="s1") == ["r07", "r02", "r01"]
    assert await match(client="codex") == ["r03"]
    assert await match(since=T0 + 10, until=T0 + 30) == ["r03", "r02"]
    assert await match(since=T0 + 86_400) == ["r07", "r06", "r05"]
    assert await match(key="alpha", status=200, since=T0 + 5) == ["r02"]
    costs = sorted((r.cost_total, r.id) for r in seed_records())
    (second, second_id), (top, top_id) = costs[-2:]
    assert second < top
    assert await match(min_cost=top) == [top_id]
    assert await match(min_cost=top + Decimal("1e-12")) == []
    assert await match(min_cost=top - Decimal("1e-13")) == [top_id]
    assert sorted(await match(min_cost=second)) == sorted([top_id, second_id])
    assert await match(key="nobody") == []


async def check_pagination(store: Store) -> None:
    # 25 records in 9 distinct instants: ties on started_at are ordered by id.
    records = [make_record(f"p{i:02d}", T0 + i // 3, "k") for i in range(25)]
    await store.write_batch(Batch(requests=records))
    expected = sorted(records, key=lambda r: (r.started_at, r.id), reverse=True)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await queries.list_logs(store, LogFilter(key="k"), limit=7, cursor=cursor)
        seen += ids(page.records)
        if len(seen) == 7:  # newer records arrive mid-way: later pages do not shift
            newer = [make_record(f"n{i}", T0 + 1000 + i, "k") for i in range(5)]
            await store.write_batch(Batch(requests=newer))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [r.id for r in expected]
    page = await queries.list_logs(store, LogFilter(key="k"), limit=30)
    assert len(page.records) == 30 and page.next_cursor is None
    tail = await queries.list_logs(store, LogFilter(key="k"), limit=29)
    assert tail.next_cursor is not None
    last = await queries.list_logs(store, LogFilter(key="k"), limit=5, cursor=tail.next_cursor)
    assert ids(last.records) == ["p00"] and last.next_cursor is None
    streamed = [r["id"] async for r in queries.iter_logs(store, LogFilter(key="k"))]
    assert len(streamed) == 30 == len(set(streamed))
    assert [r["id"] async for r in queries.iter_logs(store, LogFilter(), limit=3)] == [
        "n4", "n3", "n2",
    ]  # fmt: skip


async def check_usage(store: Store) -> None:
    records = await seed(store)
    groups = await queries.usage(store, "model")
    by_model = {g["group"]: g for g in groups}
    assert set(by_model) == {"claude-sonnet-4-5", "gpt-5", "claude-haiku-4-5", "no-such-model"}
    for model, group in by_model.items():
        mine = [r for r in records if r.served_model == model]
        assert group["requests"] == len(mine)
        assert group["errors"] == sum(r.status >= 400 for r in mine)
        assert group["unpriced"] == sum(r.cost_unknown for r in mine)
        for kind in ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h"):
            assert group[f"{kind}_tokens"] == sum(getattr(r, f"{kind}_tokens") for r in mine)
        for kind in ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "total"):
            exact = sum((getattr(r, f"cost_{kind}") for r in mine), Decimal(0))
            assert Decimal(queries.usd(group[f"cost_{kind}_pico"])) == exact, (model, kind)
    assert by_model["no-such-model"]["unpriced"] == 1
    assert by_model["no-such-model"]["cost_total_pico"] == 0
    # Dearest first.
    totals = [g["cost_total_pico"] for g in groups]
    assert totals == sorted(totals, reverse=True)
    grand = queries.total(groups)
    assert Decimal(queries.usd(grand["cost_total_pico"])) == sum(
        (r.cost_total for r in records), Decimal(0)
    )
    days = {g["group"]: g["requests"] for g in await queries.usage(store, "day")}
    assert days == {"2025-10-09": 4, "2025-10-10": 3}
    keys = {g["group"]: (g["name"], g["requests"]) for g in await queries.usage(store, "key")}
    assert keys == {"vk_alpha": ("alpha", 3), "vk_beta": ("beta", 2), "vk_gamma": ("gamma", 2)}
    teams = {g["group"]: g["requests"] for g in await queries.usage(store, "team")}
    assert teams == {"team_red": 3, "team_blue": 2, None: 2}
    for group_by in ("customer", "provider", "session", "client"):
        found = await queries.usage(store, group_by)  # type: ignore[arg-type]
        assert sum(g["requests"] for g in found) == 7
    ranged = await queries.usage(store, "key", LogFilter(since=T0 + 86_400))
    assert {g["group"]: g["requests"] for g in ranged} == {"vk_gamma": 2, "vk_alpha": 1}


async def check_big_totals(store: Store) -> None:
    # Each row fits in 64 bits (5e18 picodollars); their sum would not.
    big = Decimal("5000000.000000000001")
    records = [make_record(f"b{i}", T0 + i, "rich", usage=Usage()) for i in range(3)]
    records = [replace(r, cost_total=big, cost_output=big) for r in records]
    await store.write_batch(Batch(requests=records))
    (group,) = await queries.usage(store, "key")
    assert queries.usd(group["cost_total_pico"]) == "15000000.000000000003"
    assert queries.usd(group["cost_output_pico"]) == "15000000.000000000003"


async def check_get_log(store: Store) -> None:
    await seed(store)
    row = await queries.get_log(store, "r01")
    assert row is not None
    assert row["content"] == {"request": {"model": "x"}, "response": "data: 1"}
    assert [a["provider"] for a in row["attempts"]] == ["anthropic"]
    row = await queries.get_log(store, "r02")
    assert row is not None and row["content"] is None
    assert await queries.get_log(store, "nope") is None


async def check_retention_and_settings(store: Store) -> None:
    now = T0 + 40 * DAY
    contents = [StoredContent(f"c{i}", T0 + i * DAY, None, b"x", b"y", (),
                              ContentRecord(f"c{i}", T0 + i * DAY, b"x", b"y"))
                for i in range(40)]  # fmt: skip
    await store.write_batch(Batch(contents=contents))
    retention = ContentRetention(store, 30, clock=lambda: now)
    assert await retention.purge() == 10  # c0..c9 are more than 30 days old
    left = await store.query("SELECT request_id FROM contents ORDER BY created_at")
    assert [r["request_id"] for r in left] == [f"c{i}" for i in range(10, 40)]
    assert await retention.purge() == 0
    assert await ContentRetention(store, 0, clock=lambda: now).purge() == 0
    await store.put_setting("pricing", '{"my-model": {"input": "1.5", "output": "2"}}')
    book = PriceBook()
    assert await apply_stored_prices(store, book) == 1
    price = book.lookup("my-model")
    assert price is not None and price.rates.input == Decimal("1.5")


def test_time_parsing_and_cursor() -> None:
    assert queries.parse_time("1760000000") == T0
    assert queries.parse_time("2025-10-09T08:53:20Z") == T0
    assert queries.parse_time("2025-10-09T08:53:20") == T0  # naive is UTC
    assert queries.parse_time("2025-10-09T10:53:20+02:00") == T0
    assert queries.parse_time(None) is None
    for bad in ("yesterday", "nan", "inf", "2025-13-01"):
        with pytest.raises(ValueError):
            queries.parse_time(bad)
    cursor = queries.encode_cursor(T0 + 0.123456789, "req_1")
    assert queries.decode_cursor(cursor) == (T0 + 0.123456789, "req_1")
    for bad in ("", "!!", "eyJhIjoxfQ", queries.encode_cursor(T0, "x")[:-3]):
        with pytest.raises(ValueError):
            queries.decode_cursor(bad)
    assert queries.usd(0) == "0"
    assert queries.usd(1_500_000) == "0.0000015"
    assert queries.usd(12 * 10**12) == "12"
    assert queries.iso(T0) == "2025-10-09T08:53:20.000Z"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(f"sqlite:///{tmp_path / 'q.db'}")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def test_filters(store: SQLiteStore) -> None:
    await check_filters(store)


async def test_pagination_is_stable(store: SQLiteStore) -> None:
    await check_pagination(store)


async def test_usage_sums_are_exact(store: SQLiteStore) -> None:
    await check_usage(store)


async def test_usage_totals_past_64_bits(store: SQLiteStore) -> None:
    await check_big_totals(store)


async def test_get_log_with_content(store: SQLiteStore) -> None:
    await check_get_log(store)


async def test_retention_and_stored_prices(store: SQLiteStore) -> None:
    await check_retention_and_settings(store)
