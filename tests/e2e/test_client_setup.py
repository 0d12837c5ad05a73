"""Every client setup Tollway prints works: the real clients, through the real gateway, to
the loopback upstream, configured only by `tollway <client> env|config` output."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from clients import installed
from conftest import ANTHROPIC_UPSTREAM_KEY, OPENAI_UPSTREAM_KEY, GatewayServer
from upstream_mock import DEFAULT_TEXT, MockUpstream, RecordedRequest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
RUN_TIMEOUT_S = 180


def tollway(gw: GatewayServer, *argv: str) -> str:
    """The CLI's output for ``argv``, pointed at ``gw`` by ``--url`` as the README shows."""
    done = subprocess.run(
        [sys.executable, "-m", "tollway", *argv, "--url", gw.base_url],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def exports(text: str) -> dict[str, str]:
    """``export NAME=value`` lines, as a shell would read them."""
    out = {}
    for line in text.splitlines():
        words = shlex.split(line)
        assert words[0] == "export" and len(words) == 2, line
        name, _, value = words[1].partition("=")
        out[name] = value
    return out


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """Nothing from the user's environment: no provider keys, no base URLs, no config."""
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
            "LANG": "C.UTF-8", "SHELL": "/bin/bash", **extra}  # fmt: skip


def run(cmd: list[str], env: dict[str, str], cwd: Path, gw: GatewayServer) -> str:
    try:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{cmd[0]} took over {RUN_TIMEOUT_S} s\n{exc.stdout!r}\n{exc.stderr!r}\n"
                    f"{gw.logs()}")  # fmt: skip
    detail = f"exit {done.returncode}\n--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
    assert done.returncode == 0, f"{detail}\n{gw.logs()}"
    return done.stdout


def upstream_saw(mock: MockUpstream, path: str, header: str, value: str) -> list[RecordedRequest]:
    calls = mock.calls(path, "POST")
    assert calls, [(r.method, r.raw_path) for r in mock.requests]
    assert all(r.header_all(header) == [value] for r in calls), [r.headers for r in calls]
    return calls


def test_codex_config_toml_drives_codex(
    gateway_server: GatewayServer, mock_upstream: MockUpstream, tmp_path: Path
) -> None:
    codex = installed("codex")
    vkey = gateway_server.key("codex-setup")
    codex_home = tmp_path / "codex-home"
    codex_home.mkdir()
    (codex_home / "config.toml").write_text(tollway(gateway_server, "codex", "config"))
    env = clean_env(tmp_path / "home", CODEX_HOME=str(codex_home),
                    **exports(tollway(gateway_server, "codex", "env", "--key", vkey)))  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    out = run([str(codex), "exec", "--strict-config", "--skip-git-repo-check", "say hi"],
              env, work, gateway_server)  # fmt: skip
    assert DEFAULT_TEXT in out
    calls = upstream_saw(mock_upstream, "/v1/responses", "authorization",
                         f"Bearer {OPENAI_UPSTREAM_KEY}")  # fmt: skip
    assert calls[0].json()["model"] == "gpt-5" and calls[0].stream
    assert not [v for r in calls for _k, v in r.headers if vkey in v]


def test_claude_code_env_lines_drive_claude_code(
    gateway_server: GatewayServer, mock_upstream: MockUpstream, tmp_path: Path
) -> None:
    claude = installed("claude")
    vkey = gateway_server.key("claude-env")
    lines = exports(tollway(gateway_server, "claude-code", "env", "--key", vkey))
    env = clean_env(tmp_path / "home", DISABLE_AUTOUPDATER="1", DISABLE_TELEMETRY="1", **lines)
    result = json.loads(run([str(claude), "-p", "say hi", "--output-format", "json"], env,
                            tmp_path / "home", gateway_server))  # fmt: skip
    assert result["is_error"] is False and DEFAULT_TEXT in result["result"], result
    upstream_saw(mock_upstream, "/v1/messages", "x-api-key", ANTHROPIC_UPSTREAM_KEY)


@pytest.mark.parametrize("source", ["key", "key-file"])
def test_claude_code_settings_json_with_api_key_helper(
    gateway_server: GatewayServer, mock_upstream: MockUpstream, tmp_path: Path, source: str
) -> None:
    claude = installed("claude")
    vkey = gateway_server.key("claude-settings")
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    flags = ["--key", vkey]
    if source == "key-file":
        key_file = tmp_path / "tollway key"  # a space: the helper command must quote it
        key_file.write_text(vkey + "\n")
        flags = ["--key-file", str(key_file)]
    settings = tollway(gateway_server, "claude-code", "config", *flags)
    assert (vkey in settings) == (source == "key")
    (home / ".claude" / "settings.json").write_text(settings)
    env = clean_env(home, DISABLE_AUTOUPDATER="1", DISABLE_TELEMETRY="1")  # no ANTHROPIC_*
    result = json.loads(run([str(claude), "-p", "say hi", "--output-format", "json"], env,
                            home, gateway_server))  # fmt: skip
    assert result["is_error"] is False and DEFAULT_TEXT in result["result"], result
    upstream_saw(mock_upstream, "/v1/messages", "x-api-key", ANTHROPIC_UPSTREAM_KEY)


FROM_ENV = {
    "openai": "from openai import OpenAI\n"
    "r = OpenAI().chat.completions.create(model='gpt-5', "
    "messages=[{'role': 'user', 'content': 'hi'}])\nprint(r.choices[0].message.content)",
    "anthropic": "import anthropic\n"
    "m = anthropic.Anthropic().messages.create(model='claude-sonnet-4-5', max_tokens=64, "
    "messages=[{'role': 'user', 'content': 'hi'}])\nprint(m.content[0].text)",
}


@pytest.mark.parametrize("client", ["openai", "anthropic"])
def test_sdk_snippet_and_env(
    gateway_server: GatewayServer, mock_upstream: MockUpstream, tmp_path: Path, client: str
) -> None:
    vkey = gateway_server.key(f"{client}-sdk")
    snippet = tollway(gateway_server, client, "config", "--key", vkey)
    env = clean_env(tmp_path / "home")
    out = run([sys.executable, "-c", snippet], env, tmp_path, gateway_server)
    assert out.strip() == DEFAULT_TEXT
    # A client built from the variables alone, as every SDK reads them.
    bare = FROM_ENV[client]
    env.update(exports(tollway(gateway_server, client, "env", "--key", vkey)))
    assert run([sys.executable, "-c", bare], env, tmp_path, gateway_server).strip() == DEFAULT_TEXT
    path, header, value = (
        ("/v1/chat/completions", "authorization", f"Bearer {OPENAI_UPSTREAM_KEY}")
        if client == "openai" else ("/v1/messages", "x-api-key", ANTHROPIC_UPSTREAM_KEY)
    )  # fmt: skip
    assert len(upstream_saw(mock_upstream, path, header, value)) == 2


def test_curl_commands(
    gateway_server: GatewayServer, mock_upstream: MockUpstream, tmp_path: Path
) -> None:
    vkey = gateway_server.key("curl")
    commands = tollway(gateway_server, "curl", "config", "--key", vkey).split("\n\n")
    assert len(commands) == 2
    replies = [json.loads(run(["bash", "-c", c], clean_env(tmp_path / "home"), tmp_path,
                              gateway_server)) for c in commands]  # fmt: skip
    assert replies[0]["content"][0]["text"] == DEFAULT_TEXT
    assert replies[1]["choices"][0]["message"]["content"] == DEFAULT_TEXT
    upstream_saw(mock_upstream, "/v1/messages", "x-api-key", ANTHROPIC_UPSTREAM_KEY)
    env = exports(tollway(gateway_server, "curl", "env", "--key", vkey))
    assert env == {"TOLLWAY_URL": gateway_server.base_url, "TOLLWAY_API_KEY": vkey}


def test_cursor_settings_are_a_working_openai_base_url_and_key(
    gateway_server: GatewayServer, mock_upstream: MockUpstream, tmp_path: Path
) -> None:
    """Cursor itself cannot run here; what it is told to enter drives the chat API it uses."""
    from openai import OpenAI

    vkey = gateway_server.key("cursor")
    text = tollway(gateway_server, "cursor", "config", "--key", vkey)
    fields = dict(line.strip().split(":  ", 1) for line in text.splitlines() if ":  " in line)
    base_url = fields["Override OpenAI Base URL"].split()[0]
    assert fields["OpenAI API Key"].strip() == vkey and base_url == gateway_server.base_url + "/v1"
    client = OpenAI(base_url=base_url, api_key=vkey)
    reply = client.chat.completions.create(
        model="gpt-5", messages=[{"role": "user", "content": "say hi"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in reply if c.choices) == DEFAULT_TEXT
    client.close()
    upstream_saw(mock_upstream, "/v1/chat/completions", "authorization",
                 f"Bearer {OPENAI_UPSTREAM_KEY}")  # fmt: skip
