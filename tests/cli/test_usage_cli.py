"""``tollway usage`` and ``tollway logs tail`` on a SQLite file, with no gateway running."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from tollway.cli.main import main
from tollway.cli.usage import tail
from tollway.storage.queries import LogFilter
from tollway.storage.records import Batch, RequestRecord
from tollway.storage.sqlite import SQLiteStore

T0 = 1_760_000_000.0


def record(i: int, at: float, key: str = "k1", model: str = "m1") -> RequestRecord:
    return RequestRecord(id=f"r{i:03d}", started_at=at, latency_ms=20.0, surface="anthropic",
                         status=200, vk_id=f"vk_{key}", vk_name=key, served_model=model,
                         requested_model=model, input_tokens=100 + i, output_tokens=i,
                         cost_total=Decimal(i) * Decimal("0.000001"))  # fmt: skip


async def _write(db: Path, records: list[RequestRecord]) -> None:
    store = SQLiteStore(f"sqlite:///{db}")
    await store.open()
    await store.write_batch(Batch(requests=records))
    await store.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "cli.db"
    records = [record(i, T0 + i * 3600, key="k1" if i % 2 else "k2",
                      model="m1" if i < 6 else "m2") for i in range(10)]  # fmt: skip
    asyncio.run(_write(path, records))
    return path


def test_usage_json_csv_and_table(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{db}"
    assert main(["usage", "--db", url, "--format", "json"]) == 0
    groups = json.loads(capsys.readouterr().out)
    assert [(g["group"], g["requests"]) for g in groups] == [("m2", 4), ("m1", 6)]
    assert groups[0]["cost"]["total"] == "0.00003"  # 6+7+8+9 micro-dollars

    assert main(["usage", "--db", url, "--group-by", "key", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["group"]: r["cost_total_usd"] for r in rows} == {
        "vk_k1": "0.000025", "vk_k2": "0.00002",
    }  # fmt: skip

    assert main(["usage", "--db", url, "--from", "2025-10-09T10:00:00Z", "--to",
                 str(T0 + 5 * 3600)]) == 0  # fmt: skip
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["model", "requests", "errors"]
    assert table[1].split()[:2] == ["m1", "3"]  # r002..r004: 10:53, 11:53 and 12:53
    assert table[-1].split()[0] == "TOTAL"


def test_usage_rejects_a_bad_time(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["usage", "--db", f"sqlite:///{db}", "--from", "soon"]) == 2
    assert "--from" in capsys.readouterr().err


def test_logs_tail(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "tail", "--db", f"sqlite:///{db}", "--limit", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in lines] == ["r007", "r008", "r009"]  # oldest first
    assert "k1" in lines[-1] and "m2" in lines[-1] and "$0.000009" in lines[-1]
    assert main(["logs", "tail", "--db", f"sqlite:///{db}", "--key", "k2", "-n", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in lines] == ["r006", "r008"]
    with pytest.raises(SystemExit):
        main(["logs", "tail", "--db", f"sqlite:///{db}", "--limit", "0"])


async def test_tail_follow_prints_records_as_they_arrive(tmp_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'f.db'}")
    await store.open()
    now = time.time()
    await store.write_batch(Batch(requests=[record(1, now - 60)]))
    out: list[str] = []
    follower = asyncio.create_task(
        tail(store, LogFilter(), 10, follow=True, interval=0.05, polls=4, out=out.append)
    )
    await asyncio.sleep(0.07)
    # A long request (5 minutes) that started before the others is written late: shown too.
    long = replace(record(3, now - 300), latency_ms=295_000.0)
    await store.write_batch(Batch(requests=[record(2, now - 5), long]))
    await follower
    await store.close()
    assert [line.split()[-1] for line in out] == ["r001", "r003", "r002"]
