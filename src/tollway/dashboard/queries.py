"""Reads the dashboard needs beyond ``storage.queries``: spend per day per group,
latency percentiles and agent sessions. Same SQL for SQLite and PostgreSQL but the day
bucket; money leaves as integer picodollars, summed in two parts like ``usage``.
"""

from __future__ import annotations

from typing import Any, Literal

from tollway.storage.base import Store

SeriesBy = Literal["key", "team", "customer", "model", "provider"]
_SPLIT = 1_000_000
_GROUPS: dict[str, tuple[str, str]] = {
    "key": ("vk_id", "MAX(vk_name)"),
    "team": ("team_id", "MAX(team_name)"),
    "customer": ("customer_id", "MAX(customer_name)"),
    "model": ("COALESCE(served_model, requested_model)", "NULL"),
    "provider": ("provider", "NULL"),
}
# Latency percentiles are taken over at most this many of the newest records.
PERCENTILE_SAMPLE = 20_000


def _day(store: Store) -> str:
    if store.url.startswith(("postgresql:", "postgres:")):
        return "to_char(to_timestamp(started_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    return "strftime('%Y-%m-%d', started_at, 'unixepoch')"


_COST = (
    f"SUM(cost_total_pico / {_SPLIT}) AS hi, SUM(cost_total_pico % {_SPLIT}) AS lo, "
    "COUNT(*) AS requests"
)


def _pico(row: dict[str, Any]) -> int:
    return int(row["hi"] or 0) * _SPLIT + int(row["lo"] or 0)


async def daily(store: Store, by: SeriesBy, since: float) -> list[dict[str, Any]]:
    """``[{day, group, name, requests, cost_pico}]`` for records at or after ``since``."""
    expr, name = _GROUPS[by]
    day = _day(store)
    sql = (
        f"SELECT {day} AS day, {expr} AS grp, {name} AS grp_name, {_COST} "
        f"FROM requests WHERE started_at >= ? GROUP BY {day}, {expr} ORDER BY day"
    )
    rows = await store.query(sql, [since])
    return [
        {"day": r["day"], "group": r["grp"], "name": r["grp_name"],
         "requests": int(r["requests"]), "cost_pico": _pico(r)}
        for r in rows
    ]  # fmt: skip


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


async def traffic(store: Store, since: float) -> dict[str, Any]:
    """Requests, errors, latency and time to first token since ``since``."""
    counts = await store.query(
        "SELECT COUNT(*) AS n, SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors, "
        "SUM(CASE WHEN status = 402 THEN 1 ELSE 0 END) AS refused_budget, "
        "SUM(CASE WHEN status = 429 THEN 1 ELSE 0 END) AS rate_limited "
        "FROM requests WHERE started_at >= ?",
        [since],
    )
    rows = await store.query(
        "SELECT latency_ms, ttft_ms FROM requests WHERE started_at >= ? "
        "ORDER BY started_at DESC LIMIT ?",
        [since, PERCENTILE_SAMPLE],
    )
    latency = sorted(float(r["latency_ms"]) for r in rows)
    ttft = sorted(float(r["ttft_ms"]) for r in rows if r["ttft_ms"] is not None)
    c = counts[0]
    return {
        "requests": int(c["n"] or 0),
        "errors": int(c["errors"] or 0),
        "refused_budget": int(c["refused_budget"] or 0),
        "rate_limited": int(c["rate_limited"] or 0),
        "latency_ms": {"p50": percentile(latency, 50), "p95": percentile(latency, 95)},
        "ttft_ms": {"p50": percentile(ttft, 50), "p95": percentile(ttft, 95)},
        "sample": len(rows),
    }


async def any_request(store: Store) -> bool:
    return bool(await store.query("SELECT id FROM requests LIMIT 1"))


async def sessions(store: Store, limit: int, since: float | None) -> list[dict[str, Any]]:
    """Agent sessions, most recent activity first: requests, errors, cost, tokens, who."""
    where = "session_id IS NOT NULL" + (" AND started_at >= ?" if since is not None else "")
    sql = (
        "SELECT session_id, MIN(started_at) AS first_at, MAX(started_at) AS last_at, "
        "MAX(vk_name) AS key_name, MAX(vk_id) AS key_id, MAX(client) AS client, "
        "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors, "
        "SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens, "
        "SUM(cache_read_tokens) AS cache_read_tokens, "
        f"{_COST} FROM requests WHERE {where} GROUP BY session_id "
        "ORDER BY last_at DESC LIMIT ?"
    )
    rows = await store.query(sql, [*([since] if since is not None else []), limit])
    return [
        {"session_id": r["session_id"], "first_at": float(r["first_at"]),
         "last_at": float(r["last_at"]), "key_name": r["key_name"], "key_id": r["key_id"],
         "client": r["client"], "requests": int(r["requests"]), "errors": int(r["errors"] or 0),
         "tokens": {k.removesuffix("_tokens"): int(r[k] or 0)
                    for k in ("input_tokens", "output_tokens", "cache_read_tokens")},
         "cost_pico": _pico(r)}
        for r in rows
    ]  # fmt: skip
