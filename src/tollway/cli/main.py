"""The ``tollway`` command: serve, manage keys/teams/customers, status, Claude Code env."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tollway.errors import ConfigError, GatewayError


def _parser() -> argparse.ArgumentParser:
    from tollway.cli import entities, prices, usage

    parser = argparse.ArgumentParser(prog="tollway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", help="YAML or JSON config file")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--db", help="sqlite:///FILE (default ./tollway.db) or postgresql://...")
    serve.set_defaults(func=_serve)

    entities.add_commands(sub)
    usage.add_commands(sub)
    prices.add_commands(sub)

    cc = sub.add_parser("claude-code", help="Claude Code helpers")
    cc_sub = cc.add_subparsers(dest="cc_command", required=True)
    env = cc_sub.add_parser("env", help="print the env lines that point Claude Code here")
    env.add_argument("--key", required=True, help="a Tollway virtual key")
    env.add_argument("--url", default="http://127.0.0.1:8080", help="the gateway's base URL")
    env.set_defaults(func=_claude_env)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from tollway.cli.serve import run

    return run(args)


def _claude_env(args: argparse.Namespace) -> int:
    print(f"export ANTHROPIC_BASE_URL={args.url}")
    print(f"export ANTHROPIC_API_KEY={args.key}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (ConfigError, GatewayError) as exc:
        print(f"tollway: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
