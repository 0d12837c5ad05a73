"""The tollway command: run the gateway, manage keys, teams, customers and budgets, read
usage and the request log, and print client setup.

Global options (--db, --config, --url, --admin-token) may come before or after the
command. Without --db or --url the CLI finds the gateway's state itself (a running
gateway's admin API, else ./tollway.db) and never creates an empty database by accident.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version

from tollway.errors import ConfigError, GatewayError

_GLOBALS = (
    ("--db", "URL", "database: sqlite:///FILE or postgresql://... (default: $TOLLWAY_DB, "
     "else ./tollway.db)"),
    ("--config", "FILE", "YAML or JSON config file (read by serve and prices)"),
    ("--url", "URL", "a running gateway's base URL, e.g. http://127.0.0.1:8080 "
     "(default: $TOLLWAY_URL, else the one found running)"),
    ("--admin-token", "TOKEN", "the gateway's admin token (default: $TOLLWAY_ADMIN_TOKEN, "
     "else the token file of the gateway found running)"),
)  # fmt: skip


def _version() -> str:
    try:
        return version("tollway")
    except PackageNotFoundError:
        return "unknown"


def _add_globals(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """The global options, on ``parser``; a command's own --config or --db stays its own."""
    own = {s for a in parser._actions for s in a.option_strings}
    if "--config" in own:
        parser.set_defaults(reads_config=True)
    flags = {flag for flag, _m, _t in _GLOBALS}
    for action in parser._actions:
        if suppress and flags & set(action.option_strings):
            action.default = argparse.SUPPRESS  # given before the command, it still counts
    group = parser.add_argument_group("global options")
    for flag, metavar, text in _GLOBALS:
        if flag not in own:
            default = argparse.SUPPRESS if suppress else None
            group.add_argument(flag, metavar=metavar, default=default, help=text)


def _leaves(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield parser
    for action in subs:
        for child in dict.fromkeys(action.choices.values()):
            yield from _leaves(child)


def _serve_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the gateway", description="Run the gateway.")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")
    serve.set_defaults(func=_serve)


def parser() -> argparse.ArgumentParser:
    from tollway.cli import audit, budgets, clients, entities, prices, secrets, usage

    top = argparse.ArgumentParser(
        prog="tollway", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    top.add_argument("--version", action="version", version=f"tollway {_version()}")
    _add_globals(top, suppress=False)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _serve_commands(sub)
    entities.add_commands(sub)
    budgets.add_commands(sub)
    usage.add_commands(sub)
    prices.add_commands(sub)
    secrets.add_commands(sub)
    clients.add_commands(sub)
    audit.add_commands(sub)
    for leaf in _leaves(top):
        if leaf is not top:
            _add_globals(leaf, suppress=True)
    return top


def _serve(args: argparse.Namespace) -> int:
    from tollway.cli.serve import run

    return run(args)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.config and args.command != "serve" and not getattr(args, "reads_config", False):
        print("tollway: --config is read by `tollway serve` and `tollway prices` only",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        code: int = args.func(args)
    except (ConfigError, GatewayError) as exc:
        print(f"tollway: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
