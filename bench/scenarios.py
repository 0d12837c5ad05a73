"""One measured run: load on a target, with the target's and the mock's CPU and memory.

``closed`` drives wrk with N connections for a duration; ``open_rate`` drives the Python
open-loop generator at a fixed rate. Both return a flat dict that lands in the results.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import wrk
from bench.payloads import REPO, Shape
from bench.procs import PeakRSS, Service, wait_idle
from bench.targets import LOAD_CPU, Target


def _measure_start(target: Target, mock: Service) -> tuple[float, float, float]:
    cpu = target.service.cpu() if target.service else 0.0
    return cpu, mock.cpu(), time.perf_counter()


def _measure_end(
    target: Target, mock: Service, start: tuple[float, float, float], requests: int
) -> dict[str, Any]:
    cpu0, mock0, t0 = start
    wall = time.perf_counter() - t0
    out: dict[str, Any] = {"wall_s": round(wall, 3)}
    mock_cpu = mock.cpu() - mock0
    out["mock_cpu_util"] = round(mock_cpu / wall, 3) if wall else None
    out["mock_cpu_ms_per_req"] = round(mock_cpu * 1000 / requests, 4) if requests else None
    if target.service is not None:
        cpu = target.service.cpu() - cpu0
        out["cpu_s"] = round(cpu, 3)
        out["cpu_util"] = round(cpu / wall, 3) if wall else None
        out["cpu_ms_per_req"] = round(cpu * 1000 / requests, 4) if requests else None
        out["cpu_s_per_1000"] = round(cpu * 1000 / requests, 3) if requests else None
    return out


def closed(
    target: Target, mock: Service, shape: Shape, connections: int, duration: float, work: Path
) -> dict[str, Any]:
    """wrk with ``connections`` in flight; latency to the last byte."""
    script = wrk.write_script(shape, target.key, work)
    url = f"http://127.0.0.1:{target.port}{shape.path}"
    rss = PeakRSS(target.service) if target.service else None
    start = _measure_start(target, mock)
    if rss:
        rss.__enter__()
    try:
        res = wrk.run(url, script, connections, duration, cpu=LOAD_CPU, timeout_s=30)
    finally:
        if rss:
            rss.__exit__()
    row: dict[str, Any] = {
        "kind": "closed",
        "target": target.name,
        "shape": shape.name,
        "concurrency": connections,
        "tool": "wrk",
        "requests": res["requests"],
        "errors": res["errors"],
        "status_errors": res["status_errors"],
        "timeouts": res["timeouts"],
        "rps": round(res["rps"], 1),
        "p50_ms": res["p50_us"] / 1000,
        "p90_ms": res["p90_us"] / 1000,
        "p99_ms": res["p99_us"] / 1000,
        "mean_ms": round(res["mean_us"] / 1000, 3),
    }
    row.update(_measure_end(target, mock, start, res["requests"]))
    if rss:
        row["peak_rss_mb"] = round(rss.peak / 1024, 1)
    if target.service:
        row["settle_s"] = round(wait_idle(target.service), 2)
    return row


def loadgen(
    port: int,
    shape: Shape,
    key: str,
    *,
    rate: float = 0,
    concurrency: int = 1,
    duration: float,
    drain: float = 15.0,
    max_conns: int = 1024,
) -> dict[str, Any]:
    cmd = [
        "taskset",
        "-c",
        str(LOAD_CPU),
        sys.executable,
        "-m",
        "bench.loadgen",
        "--port",
        str(port),
        "--shape",
        shape.name,
        "--key",
        key,
        "--duration",
        str(duration),
        "--drain",
        str(drain),
        "--max-conns",
        str(max_conns),
    ]
    cmd += ["--rate", str(rate)] if rate else ["--concurrency", str(concurrency)]
    done = subprocess.run(
        cmd, capture_output=True, text=True, cwd=REPO, timeout=duration + drain + 60
    )
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed: {done.stderr[-800:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def open_rate(
    target: Target, mock: Service, shape: Shape, rate: float, duration: float, drain: float
) -> dict[str, Any]:
    """The open-loop generator at ``rate`` requests/s; latency and TTFB from the due time."""
    rss = PeakRSS(target.service) if target.service else None
    start = _measure_start(target, mock)
    if rss:
        rss.__enter__()
    try:
        res = loadgen(target.port, shape, target.key, rate=rate, duration=duration, drain=drain)
    finally:
        if rss:
            rss.__exit__()
    lat, ttfb = res["latency_ms"], res["ttfb_ms"]
    row: dict[str, Any] = {
        "kind": "open",
        "target": target.name,
        "shape": shape.name,
        "rate": rate,
        "tool": "bench.loadgen",
        "requests": res["requests"],
        "ok": res["ok"],
        "errors": res["non_2xx"] + res["failed"] + res["unfinished"],
        "unfinished": res["unfinished"],
        "rps": round(res["rps"], 1),
        "connections": res["connections"],
        "p50_ms": lat.get("p50"),
        "p90_ms": lat.get("p90"),
        "p99_ms": lat.get("p99"),
        "p999_ms": lat.get("p999"),
        "ttfb_p50_ms": ttfb.get("p50"),
        "ttfb_p90_ms": ttfb.get("p90"),
        "ttfb_p99_ms": ttfb.get("p99"),
        "loadgen_cpu_ms_per_req": round(res["loadgen_cpu_ms_per_req"], 4),
    }
    row.update(_measure_end(target, mock, start, res["ok"]))
    if rss:
        row["peak_rss_mb"] = round(rss.peak / 1024, 1)
    if target.service:
        row["settle_s"] = round(wait_idle(target.service), 2)
    return row
