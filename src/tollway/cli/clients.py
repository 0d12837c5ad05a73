"""``tollway <client> env|config``: the exact lines that point a client at Tollway.

Clients: claude-code, codex, cursor, openai (SDK), anthropic (SDK), curl. ``env`` prints
shell exports; ``config`` prints the client's own file or snippet. Each renderer is a pure
function of the gateway URL and the key; tests run every one against the real clients.
"""

from __future__ import annotations

import argparse
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tollway.cli.context import DEFAULT_URL, answers
from tollway.cli.runtime import live_gateways

KEY_VAR = "TOLLWAY_API_KEY"
KEY_PLACEHOLDER = "tw-..."
CLAUDE_MODEL = "claude-sonnet-4-5"
OPENAI_MODEL = "gpt-5"


@dataclass(frozen=True)
class Setup:
    url: str  # the gateway's base URL, no trailing slash
    key: str  # a virtual key, or the placeholder
    key_file: str | None = None
    model: str | None = None


def claude_env(s: Setup) -> str:
    return f"export ANTHROPIC_BASE_URL={s.url}\nexport ANTHROPIC_API_KEY={s.key}"


def claude_settings(s: Setup) -> str:
    """~/.claude/settings.json: the key from a helper command, so no env var is needed."""
    helper = f"cat {shlex.quote(s.key_file)}" if s.key_file else f"echo {shlex.quote(s.key)}"
    doc = {"apiKeyHelper": helper, "env": {"ANTHROPIC_BASE_URL": s.url}}
    if s.model:
        doc["model"] = s.model
    return json.dumps(doc, indent=2)


def codex_env(s: Setup) -> str:
    return f"export {KEY_VAR}={s.key}"


def codex_config(s: Setup) -> str:
    """$CODEX_HOME/config.toml (default ~/.codex/config.toml): Tollway as a model provider."""
    return "\n".join([
        f'model = "{s.model or OPENAI_MODEL}"',
        'model_provider = "tollway"',
        "",
        "[model_providers.tollway]",
        'name = "Tollway"',
        f'base_url = "{s.url}/v1"',
        f'env_key = "{KEY_VAR}"',
        'wire_api = "responses"',
    ])  # fmt: skip


def cursor_config(s: Setup) -> str:
    return "\n".join([
        "Cursor > Settings > Models > API Keys:",
        f"  OpenAI API Key:            {s.key}",
        f"  Override OpenAI Base URL:  {s.url}/v1   (switch it on)",
        "Then add the model names you route (e.g. gpt-5, claude-sonnet-4-5) under Models.",
        "Cursor sends these requests from its own servers: the base URL must be reachable",
        "from the internet (a public host or a tunnel), not 127.0.0.1.",
    ])  # fmt: skip


def openai_env(s: Setup) -> str:
    return f"export OPENAI_BASE_URL={s.url}/v1\nexport OPENAI_API_KEY={s.key}"


def openai_snippet(s: Setup) -> str:
    return "\n".join([
        "from openai import OpenAI",
        "",
        f'client = OpenAI(base_url="{s.url}/v1", api_key="{s.key}")',
        "reply = client.chat.completions.create(",
        f'    model="{s.model or OPENAI_MODEL}", '
        'messages=[{"role": "user", "content": "say hi"}]',
        ")",
        "print(reply.choices[0].message.content)",
    ])  # fmt: skip


def anthropic_env(s: Setup) -> str:
    return claude_env(s)


def anthropic_snippet(s: Setup) -> str:
    return "\n".join([
        "import anthropic",
        "",
        f'client = anthropic.Anthropic(base_url="{s.url}", api_key="{s.key}")',
        "message = client.messages.create(",
        f'    model="{s.model or CLAUDE_MODEL}",',
        "    max_tokens=1024,",
        '    messages=[{"role": "user", "content": "say hi"}],',
        ")",
        "print(message.content[0].text)",
    ])  # fmt: skip


def curl_env(s: Setup) -> str:
    return f"export TOLLWAY_URL={s.url}\nexport {KEY_VAR}={s.key}"


def curl_commands(s: Setup) -> str:
    """Both dialects, self-contained."""
    messages = json.dumps({"model": s.model or CLAUDE_MODEL, "max_tokens": 256,
                           "messages": [{"role": "user", "content": "say hi"}]})  # fmt: skip
    chat = json.dumps({"model": s.model or OPENAI_MODEL,
                       "messages": [{"role": "user", "content": "say hi"}]})  # fmt: skip
    return "\n".join([
        f"curl -sS {s.url}/v1/messages \\",
        f"  -H 'x-api-key: {s.key}' -H 'anthropic-version: 2023-06-01' \\",
        f"  -H 'content-type: application/json' -d {shlex.quote(messages)}",
        "",
        f"curl -sS {s.url}/v1/chat/completions \\",
        f"  -H 'Authorization: Bearer {s.key}' -H 'content-type: application/json' \\",
        f"  -d {shlex.quote(chat)}",
    ])  # fmt: skip


Render = Callable[[Setup], str]
# client -> (what it is, {action: (help, renderer)})
CLIENTS: dict[str, tuple[str, dict[str, tuple[str, Render]]]] = {
    "claude-code": ("Claude Code", {
        "env": ("shell exports: ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY", claude_env),
        "config": ("~/.claude/settings.json with apiKeyHelper (no env var needed)",
                   claude_settings),
    }),
    "codex": ("Codex CLI", {
        "env": (f"the export of {KEY_VAR}, which config.toml names in env_key", codex_env),
        "config": ("~/.codex/config.toml: Tollway as a model provider, wire_api responses",
                   codex_config),
    }),
    "cursor": ("Cursor", {
        "config": ("what to enter in Cursor's settings", cursor_config),
    }),
    "openai": ("the openai SDKs", {
        "env": ("OPENAI_BASE_URL and OPENAI_API_KEY, read by every openai SDK", openai_env),
        "config": ("a Python snippet with the openai SDK", openai_snippet),
    }),
    "anthropic": ("the anthropic SDKs", {
        "env": ("ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY, read by every anthropic SDK",
                anthropic_env),
        "config": ("a Python snippet with the anthropic SDK", anthropic_snippet),
    }),
    "curl": ("curl", {
        "env": (f"TOLLWAY_URL and {KEY_VAR} for your own scripts", curl_env),
        "config": ("curl commands for the Anthropic and OpenAI endpoints", curl_commands),
    }),
}  # fmt: skip


def gateway_url(args: argparse.Namespace) -> str:
    """--url, $TOLLWAY_URL, a running gateway (the default port first), else the default."""
    import os

    url = getattr(args, "url", None) or os.environ.get("TOLLWAY_URL")
    if url:
        return str(url).rstrip("/")
    records = sorted(live_gateways(), key=lambda r: r.url != DEFAULT_URL)
    for record in records:
        if answers(record.url):
            return record.url
    return DEFAULT_URL


def _print(args: argparse.Namespace) -> int:
    render = CLIENTS[args.client][1][args.client_action][1]
    setup = Setup(url=gateway_url(args), key=args.key or KEY_PLACEHOLDER,
                  key_file=getattr(args, "key_file", None), model=args.model)  # fmt: skip
    print(render(setup))
    return 0


def add_commands(sub: Any) -> None:
    for client, (label, actions) in CLIENTS.items():
        names = "|".join(actions)
        p = sub.add_parser(client, help=f"set up {label}: {names}",
                           description=f"Print what points {label} at Tollway.")  # fmt: skip
        acts = p.add_subparsers(dest="client_action", required=True, metavar="ACTION")
        for action, (text, _render) in actions.items():
            a = acts.add_parser(action, help=text, description=text)
            a.add_argument("--key", help=f"the virtual key to put in (default: {KEY_PLACEHOLDER})")
            a.add_argument("--model", help="the model to name, where the client needs one")
            if client == "claude-code" and action == "config":
                a.add_argument("--key-file", metavar="PATH",
                               help="apiKeyHelper reads the key from this file")  # fmt: skip
            a.set_defaults(func=_print, client=client)
        if client == "claude-code":
            from tollway.cli import mcp

            mcp.add_command(acts)  # tollway claude-code mcp --key ...
            from tollway.cli import hooks

            hooks.add_command(acts)  # tollway claude-code settings
