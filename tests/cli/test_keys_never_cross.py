"""A Tollway virtual key in a provider key variable is never a provider key."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from conftest import (
    ADMIN_TOKEN,
    ANTHROPIC_UPSTREAM_KEY,
    STARTUP_TIMEOUT_S,
    GatewayServer,
    free_port,
)
from tollway.cli.banner import Startup, banner
from tollway.config import Config, ProviderConfig, ProviderKey, with_env_providers
from upstream_mock import MockUpstream

VK = "tw-" + "v" * 43  # what `export ANTHROPIC_API_KEY=tw-...` from the README leaves behind


def test_zero_config_ignores_a_virtual_key_in_the_provider_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {"ANTHROPIC_API_KEY": VK, "OPENAI_API_KEY": "sk-real-openai"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = with_env_providers(Config(), env)
    assert list(config.providers) == ["openai"]
    text = banner(Startup("127.0.0.1", 8080, config, environ=env))
    assert "openai  live      key 'env' from $OPENAI_API_KEY (environment)" in text
    assert "WARNING: ANTHROPIC_API_KEY holds a Tollway virtual key" in text
    assert "unset ANTHROPIC_API_KEY" in text
    assert VK not in text and "sk-real-openai" not in text  # never a secret
    only_vk = with_env_providers(Config(), {"ANTHROPIC_API_KEY": VK})
    assert list(only_vk.providers) == ["simulated"]


def test_banner_names_each_keys_source_and_refuses_crossed_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {"ANTHROPIC_API_KEY": VK, "GROQ_KEY": "gsk-real"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = Config(providers={
        "anthropic": ProviderConfig(keys=[ProviderKey(name="shell", value="env.ANTHROPIC_API_KEY"),
                                          ProviderKey(name="main", value="sk-ant-inline")]),
        "groq": ProviderConfig(type="openai", keys=[ProviderKey(value="env.GROQ_KEY")]),
        "stale": ProviderConfig(type="openai", keys=[ProviderKey(value=VK)]),
    })  # fmt: skip
    file_names = frozenset(config.providers)
    text = banner(Startup("127.0.0.1", 9, config, file_names, "tw.yaml", environ=env))
    lines = text.splitlines()
    assert "    anthropic  live      key 'main' from config file tw.yaml" in lines
    assert "    groq       live      key 'default' from $GROQ_KEY (named in tw.yaml)" in lines
    assert "    stale      NOT LIVE  no usable key: requests to it fail" in lines
    assert any("provider 'anthropic': $ANTHROPIC_API_KEY holds a Tollway virtual key" in ln
               for ln in lines)  # fmt: skip
    assert any("provider 'stale': the inline value of key 'default'" in ln for ln in lines)
    assert VK not in text and "sk-ant-inline" not in text and "gsk-real" not in text
    stored = banner(Startup("127.0.0.1", 9, config, file_names, "tw.yaml", stored=True,
                            environ=env))  # fmt: skip
    assert "key 'main' from the admin API (stored in the database)" in stored
    assert "key 'default' from $GROQ_KEY (set via the admin API)" in stored


@pytest.mark.parametrize(
    "gateway_extra_config",
    [{"providers": {"anthropic": {"keys": [
        {"name": "shell", "value": "env.ANTHROPIC_API_KEY", "weight": 100},
        {"name": "main", "value": ANTHROPIC_UPSTREAM_KEY, "weight": 1}]}}}],
)  # fmt: skip
def test_the_gateway_never_sends_a_crossed_key_upstream(
    gateway_factory: Callable[..., GatewayServer],
    gateway_extra_config: dict[str, object],
    mock_upstream: MockUpstream,
) -> None:
    gw = gateway_factory(gateway_extra_config, env={"ANTHROPIC_API_KEY": VK})
    key = gw.key("crossed")
    body = {"model": "claude-haiku-4-5", "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    with httpx.Client(timeout=10) as client:
        for _ in range(5):
            headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
            resp = client.post(f"{gw.base_url}/v1/messages", json=body, headers=headers)
            assert resp.status_code == 200, resp.text
    sent = [r.header_all("x-api-key") for r in mock_upstream.calls("/v1/messages", "POST")]
    assert sent == [[ANTHROPIC_UPSTREAM_KEY]] * 5
    logs = gw.logs()
    assert "provider 'anthropic': $ANTHROPIC_API_KEY holds a Tollway virtual key" in logs
    assert "anthropic  live      key 'main' from config file" in logs
    assert VK not in logs


def test_the_admin_api_refuses_a_virtual_key_as_a_provider_key(
    gateway_server: GatewayServer,
) -> None:
    providers = {"anthropic": {"keys": [{"value": VK}]}}
    with httpx.Client(timeout=10) as client:
        resp = client.put(f"{gateway_server.base_url}/api/providers", json=providers,
                          headers=gateway_server.admin_headers())  # fmt: skip
    assert resp.status_code == 400, resp.text
    assert "holds a Tollway virtual key" in resp.text and VK not in resp.text


def test_make_serve_in_the_readme_shell_stays_simulated(tmp_path: Path) -> None:
    """`export ANTHROPIC_API_KEY=tw-...` then `tollway serve` again, with no config."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update({"ANTHROPIC_API_KEY": VK, "TOLLWAY_ADMIN_TOKEN": ADMIN_TOKEN,
                "XDG_STATE_HOME": str(tmp_path / "state"), "PYTHONUNBUFFERED": "1"})  # fmt: skip
    log = (tmp_path / "serve.log").open("wb")
    cmd = [sys.executable, "-m", "tollway", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        text = (tmp_path / "serve.log").read_text()
        key = text.split("export ANTHROPIC_API_KEY=")[-1].split()[0]
        resp = httpx.post(base + "/v1/messages", headers={"x-api-key": key}, timeout=10, json={
            "model": "claude-haiku-4-5", "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
    assert "simulated  live" in text and "WARNING: ANTHROPIC_API_KEY holds a Tollway" in text
    assert f"dashboard: http://127.0.0.1:{port}/ui" in text and VK not in text
    assert resp.status_code == 200 and resp.json()["type"] == "message", resp.text
