"""`tollway sessions`, `tollway audit` and `tollway claude-code settings`, on a database."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from audit_scenarios import T0, record

from tollway.audit.log import AuditLog
from tollway.audit.settings import AuditConfig
from tollway.cli.main import main
from tollway.storage.records import Batch
from tollway.storage.sqlite import SQLiteStore


def _seed(db: Path) -> None:
    async def go() -> None:
        store = SQLiteStore(f"sqlite:///{db}")
        await store.open()
        audit = AuditLog(store, AuditConfig())
        await audit.start()
        recs = [record(f"r{i}", T0 + i, "sess-a", "0.25") for i in range(3)]
        for r in recs:
            audit.submit(r, "anthropic", b"{}", None)
        await store.write_batch(Batch(requests=recs))
        await audit.stop()
        await store.close()

    asyncio.run(go())


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_sessions_and_audit_commands_on_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "t.db"
    _seed(db)
    url = f"sqlite:///{db}"
    code, out = _run(capsys, "sessions", "list", "--db", url)
    assert code == 0
    assert out.splitlines()[1].split() == [
        "sess-a", "alice", "sdk", "2027-01-15", "08:00:02", "3", "$0.75", "0", "0"
    ]  # fmt: skip
    code, out = _run(capsys, "sessions", "show", "sess-a", "--db", url)
    assert out.splitlines()[0] == (
        "session sess-a  key alice  requests 3  cost $0.75  actions 0  denied 0"
    )
    assert len(out.splitlines()) == 4
    code, out = _run(capsys, "audit", "verify", "--db", url)
    assert code == 0 and out.startswith("audit log OK: 3 entries, 1 signed checkpoints")
    export = tmp_path / "audit.jsonl"
    assert _run(capsys, "audit", "export", "--db", url, "-o", str(export))[0] == 0
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    assert [(e["seq"], e["kind"], e["subject"]) for e in lines] == [
        (1, "request", "r0"), (2, "request", "r1"), (3, "request", "r2")
    ]  # fmt: skip
    code, pem = _run(capsys, "audit", "public-key", "--db", url)
    (tmp_path / "audit.pub").write_text(pem)
    code, out = _run(capsys, "audit", "verify", "--db", url, "--public-key",
                     str(tmp_path / "audit.pub"))  # fmt: skip
    assert code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq = 2")
    code, out = _run(capsys, "audit", "verify", "--db", url)
    assert code == 1
    assert out.splitlines()[0] == "TAMPERED: row 2 missing: deleted from the log"


def test_cli_entity_changes_on_the_database_are_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "t.db"
    _seed(db)
    url = f"sqlite:///{db}"
    assert _run(capsys, "keys", "create", "ci", "--db", url)[0] == 0
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT kind, actor FROM audit_log WHERE kind LIKE 'admin.%'"
        ).fetchall()
    assert len(rows) == 1 and rows[0][0] == "admin.virtual_key.create"
    assert rows[0][1].startswith("cli:")
    code, out = _run(capsys, "audit", "verify", "--db", url)
    assert code == 0 and "signed through 4" in out


def test_claude_code_settings_install_the_hook(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "claude-code", "settings", "--url", "http://gw.example:9000")
    assert code == 0
    assert json.loads(out) == {
        "allowedHttpHookUrls": ["http://gw.example:9000/hooks/*"],
        "hooks": {"PreToolUse": [{"matcher": "*", "hooks": [{
            "type": "http", "url": "http://gw.example:9000/hooks/claude-code/pre-tool-use",
            "headers": {"x-api-key": "$ANTHROPIC_API_KEY"}, "timeout": 10,
            "allowedEnvVars": ["ANTHROPIC_API_KEY"]}]}]},
    }  # fmt: skip
    code, out = _run(capsys, "claude-code", "settings", "--url", "http://gw", "--key", "tw-abc")
    hook = json.loads(out)["hooks"]["PreToolUse"][0]["hooks"][0]
    assert hook["headers"] == {"x-api-key": "tw-abc"} and "allowedEnvVars" not in hook


def test_the_readme_shows_the_printed_settings() -> None:
    from tollway.cli.context import DEFAULT_URL
    from tollway.cli.hooks import hook_settings

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- hook: tollway claude-code settings -->\n```json\n", 1)[1]
    assert json.loads(block.split("\n```", 1)[0]) == hook_settings(DEFAULT_URL)
