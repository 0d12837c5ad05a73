"""``make bench``: Tollway and LiteLLM's proxy side by side on one mock upstream.

    python -m bench.run [--quick] [--only closed,open,...] [--name NAME]

Sections, in order (each bounded in time; ``--quick`` shortens every one):
  closed   wrk at concurrency 1/16/64/256 per request shape, direct / tollway / litellm
  open     the open-loop generator at fixed rates, same three targets
  startup  spawn-to-ready times, repeated
  servers  the Tollway app under granian vs uvicorn (both pinned to one core)
  workers  uvicorn with 1 vs 2 worker processes, unpinned
  micro    JSON libraries on the 77 KB body; aiohttp vs httpx as the upstream client
  profile  py-spy on Tollway under load
Writes bench/results/NAME.json (NAME: latest, or quick), NAME.md (tables) and NAME.png.
Scratch files (databases, logs, wrk scripts) go to bench/results/raw/, which git ignores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import report, scenarios, targets, wrk
from bench.payloads import REPO, shapes
from bench.procs import Service
from bench.profile import profile
from bench.targets import TOOLS, Target

RESULTS = REPO / "bench" / "results"
SECTIONS = ("closed", "open", "startup", "servers", "workers", "micro", "profile")


@dataclass
class Plan:
    quick: bool
    duration: float = 8.0
    rate_duration: float = 10.0
    drain: float = 10.0
    concurrency: list[int] = field(default_factory=lambda: [1, 16, 64, 256])
    small_rates: list[float] = field(default_factory=lambda: [50, 500, 1000])
    stream_rates: list[float] = field(default_factory=lambda: [20, 100])
    startup_repeats: int = 3
    profile_s: float = 10.0
    event_gap_ms: float = 2.0

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if not quick:
            return cls(quick=False)
        return cls(
            quick=True,
            duration=2,
            rate_duration=3,
            drain=5,
            concurrency=[1, 64, 256],
            small_rates=[500],
            stream_rates=[20],
            startup_repeats=1,
            profile_s=3,
        )


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    cpu = ""
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as f:
        mem_kb = int(f.readline().split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "ram_gb": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO)
        return done.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty_src": bool(git("status", "--short", "src"))}


class Bench:
    def __init__(self, plan: Plan, work: Path) -> None:
        self.plan = plan
        self.work = work
        self.shapes = shapes()
        self.out: dict[str, Any] = {
            "closed": [],
            "open": [],
            "startup": {},
            "servers": [],
            "workers": [],
            "rss_hwm_mb": {},
        }
        self.mock = targets.mock(work, plan.event_gap_ms, 60, 400)
        self.db = f"sqlite:///{work / 'tollway.db'}"
        self.config: Path | None = None
        self.services: list[Service] = []
        self.targets: list[Target] = []

    # -- set-up ------------------------------------------------------------------------
    def start(self, with_litellm: bool) -> None:
        self.mock.start()
        self.services.append(self.mock)
        self.config = targets.tollway_config(self.work, self.mock.port)
        key = targets.create_key(self.db)
        tw = targets.tollway(self.work, self.config, self.db)
        self.out["startup"]["tollway"] = [round(tw.start(), 3)]
        self.services.append(tw)
        self.targets = [
            Target("direct", self.mock.port, "sk-direct", None),
            Target("tollway", tw.port, key, tw),
        ]
        if with_litellm:
            ll = targets.litellm(self.work, targets.litellm_config(self.work, self.mock.port))
            self.out["startup"]["litellm"] = [round(ll.start(), 3)]
            self.services.append(ll)
            self.targets.append(Target("litellm", ll.port, "sk-bench", ll))
        for t in self.targets:  # warm-up: connections, lazy imports, caches
            for shape in self.shapes.values():
                scenarios.loadgen(t.port, shape, t.key, concurrency=4, duration=1)
        self.out["idle_cpu_util"] = self._idle_cpu()

    def _idle_cpu(self) -> dict[str, float]:
        before = {s.name: s.cpu() for s in self.services}
        time.sleep(2)
        return {s.name: round((s.cpu() - before[s.name]) / 2, 4) for s in self.services}

    def target(self, name: str) -> Target:
        return next(t for t in self.targets if t.name == name)

    def _note_hwm(self, s: Service) -> None:
        hwm = self.out["rss_hwm_mb"]
        hwm[s.name] = max(hwm.get(s.name, 0), round(s.hwm_kb() / 1024, 1))

    def stop(self) -> None:
        for s in reversed(self.services):
            self._note_hwm(s)
            s.stop()

    # -- sections ----------------------------------------------------------------------
    def closed(self) -> None:
        for shape in self.shapes.values():
            for c in self.plan.concurrency:
                for t in self.targets:
                    row = scenarios.closed(t, self.mock, shape, c, self.plan.duration, self.work)
                    log(
                        f"closed {shape.name} c={c} {t.name}: {row['rps']} rps, "
                        f"p50 {row['p50_ms']:.2f} ms, errors {row['errors']}"
                    )
                    self.out["closed"].append(row)

    def open(self) -> None:
        for shape in self.shapes.values():
            rates = self.plan.stream_rates if shape.stream else self.plan.small_rates
            for rate in rates:
                for t in self.targets:
                    row = scenarios.open_rate(
                        t, self.mock, shape, rate, self.plan.rate_duration, self.plan.drain
                    )
                    log(
                        f"open {shape.name} {rate}/s {t.name}: p50 {row['p50_ms']} ms, "
                        f"p99 {row['p99_ms']} ms, ok {row['ok']}/{row['requests']}"
                    )
                    self.out["open"].append(row)

    def startup(self) -> None:
        for s in self.services[1:]:
            for _ in range(self.plan.startup_repeats - 1):
                self._note_hwm(s)  # a restart resets VmHWM
                s.stop()
                self.out["startup"][s.name].append(round(s.start(), 3))
                log(f"startup {s.name}: {self.out['startup'][s.name][-1]} s")

    def _compare(self, section: str, variants: list[tuple[str, str, int, bool]]) -> None:
        """The same three loads on each (name, server, workers, pinned) variant in turn.

        Each variant gets a fresh database and key, so none pays for the rows the
        others (or the main runs) wrote.
        """
        assert self.config is not None
        small, stream = self.shapes["openai-small"], self.shapes["claude-code-stream"]
        for name, server, workers, pinned in variants:
            db = f"sqlite:///{self.work / name}.db"
            key = targets.create_key(db)
            s = targets.tollway_factory(self.work, self.config, db, name, server, workers, pinned)
            startup = s.start()
            t = Target(s.name, s.port, key, s)
            for shape in (small, stream):
                scenarios.loadgen(t.port, shape, key, concurrency=4, duration=1)
            rows = [
                scenarios.closed(t, self.mock, small, 64, self.plan.duration, self.work),
                scenarios.closed(t, self.mock, stream, 64, self.plan.duration, self.work),
                scenarios.open_rate(
                    t, self.mock, small, 500, self.plan.rate_duration, self.plan.drain
                ),
            ]
            for row in rows:
                row["startup_s"] = round(startup, 3)
                log(
                    f"{section} {s.name} {row['shape']} {row['kind']}: {row['rps']} rps, "
                    f"p50 {row['p50_ms']:.2f} ms, cpu {row.get('cpu_ms_per_req')} ms/req"
                )
            self.out[section] += rows
            self._note_hwm(s)
            s.stop()

    def servers(self) -> None:
        self._compare(
            "servers",
            [("uvicorn-1w", "uvicorn", 1, True), ("granian-1w", "granian", 1, True)],
        )

    def workers(self) -> None:
        self._compare(
            "workers",
            [
                ("uvicorn-1w-unpinned", "uvicorn", 1, False),
                ("uvicorn-2w-unpinned", "uvicorn", 2, False),
            ],
        )

    def micro(self) -> None:
        py = str(TOOLS / "python")
        quick = ["--quick"] if self.plan.quick else []
        pin = ["taskset", "-c", str(targets.GATEWAY_CPU)]
        for name, args in (("micro_json", []), ("micro_client", ["--port", str(self.mock.port)])):
            done = subprocess.run(
                [*pin, py, "-m", f"bench.{name}", *args, *quick],
                capture_output=True,
                text=True,
                cwd=REPO,
                timeout=600,
            )
            if done.returncode != 0:
                raise RuntimeError(f"{name} failed: {done.stderr[-800:]}")
            self.out[name] = json.loads(done.stdout)
            log(f"{name}: done")

    def profile(self) -> None:
        tw = self.target("tollway")
        self.out["profile"] = [
            profile(tw, self.shapes[name], 16, self.plan.profile_s, self.work)
            for name in ("openai-small", "claude-code-stream")
        ]
        for p in self.out["profile"]:
            for src in (p["raw"], p["svg"]):
                (RESULTS / src).write_bytes((self.work / src).read_bytes())
        log("profile: done")


def _save(out: dict[str, Any], name: str, partial: bool) -> Path:
    out["meta"]["partial"] = partial
    out["summary"] = report.summary(out)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(out, indent=1, default=str) + "\n")
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short runs: a smoke test, not figures")
    p.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    p.add_argument("--name", help="results name (default: latest, or quick with --quick)")
    p.add_argument("--no-litellm", action="store_true", help="skip LiteLLM (not installed)")
    args = p.parse_args()
    if not wrk.available():
        raise SystemExit("wrk is missing: apt-get install -y wrk (make bench does this)")
    plan = Plan.make(args.quick)
    name = args.name or ("quick" if args.quick else "latest")
    work = RESULTS / "raw" / time.strftime("%Y%m%d-%H%M%S")
    work.mkdir(parents=True, exist_ok=True)
    with_litellm = not args.no_litellm and targets.LITELLM.exists()
    bench = Bench(plan, work)
    only = [s for s in SECTIONS if s in args.only.split(",")]
    t0 = time.time()
    bench.out["meta"] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": plan.quick,
        "plan": plan.__dict__,
        "machine": machine(),
        "git": git_state(),
        "command": "python -m bench.run " + " ".join(sys.argv[1:]),
        "versions": {
            "tollway": targets.version_of(
                REPO / ".venv" / "bin" / "python",
                "tollway",
                "uvicorn",
                "uvloop",
                "httptools",
                "msgspec",
                "prometheus-client",
            ),
            "litellm": targets.version_of(
                targets.LITELLM.parent / "python",
                "litellm",
                "uvicorn",
                "uvloop",
                "fastapi",
                "httpx",
                "aiohttp",
            ),
            "tools": targets.version_of(
                TOOLS / "python", "granian", "py-spy", "orjson", "httpx", "matplotlib"
            ),
            "wrk": subprocess.run(
                ["wrk", "-v"], capture_output=True, text=True
            ).stdout.splitlines()[0:1],
        },
    }
    try:
        bench.start(with_litellm)
        steps: dict[str, Callable[[], None]] = {s: getattr(bench, s) for s in SECTIONS}
        for section in only:
            log(f"section {section} ({time.time() - t0:.0f} s so far)")
            steps[section]()
            _save(bench.out, name, partial=True)  # a later failure keeps what was measured
    finally:
        bench.stop()
    bench.out["meta"]["elapsed_s"] = round(time.time() - t0, 1)
    path = _save(bench.out, name, partial=False)
    (RESULTS / f"{name}.md").write_text(report.markdown(bench.out))
    log(f"wrote {path} and {name}.md in {bench.out['meta']['elapsed_s']} s")
    chart = subprocess.run(
        [str(TOOLS / "python"), "-m", "bench.chart", str(path), str(RESULTS / f"{name}.png")],
        cwd=REPO,
    )
    if chart.returncode != 0:
        log("the chart was not drawn (is bench/.venv-tools installed? make bench-venv)")
    print(json.dumps(bench.out["summary"], indent=1))


if __name__ == "__main__":
    main()
