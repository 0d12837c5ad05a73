"""``tollway sessions list|show`` and ``tollway audit verify|export|public-key``.

Both reach the gateway's state like every other command (its admin API, else the
database). ``audit verify`` exits 1 when the log was tampered with and names each row;
``audit export`` writes the entries as JSON lines, oldest first.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tollway.cli.backend import Backend
from tollway.cli.common import run, show, table

EXPORT_PAGE = 5000


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _sessions(args: argparse.Namespace) -> int:
    async def body(backend: Backend) -> int:
        docs = await backend.sessions(args.key, args.limit)
        if args.json:
            show(docs)
            return 0
        rows = [[d["session_id"], d["key"] or "-", d["client"] or "-", _when(d["last_at"]),
                 str(d["requests"]), f"${d['cost']}", str(d["actions"]), str(d["denials"])]
                for d in docs]  # fmt: skip
        head = ["SESSION", "KEY", "CLIENT", "LAST", "REQUESTS", "COST", "ACTIONS", "DENIED"]
        print(table(head, rows, frozenset({4, 5, 6, 7})) if rows else "no sessions yet")
        return 0

    return run(args, body)


def timeline_line(item: dict[str, Any]) -> str:
    when = _when(item["at"])
    if item["type"] == "request":
        tokens = f"in {item['input_tokens']} out {item['output_tokens']}"
        return (f"{when}  request {item['request_id']}  {item['model']}  {item['status']}  "
                f"${item['cost']}  {tokens}")  # fmt: skip
    what = item.get("command") or ", ".join(item.get("paths") or []) or item.get("domain") or ""
    line = f"{when}  {item['status']:<8} {item['tool']}"
    if what:
        line += f"  {what}"
    if item.get("reason") and item["status"] in ("denied", "failed"):
        line += f"  ({item.get('decided_by') or 'agent'}: {item['reason']})"
    return line


def _show(args: argparse.Namespace) -> int:
    async def body(backend: Backend) -> int:
        doc = await backend.session(args.session)
        if args.json:
            show(doc)
            return 0
        counts = f"actions {doc['actions']}  denied {doc['denials']}"
        print(f"session {doc['session_id']}  key {doc['key']}  requests {doc['requests']}  "
              f"cost ${doc['cost']}  {counts}")  # fmt: skip
        for item in doc["timeline"]:
            print(timeline_line(item))
        return 0

    return run(args, body)


def _verify(args: argparse.Namespace) -> int:
    async def body(backend: Backend) -> int:
        report = await backend.audit_verify()
        if args.public_key:
            from tollway.audit.signing import parse_public, public_pem

            given = public_pem(parse_public(Path(args.public_key).read_text()))
            stored = (await backend.audit_public_key())["pem"]
            if given != stored:
                report["ok"] = False
                report["problems"].append(
                    f"the log is signed with a different key than {args.public_key}: the "
                    "signing key was replaced"
                )
        if args.json:
            show(report)
        else:
            for problem in report["problems"]:
                print(f"TAMPERED: {problem}")
            state = "OK" if report["ok"] else "FAILED"
            print(f"audit log {state}: {report['entries']} entries, {report['checkpoints']} "
                  f"signed checkpoints, signed through {report['signed_through']}"
                  f" ({report['unsigned_tail']} newer entries unsigned)")  # fmt: skip
        return 0 if report["ok"] else 1

    return run(args, body)


def _export(args: argparse.Namespace) -> int:
    async def body(backend: Backend) -> int:
        out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
        since, count = args.since, 0
        try:
            while True:
                page = await backend.audit_entries(since, EXPORT_PAGE)
                for entry in page:
                    out.write(json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n")
                count += len(page)
                if len(page) < EXPORT_PAGE:
                    break
                since = page[-1]["seq"]
        finally:
            if out is not sys.stdout:
                out.close()
        if args.output:
            print(f"wrote {count} entries to {args.output}", file=sys.stderr)
        return 0

    return run(args, body)


def _public_key(args: argparse.Namespace) -> int:
    async def body(backend: Backend) -> int:
        doc = await backend.audit_public_key()
        print(doc["pem"], end="")
        return 0

    return run(args, body)


def add_commands(sub: Any) -> None:
    sessions = sub.add_parser("sessions", help="agent sessions: requests, cost, actions, denials")
    acts = sessions.add_subparsers(dest="sessions_action", required=True, metavar="ACTION")
    listing = acts.add_parser("list", help="sessions, newest first")
    listing.add_argument("--key", help="only this key's sessions (id or name)")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (50)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=_sessions)
    one = acts.add_parser("show", help="one session's timeline of requests and actions")
    one.add_argument("session", help="the session id (X-Claude-Code-Session-Id)")
    one.add_argument("--json", action="store_true", help="print JSON")
    one.set_defaults(func=_show)

    audit = sub.add_parser("audit", help="the tamper-evident audit log: verify, export")
    acts = audit.add_subparsers(dest="audit_action", required=True, metavar="ACTION")
    verify = acts.add_parser("verify", help="check the hash chain and the signed checkpoints")
    verify.add_argument("--public-key", metavar="FILE",
                        help="the public key exported earlier (else the stored one)")  # fmt: skip
    verify.add_argument("--json", action="store_true", help="print JSON")
    verify.set_defaults(func=_verify)
    export = acts.add_parser("export", help="the entries as JSON lines, oldest first")
    export.add_argument("--since", type=int, default=0, help="after this sequence number")
    export.add_argument("--output", "-o", metavar="FILE", help="write here (default: stdout)")
    export.set_defaults(func=_export)
    key = acts.add_parser("public-key", help="the checkpoint signing key's public half (PEM)")
    key.set_defaults(func=_public_key)
