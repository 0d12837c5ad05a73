"""Content logging under load, with real multi-turn Claude Code bodies.

    .venv/bin/python -m bench.content_load --base-ref main --name content-load
    .venv/bin/python -m bench.content_load --targets direct,required,off --rates 100 \
        --body recorded --profile required --name content-profile

Each stream is one turn of a Claude Code session: ``--sessions`` sessions run in parallel,
each replaying the 48 request bodies of the session recorded by ``bench.record_session``
(tests/fixtures/wire/claude_long_session.jsonl.zst, 77-400 KB each), with the recorded
headers and a session id per replay; the mock answers each with 60 SSE events.

Targets, interleaved at each rate (the gateways pinned to CPU 0, one at a time loaded):
  direct        the mock itself, for the overheads
  floor         bench.floor_proxy: bytes forwarded and nothing else, the least any
                Python gateway spends (its CPU and TTFB are the floor under the targets)
  base          ``--base-ref``'s source (``git archive``): bodies stored whole, zlib
  tollway       this tree, content best_effort (the default)
  required      this tree, ``content: required`` on the key
  off           this tree, ``logging.content: false``: what content costs, GIL included

The mock's own CPU per stream is in every row (``mock_cpu_ms_per_stream``): the upstream
writes each event once, so it is what one hop of the stream costs this machine.
CPU per stream counts the gateway's whole process tree (all threads) from the start of
the load until it is idle again, so the writer's backlog is included. After each run the
database is read: bodies stored against streams served, and what the bodies take.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import targets
from bench.payloads import REPO
from bench.procs import Service, wait_idle
from bench.targets import LOAD_CPU, TOLLWAY, TOOLS, Target

SESSION = REPO / "tests" / "fixtures" / "wire" / "claude_long_session.jsonl.zst"


def log(msg: str) -> None:
    print(f"[content-load {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def base_source(ref: str, work: Path) -> Path:
    dest = work / "base"
    dest.mkdir(parents=True, exist_ok=True)
    archive = work / "base.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), ref, "src"], check=True)
    with tarfile.open(archive) as t:
        t.extractall(dest, filter="data")
    return dest / "src"


def config(work: Path, name: str, mock_port: int, content: str) -> Path:
    path = work / f"{name}.yaml"
    path.write_text(
        "providers:\n  anthropic:\n"
        f"    base_url: http://127.0.0.1:{mock_port}\n    keys: [{{value: sk-mock-anthropic}}]\n"
        f"logging:\n  content: {content}\n"
    )
    return path


def create_key(db: str, env: dict[str, str], content: str | None) -> str:
    cmd = [str(TOLLWAY), "keys", "create", "bench", "--db", db, "--budget", "1000000/1d",
           "--session-budget", "1000000", "--rpm", "10000000",
           "--concurrency", "100000"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60,
                         env={**os.environ, **env})  # fmt: skip
    key = json.JSONDecoder().raw_decode(out.stdout.strip())[0]
    if content is not None:  # the CLI has no flag for it: set it on the stored key record
        with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
            (doc,) = conn.execute("SELECT doc FROM entities WHERE id = ?", (key["id"],)).fetchone()
            rec = json.loads(doc)
            rec["content"] = content
            conn.execute("UPDATE entities SET doc = ? WHERE id = ?", (json.dumps(rec), key["id"]))
            conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 "
                         "WHERE key = 'revision'")  # fmt: skip
    return str(key["key"])


def loadgen(
    port: int, key: str, rate: float, duration: float, sessions: int, replay: bool = True
) -> dict[str, Any]:
    cmd = ["taskset", "-c", str(LOAD_CPU), sys.executable, "-m", "bench.loadgen",
           "--port", str(port), "--shape", "claude-code-stream", "--key", key,
           "--rate", str(rate), "--duration", str(duration), "--drain", "20"]  # fmt: skip
    if replay:  # else the one recorded 77 KB request, as bench.run sends it
        cmd += ["--session-file", str(SESSION), "--sessions", str(sessions)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=duration + 120)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed: {done.stderr[-800:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def db_counts(db: str) -> dict[str, int]:
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        out = {
            "requests": conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0],
            "contents": conn.execute("SELECT COUNT(*) FROM contents").fetchone()[0],
            "content_bytes": conn.execute(
                "SELECT COALESCE(SUM(LENGTH(request_body) + LENGTH(response_body)), 0) "
                "FROM contents"
            ).fetchone()[0],
        }
        if "content_chunks" in tables:
            out["content_bytes"] += conn.execute(
                "SELECT COALESCE(SUM(LENGTH(data) + LENGTH(digest)), 0) FROM content_chunks"
            ).fetchone()[0]
    return out


def metric(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def run_one(
    t: Target, db: str | None, rate: float, args: argparse.Namespace, mock: Service
) -> dict[str, Any]:
    before = db_counts(db) if db else {}
    cpu0 = t.service.cpu() if t.service else 0.0
    mock0 = mock.cpu()
    t0 = time.perf_counter()
    spy = None
    if t.service is not None and t.name in args.profile.split(","):
        out = REPO / "bench" / "results" / "raw" / args.name / f"profile-{t.name}-{rate:g}.txt"
        spy = subprocess.Popen([str(TOOLS / "py-spy"), "record", "--pid", str(t.service.pid),
                                "--duration", str(int(args.duration)), "--rate", "250",
                                "--format", "raw", "-o", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    res = loadgen(t.port, t.key, rate, args.duration, args.sessions, args.body == "session")
    if spy is not None:
        spy.wait(60)
        res["profile"] = str(out.relative_to(REPO))
    row: dict[str, Any] = {"target": t.name, "rate": rate, "requests": res["requests"],
                           "ok": res["ok"], "ttfb_p50_ms": res["ttfb_ms"].get("p50"),
                           "ttfb_p90_ms": res["ttfb_ms"].get("p90"),
                           "p50_ms": res["latency_ms"].get("p50"),
                           "p99_ms": res["latency_ms"].get("p99"),
                           "load_average_1m": round(os.getloadavg()[0], 2),
                           "profile": res.get("profile")}  # fmt: skip
    if t.service is not None:
        row["settle_s"] = round(wait_idle(t.service, limit=120), 2)
        cpu = t.service.cpu() - cpu0
        row["wall_s"] = round(time.perf_counter() - t0, 2)
        row["cpu_ms_per_stream"] = round(cpu * 1000 / max(1, res["ok"]), 3)
    row["mock_cpu_ms_per_stream"] = round((mock.cpu() - mock0) * 1000 / max(1, res["ok"]), 3)
    if t.service is not None and db is not None:
        time.sleep(0.6)  # the writer's last flush
        after = db_counts(db)
        row["records_written"] = after["requests"] - before["requests"]
        row["bodies_stored"] = after["contents"] - before["contents"]
        row["body_bytes_stored"] = after["content_bytes"] - before["content_bytes"]
        row["dropped_metric"] = metric(t.port, "tollway_log_contents_dropped")
        row["spilled_metric"] = metric(t.port, "tollway_log_contents_spilled")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--base-ref", default="main")
    ap.add_argument("--rates", default="20,100")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--name", default="content-load")
    ap.add_argument("--targets", default="direct,base,tollway,required,off",
                    help="which of direct, floor, base, tollway, required, off to run")  # fmt: skip
    ap.add_argument(
        "--body",
        choices=["session", "recorded"],
        default="session",
        help="replay the long session, or send the one recorded 77 KB request",
    )
    ap.add_argument(
        "--profile",
        default="",
        help="targets to sample with py-spy (bench/.venv-tools) while loaded",
    )
    args = ap.parse_args()
    chosen = args.targets.split(",")
    work = REPO / "bench" / "results" / "raw" / args.name
    work.mkdir(parents=True, exist_ok=True)
    mock = targets.mock(work, 2.0, 60, 400)
    mock.start()
    services = [mock]
    plan = [("tollway", "true", None, {}), ("required", "true", "required", {}),
            ("off", "false", None, {})]  # fmt: skip
    if "base" in chosen:
        plan.insert(
            0, ("base", "true", None, {"PYTHONPATH": str(base_source(args.base_ref, work))})
        )
    plan = [p for p in plan if p[0] in chosen]
    tlist: list[tuple[Target, str | None]] = []
    if "direct" in chosen:
        tlist.append((Target("direct", mock.port, "sk-direct", None), None))
    if "floor" in chosen:
        port = targets.free_port()
        cmd = [sys.executable, "-m", "bench.floor_proxy", "--port", str(port),
               "--upstream-port", str(mock.port)]  # fmt: skip
        floor = Service("floor", cmd, port, "/health", work / "floor.log", cwd=REPO,
                        cpu=targets.GATEWAY_CPU)  # fmt: skip
        floor.start()
        services.append(floor)
        tlist.append((Target("floor", port, "sk-floor", floor), None))
    try:
        for name, content, mode, env in plan:
            db = f"sqlite:///{work / (name + '.db')}"
            for p in work.glob(f"{name}.db*"):
                p.unlink()
            key = create_key(db, env, mode)
            port = targets.free_port()
            cmd = [str(TOLLWAY), "serve", "--config", str(config(work, name, mock.port, content)),
                   "--port", str(port), "--db", db]  # fmt: skip
            svc = Service(name, cmd, port, "/health", work / f"{name}.log", env=env,
                          cpu=targets.GATEWAY_CPU)  # fmt: skip
            svc.start()
            services.append(svc)
            tlist.append((Target(name, port, key, svc), db))
        for t, _db in tlist:  # warm-up
            loadgen(t.port, t.key, 20, 1, 2, args.body == "session")
            if t.service:
                wait_idle(t.service)
        rows = []
        for rate in [float(r) for r in args.rates.split(",")]:
            for t, db in tlist:
                row = run_one(t, db, rate, args, mock)
                log(json.dumps(row))
                rows.append(row)
    finally:
        for s in reversed(services):
            s.stop()
    out = {"args": vars(args), "load_average": os.getloadavg(),
           "session_file": str(SESSION.relative_to(REPO)),
           "git": subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True).stdout.strip(),
           "base": subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.base_ref],
                                  capture_output=True, text=True).stdout.strip(),
           "rows": rows}  # fmt: skip
    path = REPO / "bench" / "results" / f"{args.name}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
