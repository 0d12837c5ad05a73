"""Secrets: env.NAME references resolve only as the operator allowed at start, provider
keys put through the API are encrypted at rest (with rotation), the database and its
companions are 0600, and /metrics cannot be grown by inventing model names."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from conftest import GatewayServer
from inprocess import running
from tollway.cli.main import main as cli
from tollway.cli.serve import admin_token_for
from tollway.config import parse_config
from tollway.errors import InvalidField
from tollway.services import Services
from tollway.storage.provider_keys import load_stored, stored_doc
from tollway.vault import EnvPolicy, SecretBox
from upstream_mock import MockUpstream

MSG = b'{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}'
AWS = "aws-secret-do-not-send-0123456789"
LITERAL = "sk-literal-provider-key-0123456789"
SETTING_SQL = "SELECT value FROM meta WHERE key = 'setting:providers'"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_put_providers_cannot_exfiltrate_the_environment(
    gateway_factory: Callable[..., GatewayServer], mock_upstream: MockUpstream
) -> None:
    """The attack of issue 11: a base_url of the admin's choosing and value: env.NAME."""
    server = gateway_factory(env={"AWS_SECRET_ACCESS_KEY": AWS})
    evil = {
        "evil": {
            "type": "anthropic",
            "base_url": mock_upstream.base_url,
            "keys": [{"value": "env.AWS_SECRET_ACCESS_KEY"}],
            "models": ["claude-sonnet-4-5"],
        }
    }
    with httpx.Client(base_url=server.base_url, headers=server.admin_headers()) as admin:
        r = admin.put("/api/providers", json=evil)
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert err["fields"][0]["field"] == "evil.keys.0.value"
        assert "AWS_SECRET_ACCESS_KEY" in err["message"] and "env_allowlist" in err["message"]
        assert [p["name"] for p in admin.get("/api/providers").json()] == ["anthropic", "openai"]
    key = server.key("victim")
    r = httpx.post(f"{server.base_url}/v1/messages", content=MSG, headers={"x-api-key": key})
    assert r.status_code == 200
    sent = [(n, v) for req in mock_upstream.requests for n, v in req.headers]
    assert sent and not any(AWS in v for _n, v in sent)


async def test_env_references_follow_the_start_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TW_UP_KEY", "sk-from-env")
    monkeypatch.setenv("TW_OTHER", "sk-other")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS)
    config = """
providers:
  anthropic: {base_url: "http://127.0.0.1:9", keys: [{value: env.TW_UP_KEY}]}
gateway: {env_allowlist: [TW_OTHER]}
"""

    def put(url: str, ref: str) -> dict[str, object]:
        return {"anthropic": {"base_url": url, "keys": [{"value": ref}]}}

    async with running(tmp_path, config) as gw:
        c, h = gw.client, gw.admin
        # the file's own reference, with the file's own URL: fine
        assert (await c.put("/api/providers", json=put("http://127.0.0.1:9/", "env.TW_UP_KEY"),
                            headers=h)).status_code == 200  # fmt: skip
        # the same reference sent elsewhere: refused, it would leave with the request
        r = await c.put("/api/providers", json=put("http://127.0.0.1:1", "env.TW_UP_KEY"),
                        headers=h)  # fmt: skip
        assert r.status_code == 422 and "only with the base URL" in r.text
        # an explicitly allowed name goes anywhere; anything else nowhere
        r = await c.put("/api/providers", json=put("http://127.0.0.1:1", "env.TW_OTHER"), headers=h)
        assert r.status_code == 200
        assert gw.services.providers["anthropic"].keys[0].secret == "sk-other"  # type: ignore[attr-defined]
        for ref in ("env.AWS_SECRET_ACCESS_KEY", "env.PATH", "env.HOME", "env.", "env.A-B"):
            r = await c.put("/api/providers", json=put("http://127.0.0.1:9", ref), headers=h)
            assert r.status_code == 422, (ref, r.text)
            assert r.json()["error"]["fields"][0]["field"] == "anthropic.keys.0.value"
        # a name allowed through TOLLWAY_ENV_ALLOWLIST is read at start only
        monkeypatch.setenv("TOLLWAY_ENV_ALLOWLIST", "AWS_SECRET_ACCESS_KEY")
        aws = put("http://127.0.0.1:1", "env.AWS_SECRET_ACCESS_KEY")
        assert (await c.put("/api/providers", json=aws, headers=h)).status_code == 422


async def test_stored_references_no_longer_allowed_are_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS)
    monkeypatch.setenv("TOLLWAY_ENV_ALLOWLIST", "AWS_SECRET_ACCESS_KEY")
    async with running(tmp_path) as gw:
        key = {"name": "aws", "value": "env.AWS_SECRET_ACCESS_KEY"}
        body = {"anthropic": {"base_url": "http://127.0.0.1:9", "keys": [key]}}
        r = await gw.client.put("/api/providers", json=body, headers=gw.admin)
        assert r.status_code == 200
    monkeypatch.delenv("TOLLWAY_ENV_ALLOWLIST")
    with caplog.at_level(logging.ERROR, "tollway.providers"):
        async with running(tmp_path) as gw:
            assert gw.services.providers["anthropic"].keys == []  # type: ignore[attr-defined]
    assert "'aws' left out: env.AWS_SECRET_ACCESS_KEY is not an allowed" in caplog.text


async def test_provider_keys_are_encrypted_at_rest_and_rotated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TOLLWAY_SECRET_KEY", raising=False)
    monkeypatch.delenv("TOLLWAY_SECRET_KEY_FILE", raising=False)
    body = {"anthropic": {"base_url": "http://127.0.0.1:9", "keys": [{"value": LITERAL}]}}
    db = tmp_path / "gw.db"
    key_file = tmp_path / "gw.db.secret-key"
    async with running(tmp_path) as gw:
        r = await gw.client.put("/api/providers", json=body, headers=gw.admin)
        assert r.status_code == 200 and LITERAL not in r.text
        rows = await gw.services.store.query(SETTING_SQL)
        stored = rows[0]["value"]
        assert LITERAL not in stored and '"value": "enc:v1:' in stored
    assert LITERAL.encode() not in db.read_bytes()
    assert key_file.exists() and mode(key_file) == 0o600
    first_key = key_file.read_text()
    Fernet(first_key.strip().encode())  # a real Fernet key
    async with running(tmp_path) as gw:  # a restart decrypts it
        assert gw.services.providers["anthropic"].keys[0].secret == LITERAL  # type: ignore[attr-defined]

    assert await asyncio.to_thread(cli, ["secrets", "rotate", "--db", f"sqlite:///{db}"]) == 0
    assert "re-encrypted 1" in capsys.readouterr().out
    assert key_file.read_text() != first_key and len(key_file.read_text().split()) == 1
    assert mode(key_file) == 0o600
    async with running(tmp_path) as gw:
        assert gw.services.providers["anthropic"].keys[0].secret == LITERAL  # type: ignore[attr-defined]
        rows = await gw.services.store.query(SETTING_SQL)
        assert rows[0]["value"] != stored

    # a wrong key: the gateway starts, says why, and does not use garbage as a key
    monkeypatch.setenv("TOLLWAY_SECRET_KEY", Fernet.generate_key().decode())
    async with running(tmp_path) as gw:
        assert gw.services.providers["anthropic"].keys == []  # type: ignore[attr-defined]


async def test_plaintext_from_an_older_version_is_encrypted_at_start(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        legacy = {"anthropic": {"base_url": "http://127.0.0.1:9", "keys": [{"value": LITERAL}]}}
        await gw.services.store.put_setting("providers", json.dumps(legacy))
    async with running(tmp_path) as gw:
        assert gw.services.providers["anthropic"].keys[0].secret == LITERAL  # type: ignore[attr-defined]
        rows = await gw.services.store.query(SETTING_SQL)
        assert LITERAL not in rows[0]["value"]


def test_no_key_store_refuses_literal_keys() -> None:
    config = parse_config(f"providers: {{anthropic: {{keys: [{{value: {LITERAL}}}]}}}}")
    with pytest.raises(InvalidField, match="no secret key is configured") as info:
        stored_doc(config, None)
    assert info.value.field == "anthropic.keys.0.value"
    env_only = parse_config("providers: {anthropic: {keys: [{value: env.HOME}]}}")
    assert json.loads(stored_doc(env_only, None))["anthropic"]["keys"][0]["value"] == "env.HOME"


async def test_database_files_are_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOLLWAY_ADMIN_TOKEN", raising=False)
    old = os.umask(0o022)
    try:
        async with running(tmp_path) as gw:
            await gw.key("alice")
            files = {p.name: mode(p) for p in tmp_path.iterdir()}
            token, new = admin_token_for(f"sqlite:///{tmp_path / 'gw.db'}")
            assert new and token.startswith("twadmin-")
        assert {"gw.db", "gw.db-wal", "gw.db-shm"} <= set(files)
        assert all(m == 0o600 for m in files.values()), files
        assert mode(tmp_path / "gw.db.admin-token") == 0o600
        # a database left 0644 by an older version is tightened when opened
        (tmp_path / "gw.db").chmod(0o644)
        async with running(tmp_path):
            assert mode(tmp_path / "gw.db") == 0o600
    finally:
        os.umask(old)


async def test_invented_model_names_fold_into_other(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        secret = await gw.key("alice")
        for i in range(300):
            body = MSG.replace(b"claude-sonnet-4-5", f"made-up-model-{i}".encode())
            r = await gw.client.post("/v1/messages", content=body, headers={"x-api-key": secret})
            assert r.status_code == 200
        small = (await gw.client.get("/metrics")).text
        assert "made-up-model" not in small
        assert 'model="other"' in small
        for i in range(300, 1300):
            body = MSG.replace(b"claude-sonnet-4-5", f"made-up-model-{i}".encode())
            await gw.client.post("/v1/messages", content=body, headers={"x-api-key": secret})
        big = (await gw.client.get("/metrics")).text
        assert len(big.splitlines()) == len(small.splitlines()) and len(big) < len(small) + 200
        await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": secret})
        assert 'model="claude-sonnet-4-5"' in (await gw.client.get("/metrics")).text
        services: Services = gw.services
        assert services.model_label("anthropic/claude-sonnet-4-5-20250929") == "claude-sonnet-4-5"
        assert services.model_label("claude-sonnet-4-5-99999999") == "claude-sonnet-4-5"
        assert services.model_label("gpt-imaginary-9") == "other"


def test_bedrock_session_tokens_are_encrypted_and_read_back() -> None:
    box = SecretBox([Fernet.generate_key()])
    config = parse_config(
        "providers:\n  bedrock:\n    keys: [{name: iam, value: wJalrSECRET, "
        "access_key_id: AKIDEXAMPLE, session_token: FQoGSESSION}]\n"
    )
    text = stored_doc(config, box)
    assert "wJalrSECRET" not in text and "FQoGSESSION" not in text and "AKIDEXAMPLE" in text
    providers, plaintext = load_stored(text, box, EnvPolicy())
    key = providers["bedrock"].keys[0]
    assert (key.value, key.access_key_id, key.session_token) == (
        "wJalrSECRET", "AKIDEXAMPLE", "FQoGSESSION")  # fmt: skip
    assert plaintext is False
    with pytest.raises(InvalidField) as info:
        stored_doc(config, None)
    assert info.value.field == "bedrock.keys.0.value"
