"""What tollway.connections costs per request: uvicorn's httptools protocol, plain vs guarded.

A trivial ASGI app (a 2-byte 200) under uvicorn + uvloop, once with ``HttpToolsProtocol``
and once with ``GuardedProtocol`` (header deadline, connection cap, keep-alive caps),
interleaved ``--repeats`` times. The server is pinned to CPU 0 and wrk to CPU 1; CPU per
request is Δ(utime+stime) of the server over the run ÷ requests wrk completed. The app is
trivial so that the protocol is most of the work: this is the worst case for the guard.

    bench/.venv-tools/bin/python -m bench.micro_protocol [--repeats 3] [--duration 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": b"{}"})  # fmt: skip


def serve(variant: str, port: int) -> None:
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from tollway.connections import ServerLimits, guarded_protocol

    http = HttpToolsProtocol if variant == "plain" else guarded_protocol(ServerLimits())
    uvicorn.run(_app, host="127.0.0.1", port=port, loop="uvloop", http=http,  # type: ignore[arg-type]
                access_log=False, log_level="warning")  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and os.cpu_count() else []


def _wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the server did not start within 20 s")


def run_one(variant: str, duration: int, connections: int) -> dict[str, Any]:
    port = _free_port()
    cmd = [*_pin(0), sys.executable, "-m", "bench.micro_protocol", "--serve", variant,
           "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd)
    try:
        _wait_ready(port, proc)
        wrk = [*_pin(1), "wrk", "-t1", f"-c{connections}", f"-d{int(duration)}s",
               f"http://127.0.0.1:{port}/"]  # fmt: skip
        subprocess.run([*wrk[:-2], "-d1s", wrk[-1]], capture_output=True, check=True)  # warm-up
        before = _cpu_s(proc.pid)
        out = subprocess.run(wrk, capture_output=True, text=True, check=True).stdout
        cpu = _cpu_s(proc.pid) - before
    finally:
        proc.terminate()
        proc.wait(10)
    found = re.search(r"(\d+) requests in", out)
    requests = int(found.group(1)) if found else 0
    return {
        "variant": variant,
        "requests": requests,
        "rps": round(requests / duration, 1),
        "cpu_us_per_req": round(cpu / requests * 1e6, 2) if requests else None,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--serve", choices=["plain", "guarded"])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--connections", type=int, default=64)
    args = p.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    rows = []
    for i in range(args.repeats):
        for variant in ("plain", "guarded") if i % 2 == 0 else ("guarded", "plain"):
            row = run_one(variant, args.duration, args.connections)
            print(json.dumps(row), flush=True)
            rows.append(row)
    for variant in ("plain", "guarded"):
        cpu = sorted(r["cpu_us_per_req"] for r in rows if r["variant"] == variant)
        print(f"{variant}: cpu µs/request {cpu} (median {cpu[len(cpu) // 2]})")


if __name__ == "__main__":
    main()
