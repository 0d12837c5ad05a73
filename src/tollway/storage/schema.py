"""The schema, written once for both backends (types differ only in name).

Money is stored as integer picodollars (exact for every published per-token price);
budget spend as a decimal string.
"""

from __future__ import annotations

from decimal import Decimal

SCHEMA_VERSION = 1
PICO = Decimal(10) ** 12

COST_KINDS = (
    "input",
    "output",
    "cache_read",
    "cache_write_5m",
    "cache_write_1h",
    "reasoning",
    "server_tools",
    "total",
)
TOKEN_KINDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
)

REQUEST_COLUMNS = (
    "id",
    "started_at",
    "latency_ms",
    "ttft_ms",
    "vk_id",
    "vk_name",
    "team_id",
    "team_name",
    "customer_id",
    "customer_name",
    "user_id",
    "session_id",
    "client",
    "surface",
    "provider",
    "requested_model",
    "served_model",
    "status",
    "error_type",
    "error_message",
    "stream",
    "partial",
    "retries",
    "fallback_index",
    "cache_hit",
    *TOKEN_KINDS,
    *(f"cost_{k}_pico" for k in COST_KINDS),
    "cost_unknown",
    "endpoint",
    "cost_estimated",
    "simulated",
    "web_searches",
    "price_version",
    "service_tier",
    "routing_rule",
    "translation",
)
# Text columns added after the first release: (name, type), added to older databases.
ADDED_TEXT_COLUMNS = (
    ("endpoint", "TEXT"),
    ("price_version", "TEXT"),
    ("service_tier", "TEXT"),
    ("routing_rule", "TEXT"),
    ("translation", "TEXT"),
)
# Flag and count columns added after the first release (zero-defaulted, like counters).
ADDED_COUNT_COLUMNS = ("cost_estimated", "simulated", "web_searches")

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entities (
  kind TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, key_hash TEXT,
  doc TEXT NOT NULL, updated_at {REAL} NOT NULL, PRIMARY KEY (kind, id));
CREATE UNIQUE INDEX IF NOT EXISTS entities_key_hash ON entities (key_hash);
CREATE UNIQUE INDEX IF NOT EXISTS entities_kind_name ON entities (kind, name);
CREATE TABLE IF NOT EXISTS budget_spend (
  budget_id TEXT NOT NULL, scope TEXT NOT NULL, window_start {REAL} NOT NULL,
  spent TEXT NOT NULL, updated_at {REAL} NOT NULL, PRIMARY KEY (budget_id, window_start));
CREATE TABLE IF NOT EXISTS budget_events (
  id {SERIAL}, budget_id TEXT NOT NULL, action TEXT NOT NULL, amount TEXT NOT NULL,
  actor TEXT NOT NULL, at {REAL} NOT NULL, window_start {REAL} NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
  id TEXT PRIMARY KEY, started_at {REAL} NOT NULL, latency_ms {REAL} NOT NULL,
  ttft_ms {REAL}, vk_id TEXT, vk_name TEXT, team_id TEXT, team_name TEXT,
  customer_id TEXT, customer_name TEXT, user_id TEXT, session_id TEXT, client TEXT,
  surface TEXT NOT NULL, provider TEXT, requested_model TEXT, served_model TEXT,
  status INTEGER NOT NULL, error_type TEXT, error_message TEXT,
  stream INTEGER NOT NULL, partial INTEGER NOT NULL, retries INTEGER NOT NULL,
  fallback_index INTEGER NOT NULL, cache_hit INTEGER NOT NULL,
  input_tokens {BIGINT} NOT NULL, output_tokens {BIGINT} NOT NULL,
  cache_read_tokens {BIGINT} NOT NULL, cache_write_5m_tokens {BIGINT} NOT NULL,
  cache_write_1h_tokens {BIGINT} NOT NULL, reasoning_tokens {BIGINT} NOT NULL,
  cost_input_pico {BIGINT} NOT NULL, cost_output_pico {BIGINT} NOT NULL,
  cost_cache_read_pico {BIGINT} NOT NULL, cost_cache_write_5m_pico {BIGINT} NOT NULL,
  cost_cache_write_1h_pico {BIGINT} NOT NULL, cost_reasoning_pico {BIGINT} NOT NULL,
  cost_server_tools_pico {BIGINT} NOT NULL DEFAULT 0, cost_total_pico {BIGINT} NOT NULL,
  cost_unknown INTEGER NOT NULL, endpoint TEXT,
  cost_estimated INTEGER NOT NULL DEFAULT 0, simulated INTEGER NOT NULL DEFAULT 0,
  web_searches {BIGINT} NOT NULL DEFAULT 0, price_version TEXT, service_tier TEXT,
  routing_rule TEXT, translation TEXT);
CREATE INDEX IF NOT EXISTS requests_started ON requests (started_at);
CREATE INDEX IF NOT EXISTS requests_vk ON requests (vk_id, started_at);
CREATE INDEX IF NOT EXISTS requests_session ON requests (session_id);
CREATE TABLE IF NOT EXISTS attempts (
  request_id TEXT NOT NULL, idx INTEGER NOT NULL, started_at {REAL} NOT NULL,
  provider TEXT NOT NULL, key_name TEXT NOT NULL, model TEXT NOT NULL,
  status INTEGER NOT NULL, latency_ms {REAL} NOT NULL, error_type TEXT, reason TEXT,
  PRIMARY KEY (request_id, idx));
CREATE TABLE IF NOT EXISTS contents (
  request_id TEXT PRIMARY KEY, created_at {REAL} NOT NULL,
  request_body {BLOB} NOT NULL, response_body {BLOB} NOT NULL, scope TEXT);
CREATE INDEX IF NOT EXISTS contents_created ON contents (created_at);
CREATE TABLE IF NOT EXISTS content_chunks (
  scope TEXT NOT NULL, digest {BLOB} NOT NULL, gen {BIGINT} NOT NULL,
  created_at {REAL} NOT NULL, data {BLOB} NOT NULL, PRIMARY KEY (scope, digest));
INSERT INTO meta (key, value) VALUES ('content_sweep', '0') ON CONFLICT (key) DO NOTHING;
CREATE TABLE IF NOT EXISTS mcp_tool_calls (
  id TEXT PRIMARY KEY, started_at {REAL} NOT NULL, latency_ms {REAL} NOT NULL,
  vk_id TEXT, vk_name TEXT, team_id TEXT, customer_id TEXT, mcp_session_id TEXT,
  agent_session_id TEXT, endpoint TEXT NOT NULL, server TEXT, tool TEXT,
  exposed_name TEXT NOT NULL, outcome TEXT NOT NULL, error_message TEXT, arguments TEXT,
  result TEXT, arguments_bytes {BIGINT} NOT NULL, result_bytes {BIGINT} NOT NULL,
  cost_pico {BIGINT} NOT NULL);
CREATE INDEX IF NOT EXISTS mcp_tool_calls_started ON mcp_tool_calls (started_at);
CREATE INDEX IF NOT EXISTS mcp_tool_calls_vk ON mcp_tool_calls (vk_id, started_at);
CREATE TABLE IF NOT EXISTS agent_actions (
  id TEXT PRIMARY KEY, request_id TEXT NOT NULL, session_id TEXT, vk_id TEXT, vk_name TEXT,
  proposed_at {REAL} NOT NULL, dialect TEXT NOT NULL, tool TEXT NOT NULL, kind TEXT NOT NULL,
  mcp_server TEXT, mcp_tool TEXT, command TEXT, paths TEXT, domain TEXT,
  edit_bytes {BIGINT}, edit_sha256 TEXT, input_sha256 TEXT NOT NULL, status TEXT NOT NULL,
  decided_by TEXT, reason TEXT, policy TEXT, result_request_id TEXT, result_at {REAL},
  result_bytes {BIGINT}, result_sha256 TEXT);
CREATE INDEX IF NOT EXISTS agent_actions_session ON agent_actions (session_id, proposed_at);
CREATE TABLE IF NOT EXISTS audit_log (
  seq {BIGINT} PRIMARY KEY, at {REAL} NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL,
  subject TEXT NOT NULL, doc TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_checkpoints (
  seq {BIGINT} PRIMARY KEY, hash TEXT NOT NULL, at {REAL} NOT NULL, key_id TEXT NOT NULL,
  signature TEXT NOT NULL);
"""


def ddl(dialect: str) -> list[str]:
    types = {
        "sqlite": {
            "REAL": "REAL",
            "BIGINT": "INTEGER",
            "BLOB": "BLOB",
            "SERIAL": "INTEGER PRIMARY KEY AUTOINCREMENT",
        },
        "postgres": {
            "REAL": "DOUBLE PRECISION",
            "BIGINT": "BIGINT",
            "BLOB": "BYTEA",
            "SERIAL": "BIGSERIAL PRIMARY KEY",
        },
    }[dialect]
    text = _DDL
    for name, value in types.items():
        text = text.replace("{" + name + "}", value)
    return [s.strip() for s in text.split(";") if s.strip()]


def added_columns(existing: set[str], dialect: str) -> list[str]:
    """ALTER statements for count and money columns a database made by an older version
    lacks (new columns are always zero-defaulted counters)."""
    kind = "INTEGER" if dialect == "sqlite" else "BIGINT"
    counters = [
        f"ALTER TABLE requests ADD COLUMN {column} {kind} NOT NULL DEFAULT 0"
        for column in REQUEST_COLUMNS
        if column not in existing
        and (column.endswith(("_pico", "_tokens")) or column in ADDED_COUNT_COLUMNS)
    ]
    texts = [
        f"ALTER TABLE requests ADD COLUMN {column} {kind_}"
        for column, kind_ in ADDED_TEXT_COLUMNS
        if column not in existing
    ]
    return counters + texts


def attempt_migrations(existing: set[str]) -> list[str]:
    """An older ``attempts`` table (columns ``existing``) gains each attempt's reason."""
    return [] if "reason" in existing else ["ALTER TABLE attempts ADD COLUMN reason TEXT"]


def content_migrations(existing: set[str]) -> list[str]:
    """Statements that bring an older ``contents`` table (columns ``existing``) up to date:
    bodies stored by reference carry their session scope (see observability/chunks.py)."""
    add = [] if "scope" in existing else ["ALTER TABLE contents ADD COLUMN scope TEXT"]
    return [*add, "CREATE INDEX IF NOT EXISTS contents_scope ON contents (scope)"]


def to_pico(amount: Decimal) -> int:
    return int(amount * PICO)


def from_pico(value: int | None) -> Decimal:
    return Decimal(value or 0) / PICO
