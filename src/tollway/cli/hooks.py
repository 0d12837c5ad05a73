"""``tollway claude-code settings``: the settings that install the gateway's tool-policy hook.

The printed JSON is a Claude Code settings document: put it in the managed settings file
(``/etc/claude-code/managed-settings.json`` on Linux, which a developer cannot override)
or merge it into ``~/.claude/settings.json`` / a project's ``.claude/settings.json``.
The hook sends the virtual key from ``$ANTHROPIC_API_KEY`` (Claude Code fills only the
variables ``allowedEnvVars`` lists), or the key itself with ``--key``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from tollway.audit.hook import PATH

KEY_ENV = "ANTHROPIC_API_KEY"
TIMEOUT_S = 10


def hook_settings(url: str, key: str | None = None, timeout_s: int = TIMEOUT_S) -> dict[str, Any]:
    base = url.rstrip("/")
    hook: dict[str, Any] = {
        "type": "http",
        "url": base + PATH,
        "headers": {"x-api-key": key or f"${KEY_ENV}"},
        "timeout": timeout_s,
    }
    if key is None:
        hook["allowedEnvVars"] = [KEY_ENV]
    return {
        "allowedHttpHookUrls": [base + "/hooks/*"],
        "hooks": {"PreToolUse": [{"matcher": "*", "hooks": [hook]}]},
    }


def _print(args: argparse.Namespace) -> int:
    from tollway.cli.clients import gateway_url

    doc = hook_settings(gateway_url(args), args.key, args.timeout)
    print(json.dumps(doc, indent=2))
    return 0


def add_command(cc_sub: Any) -> None:
    cmd = cc_sub.add_parser(
        "settings", help="print the settings that install the gateway's PreToolUse policy hook",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    cmd.add_argument("--key", help=f"put this virtual key in the hook (default: ${KEY_ENV})")
    cmd.add_argument("--timeout", type=int, default=TIMEOUT_S,
                     help=f"seconds Claude Code waits for a decision ({TIMEOUT_S})")  # fmt: skip
    cmd.set_defaults(func=_print)
