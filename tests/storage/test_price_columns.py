"""A database made before the pricing columns existed gets them on open, and keeps its rows."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

from tollway.storage.records import Batch, RequestRecord
from tollway.storage.sqlite import SQLiteStore

# The requests table as the release before this one created it.
OLD_REQUESTS = """
CREATE TABLE requests (
  id TEXT PRIMARY KEY, started_at REAL NOT NULL, latency_ms REAL NOT NULL,
  ttft_ms REAL, vk_id TEXT, vk_name TEXT, team_id TEXT, team_name TEXT,
  customer_id TEXT, customer_name TEXT, user_id TEXT, session_id TEXT, client TEXT,
  surface TEXT NOT NULL, provider TEXT, requested_model TEXT, served_model TEXT,
  status INTEGER NOT NULL, error_type TEXT, error_message TEXT,
  stream INTEGER NOT NULL, partial INTEGER NOT NULL, retries INTEGER NOT NULL,
  fallback_index INTEGER NOT NULL, cache_hit INTEGER NOT NULL,
  input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
  cache_read_tokens INTEGER NOT NULL, cache_write_5m_tokens INTEGER NOT NULL,
  cache_write_1h_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL,
  cost_input_pico INTEGER NOT NULL, cost_output_pico INTEGER NOT NULL,
  cost_cache_read_pico INTEGER NOT NULL, cost_cache_write_5m_pico INTEGER NOT NULL,
  cost_cache_write_1h_pico INTEGER NOT NULL, cost_reasoning_pico INTEGER NOT NULL,
  cost_total_pico INTEGER NOT NULL,
  cost_unknown INTEGER NOT NULL, endpoint TEXT)
"""


async def test_old_database_gains_the_pricing_columns(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.execute(OLD_REQUESTS)
        conn.execute(
            "INSERT INTO requests VALUES ('old', 1.0, 2.0, NULL, NULL, NULL, NULL, NULL, NULL,"
            " NULL, NULL, NULL, 'sdk', 'anthropic', 'anthropic', 'm', 'm', 200, NULL, NULL,"
            " 0, 0, 0, 0, 0, 10, 5, 0, 0, 0, 0, 7, 8, 0, 0, 0, 0, 15, 0, '/v1/messages')"
        )
    store = SQLiteStore(f"sqlite:///{db}")
    await store.open()
    try:
        new = RequestRecord(
            id="new", started_at=3.0, latency_ms=1.0, surface="openai_chat", status=200,
            provider="openai", served_model="gpt-5.2", service_tier="priority",
            price_version="genai-prices:0.2.3", web_searches=2, simulated=False,
            cost_estimated=True, cost_server_tools=Decimal("0.02"), cost_total=Decimal("0.05"),
        )  # fmt: skip
        await store.write_batch(Batch(requests=[new]))
        rows = {r["id"]: r for r in await store.query("SELECT * FROM requests")}
    finally:
        await store.close()
    old = rows["old"]
    assert (old["cost_total_pico"], old["cost_server_tools_pico"], old["simulated"]) == (15, 0, 0)
    assert old["price_version"] is None and old["cost_estimated"] == 0
    row = rows["new"]
    assert row["service_tier"] == "priority" and row["price_version"] == "genai-prices:0.2.3"
    assert (row["web_searches"], row["cost_estimated"], row["simulated"]) == (2, 1, 0)
    assert row["cost_server_tools_pico"] == 20_000_000_000
