"""Record a long, real Claude Code session: the pinned CLI against the loopback mock.

The mock answers every main request with one Bash tool call (``cat`` of a source file
copied into the session's working tree) until ``--tools`` calls have been made, then with
text; ``--turns`` more prompts continue the same session with ``--resume``. Every request
body is kept as sent, byte for byte, with its session header and the SSE written back.

    .venv/bin/python -m bench.record_session --tools 30 --turns 3 \
        --out tests/fixtures/wire/claude_long_session.jsonl.zst
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import zstandard

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]

from clients import installed  # noqa: E402
from upstream_mock import (  # noqa: E402
    MockUpstream,
    RecordedRequest,
    Reply,
    anthropic_events,
    text_block,
    tool_use_block,
)


def _prompts_seen(body: dict[str, Any]) -> int:
    text = json.dumps([m for m in body["messages"] if m.get("role") == "user"])
    return text.count("Read the source files") + text.count("Now read more files")


def _responder(files: list[str], per_turn: int) -> Any:
    state = {"calls": 0}

    def reply(req: RecordedRequest) -> Reply | None:
        if req.method != "POST" or req.path != "/v1/messages":
            return None
        body = req.json()
        if "Bash" not in [t.get("name") for t in body.get("tools", [])]:
            return None
        model = body.get("model", "claude-opus-4-5")
        if state["calls"] < _prompts_seen(body) * per_turn:
            name = files[state["calls"] % len(files)]
            state["calls"] += 1
            blocks = [
                text_block(f"Reading {name} to see how it is built."),
                tool_use_block("Bash", {"command": f"cat {name}", "description": f"Show {name}"}),
            ]
        else:
            blocks = [text_block("I read the files; the writer batches records and bodies.")]
        return Reply(events=anthropic_events(blocks, model=model))

    return reply


def _run(claude: Path, home: Path, base_url: str, *args: str) -> dict[str, Any]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
        "SHELL": "/bin/bash", "LANG": "C.UTF-8", "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "sk-ant-recording", "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
    }  # fmt: skip
    cmd = [str(claude), *args, "--allowedTools", "Bash", "--output-format", "json"]
    done = subprocess.run(cmd, cwd=home, env=env, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL, check=False)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"claude failed: {done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tools", type=int, default=30)
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    claude = installed("claude")
    home = Path(tempfile.mkdtemp(prefix="tollway-record-"))
    sources = sorted((ROOT / "src" / "tollway").rglob("*.py"))
    files = []
    for src in sources:
        if src.stat().st_size > 2000:
            dest = home / "proj" / src.relative_to(ROOT / "src")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dest)
            files.append(str(dest.relative_to(home)))
    prompts = ["Read the source files one by one and explain the log writer."]
    prompts += [f"Now read more files, round {i + 2}." for i in range(args.turns - 1)]
    with MockUpstream() as mock:
        mock.responder = _responder(files, args.tools // args.turns)
        first = _run(claude, home, mock.base_url, "-p", prompts[0])
        for prompt in prompts[1:]:
            _run(claude, home, mock.base_url, "-p", prompt, "--resume", first["session_id"])
        lines = []
        for r in mock.calls(method="POST"):
            lines.append(json.dumps({
                "path": r.raw_path, "session": r.header("x-claude-code-session-id"),
                "body_b64": base64.b64encode(r.body).decode(),
                "response_b64": base64.b64encode(bytes(r.reply_body)).decode(),
            }))  # fmt: skip
    raw = ("\n".join(lines) + "\n").encode()
    params = zstandard.ZstdCompressionParameters.from_level(19, window_log=27)
    args.out.write_bytes(zstandard.ZstdCompressor(compression_params=params).compress(raw))
    print(f"{len(lines)} requests, {len(raw):,} B raw, {args.out.stat().st_size:,} B stored")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
