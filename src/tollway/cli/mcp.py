"""``tollway claude-code mcp``: the command and the ``.mcp.json`` that point Claude Code
at the gateway's MCP endpoint."""

from __future__ import annotations

import argparse
import json
import shlex

KEY_ENV = "TOLLWAY_KEY"

DEFAULT_URL = "http://127.0.0.1:8080"


def add_command(cc_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = cc_sub.add_parser("mcp", help="print how to add the gateway's MCP tools to Claude Code")
    cmd.add_argument("--key", required=True, help="a Tollway virtual key")
    cmd.add_argument("--url", default=DEFAULT_URL, help="the gateway's base URL")
    cmd.add_argument("--group", help="a tool group: the curated endpoint /mcp/<group>")
    cmd.add_argument("--name", default="tollway",
                     help="its name in Claude Code: the gateway's mcp.client_name")  # fmt: skip
    cmd.set_defaults(func=run)


def lines(key: str, url: str, group: str | None, name: str = "tollway") -> list[str]:
    endpoint = url.rstrip("/") + "/mcp" + (f"/{group}" if group else "")
    server = name + (f"-{group}" if group else "")
    add = ["claude", "mcp", "add", "--transport", "http", server, endpoint,
           "--header", f"Authorization: Bearer {key}"]  # fmt: skip
    snippet = {"mcpServers": {server: {
        "type": "http", "url": endpoint,
        "headers": {"Authorization": f"Bearer ${{{KEY_ENV}}}"}}}}  # fmt: skip
    return [
        "# Add the gateway's MCP tools to Claude Code:",
        shlex.join(add),
        "",
        f"# Or share them with a project: .mcp.json (with {KEY_ENV} set in each shell)",
        json.dumps(snippet, indent=2),
        f"export {KEY_ENV}={shlex.quote(key)}",
    ]


def run(args: argparse.Namespace) -> int:
    # --url is also a global option; given nowhere it is None here
    url = getattr(args, "url", None) or DEFAULT_URL
    print("\n".join(lines(args.key, url, args.group, args.name)))
    return 0
