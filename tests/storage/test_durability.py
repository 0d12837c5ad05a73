"""Spend survives kill -9 (minus at most one flush interval), and reservations don't leak."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx

from conftest import STARTUP_TIMEOUT_S
from tollway.cli.main import main

CONFIG = (
    "providers:\n  simulated:\n    simulated: {output_tokens: 12, price_as: anthropic}\n"
    "logging: {flush_interval_ms: 250}\n"
)
MSG = b'{"model":"claude-sonnet-4-5","max_tokens":12,"messages":[{"role":"user","content":"hi"}]}'


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TOLLWAY_ADMIN_TOKEN": "adm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tollway", "serve", "--config", str(tmp / "c.yaml"),
         "--port", str(port), "--db", f"sqlite:///{tmp / 'd.db'}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("gateway did not start")


def _spent(port: int, key_id: str) -> tuple[Decimal, Decimal]:
    r = httpx.get(f"http://127.0.0.1:{port}/api/virtual-keys/{key_id}/status",
                  headers={"authorization": "Bearer adm"})  # fmt: skip
    b = r.json()["budgets"][0]
    return Decimal(b["spent"]), Decimal(b["reserved"])


def test_kill_9_keeps_spend_flushed_before_it(tmp_path: Path, capsys: object) -> None:
    (tmp_path / "c.yaml").write_text(CONFIG)
    db = f"sqlite:///{tmp_path / 'd.db'}"
    assert main(["keys", "create", "dur", "--budget", "100/1d", "--db", db]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    doc = json.loads(out.split("\n\nThe key")[0])
    port = _port()
    proc = _start(tmp_path, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(30):
                r = client.post("/v1/messages", content=MSG, headers={"x-api-key": doc["key"]})
                assert r.status_code == 200
        before, _ = _spent(port, doc["id"])
        time.sleep(0.6)  # a bit more than two flush intervals
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    proc = _start(tmp_path, port)
    try:
        after, reserved = _spent(port, doc["id"])
        assert after == before and before > 0
        assert reserved == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
