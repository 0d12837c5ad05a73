"""kill -9 with bodies still on disk: the next start stores them, byte for byte.

A real ``tollway serve`` whose memory bound holds no body, so every body of a ``required``
key is spilled and read back one per flush; it is killed with SIGKILL while most of them
are still in the spool. After a restart on the same database every request logged before
the kill has its body readable through the admin API exactly as Claude Code sent it.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import zstandard

from conftest import STARTUP_TIMEOUT_S

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "wire"
ADMIN = {"authorization": "Bearer adm"}
CONFIG = (
    "providers: {simulated: {}}\n"
    "logging: {content_queue_mb: 0.001, flush_interval_ms: 100}\n"  # one body per flush
)
REQUESTS = 16


def claude_code_bodies() -> tuple[str, list[bytes]]:
    raw = (FIXTURE / "claude_long_session.jsonl.zst").read_bytes()
    text = zstandard.ZstdDecompressor().decompress(raw, max_output_size=1 << 30)
    docs = [json.loads(line) for line in text.splitlines()[:REQUESTS]]
    return docs[0]["session"], [base64.b64decode(d["body_b64"]) for d in docs]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    with (tmp / "gateway.log").open("ab") as log:  # the child keeps its own copy
        proc = subprocess.Popen(
            [sys.executable, "-m", "tollway", "serve", "--config", str(tmp / "c.yaml"),
             "--port", str(port), "--db", f"sqlite:///{tmp / 'd.db'}"],
            env={**os.environ, "TOLLWAY_ADMIN_TOKEN": "adm"},
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    deadline = time.monotonic() + 90  # start-up is seconds, far more on a loaded machine
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("gateway did not start: " + (tmp / "gateway.log").read_text()[-2000:])


def _metric(client: httpx.Client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def _logged(client: httpx.Client) -> list[str]:
    rows = client.get("/api/logs?limit=100", headers=ADMIN).json()["data"]
    return [row["id"] for row in reversed(rows)]  # oldest first


def test_bodies_spilled_before_a_kill_9_are_stored_after_restart(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(CONFIG)
    session, bodies = claude_code_bodies()
    port = _port()
    proc = _start(tmp_path, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            r = client.post("/api/virtual-keys", json={"name": "audited", "content": "required"},
                            headers=ADMIN)  # fmt: skip
            key = r.json()["key"]
            headers = {"x-api-key": key, "x-claude-code-session-id": session,
                       "anthropic-version": "2023-06-01"}  # fmt: skip
            for body in bodies:
                r = client.post("/v1/messages?beta=true", content=body, headers=headers)
                assert r.status_code == 200, r.text
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while len(ids := _logged(client)) < REQUESTS and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(ids) == REQUESTS  # every request is logged ...
            pending = _metric(client, "tollway_log_contents_pending")
        os.kill(proc.pid, signal.SIGKILL)  # ... and then the gateway dies
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert pending >= REQUESTS // 2  # most bodies were still on disk when it died
    spool_dir = tmp_path / "d.db.spool"  # beside the database, as the journal
    assert [p.stat().st_size > 0 for p in spool_dir.glob("content-*.spool")] == [True]

    proc = _start(tmp_path, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            assert _logged(client) == ids
            assert _metric(client, "tollway_log_contents_replayed") >= pending
            deadline = time.monotonic() + 30
            while _metric(client, "tollway_log_contents_pending") and time.monotonic() < deadline:
                time.sleep(0.05)
            for rid, body in zip(ids, bodies, strict=True):
                r = client.get(f"/api/logs/{rid}/content/request", headers=ADMIN)
                assert r.status_code == 200 and r.content == body, rid  # byte for byte
                r = client.get(f"/api/logs/{rid}/content/response", headers=ADMIN)
                assert r.status_code == 200 and b"message_stop" in r.content
            assert _metric(client, "tollway_log_contents_dropped") == 0
        assert not list(spool_dir.glob("content-*.spool"))  # all stored: the dead file is gone
    finally:
        proc.terminate()
        proc.wait(20)
