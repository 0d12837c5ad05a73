"""``tollway prices show`` and ``tollway prices check`` on a SQLite file, no gateway running."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tollway.accounting.genai import GENAI_PRICES_VERSION
from tollway.cli.main import main
from tollway.storage.records import Batch, RequestRecord
from tollway.storage.sqlite import SQLiteStore

CONFIG = """
providers:
  anthropic: {keys: [{value: sk-a}]}
  fast-llama: {type: openai, base_url: https://api.groq.com/openai/v1, keys: [{value: g}]}
  local: {type: openai, base_url: http://127.0.0.1:9/v1, keys: [{value: l}]}
  simulated: {}
pricing:
  house-model: {input: "1", output: "2", tool_fees: {web_search: "0.02"}}
  claude-opus-4-8: {output: "24"}
"""


def _record(i: int, provider: str, model: str, simulated: bool = False) -> RequestRecord:
    return RequestRecord(
        id=f"r{i}", started_at=time.time() - i, latency_ms=1.0, surface="anthropic",
        status=200, provider=provider, requested_model=model, served_model=model,
        simulated=simulated,
    )  # fmt: skip


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    db = tmp_path / "t.db"
    config = tmp_path / "tollway.yaml"
    config.write_text(CONFIG)
    records = [
        _record(1, "anthropic", "claude-opus-4-8"),
        _record(2, "anthropic", "claude-opus-4-9"),  # only the Opus 4.x assumption
        _record(3, "anthropic", "claude-opus-4-9"),
        _record(4, "fast-llama", "llama-3.3-70b-versatile"),
        _record(5, "local", "my-local-coder"),  # no price anywhere
        _record(6, "anthropic", "house-model"),
        _record(7, "simulated", "whatever-model", simulated=True),  # costs nothing: fine
    ]

    async def write() -> None:
        store = SQLiteStore(f"sqlite:///{db}")
        await store.open()
        await store.write_batch(Batch(requests=records))
        await store.close()

    asyncio.run(write())
    return db, config


def test_show_names_source_layer_and_version(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _db, config = setup
    assert main(["prices", "show", "claude-opus-4-8", "--config", str(config),
                 "--format", "json"]) == 0  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert doc["output"] == "24" and doc["input"] == "5"  # config over genai-prices
    assert doc["source"]["layer"] == "config"
    assert doc["source"]["base"]["layer"] == "genai-prices"
    assert doc["source"]["base"]["url"] == "https://www.anthropic.com/pricing#api"
    assert doc["source"]["version"].endswith(f"+genai-prices:{GENAI_PRICES_VERSION}")
    assert doc["service_tiers"]["fast"]["input"] == "10"
    assert main(["prices", "show", "gpt-5.2", "--config", str(config)]) == 0
    text = capsys.readouterr().out
    assert "layer     genai-prices" in text and "checked   2026-12-01" in text
    assert "service tier priority: input 3.5, output 28" in text
    assert "web_search: $0.01 per use" in text and "context window 400,000" in text


def test_show_at_a_past_time_and_an_unknown_model(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _db, config = setup
    assert main(["prices", "show", "claude-sonnet-4-6", "--at", "2026-03-01",
                 "--format", "json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["long_context"]["input"] == "6"
    assert main(["prices", "show", "my-local-coder", "--provider", "local",
                 "--config", str(config)]) == 1  # fmt: skip
    assert "no price for 'my-local-coder'" in capsys.readouterr().err


def test_check_lists_unpriced_and_assumed_models_and_fails(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db, config = setup
    code = main(["prices", "check", "--db", f"sqlite:///{db}", "--config", str(config),
                 "--format", "json"])  # fmt: skip
    assert code == 1
    found = {(p["provider"], p["model"]): p for p in json.loads(capsys.readouterr().out)}
    assert set(found) == {("anthropic", "claude-opus-4-9"), ("local", "my-local-coder")}
    assert found[("anthropic", "claude-opus-4-9")]["requests"] == 2
    assert found[("anthropic", "claude-opus-4-9")]["problem"].startswith("assumption:")
    assert found[("local", "my-local-coder")]["problem"] == "no price"
    assert main(["prices", "check", "--db", f"sqlite:///{db}", "--config", str(config)]) == 1
    table = capsys.readouterr().out
    assert "my-local-coder" in table and "llama-3.3" not in table


def test_check_passes_when_every_model_is_priced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "ok.db"

    async def write() -> None:
        store = SQLiteStore(f"sqlite:///{db}")
        await store.open()
        await store.write_batch(Batch(requests=[_record(1, "anthropic", "claude-haiku-4-5")]))
        await store.close()

    asyncio.run(write())
    assert main(["prices", "check", "--db", f"sqlite:///{db}"]) == 0
    assert "every model in the log has" in capsys.readouterr().out
    assert main(["prices", "check", "--db", f"sqlite:///{db}", "--from", "yesterday"]) == 2


def test_show_with_db_includes_overrides_set_through_the_api(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db, config = setup

    async def put() -> None:
        store = SQLiteStore(f"sqlite:///{db}")
        await store.open()
        await store.put_setting("pricing", json.dumps({"claude-opus-4-8": {"input": "4"}}))
        await store.close()

    asyncio.run(put())
    argv = ["prices", "show", "claude-opus-4-8", "--config", str(config), "--format", "json"]
    assert main([*argv, "--db", f"sqlite:///{db}"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["input"], doc["output"]) == ("4", "24")  # API over config over genai-prices
    assert doc["source"]["layer"] == "api" and doc["source"]["base"]["layer"] == "config"
