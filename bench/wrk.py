"""Closed-loop load with wrk (Debian's package): a Lua script per shape, JSON out.

wrk keeps ``connections`` requests in flight on one thread and reports latency to the
last byte of each response; the script's ``done`` hook prints the percentiles as JSON.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.payloads import Shape

_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nWRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.mean, latency.max))
end
"""


def _lua_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def write_script(shape: Shape, key: str, directory: Path) -> Path:
    """A Lua script that POSTs ``shape``'s body with its headers and the key."""
    body = directory / f"{shape.name}.body"
    body.write_bytes(shape.body)
    lines = [
        f"local f = assert(io.open({_lua_string(str(body))}, 'rb'))",
        "wrk.body = f:read('*a')",
        "f:close()",
        'wrk.method = "POST"',
    ]
    for name, value in shape.with_key(key):
        lines.append(f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}")
    script = directory / f"{shape.name}.{abs(hash(key)) % 10**8}.lua"
    script.write_text("\n".join(lines) + "\n" + _DONE)
    return script


def available() -> bool:
    return shutil.which("wrk") is not None


def run(
    url: str,
    script: Path,
    connections: int,
    duration_s: float,
    *,
    timeout_s: float = 30.0,
    cpu: int | None = None,
) -> dict[str, Any]:
    """Run wrk for ``duration_s`` with ``connections`` in flight; returns its JSON summary."""
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={int(timeout_s)}s",
        "-s",
        str(script),
        url,
    ]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + timeout_s + 30)
    for line in proc.stdout.splitlines():
        if line.startswith("WRKJSON "):
            out: dict[str, Any] = json.loads(line[len("WRKJSON ") :])
            seconds = out["duration_us"] / 1e6
            out["rps"] = out["requests"] / seconds if seconds else 0.0
            out["errors"] = (
                sum(
                    out[k]
                    for k in ("connect_errors", "read_errors", "write_errors", "status_errors")
                )
                + out["timeouts"]
            )
            return out
    raise RuntimeError(f"wrk printed no summary: {proc.stdout[-500:]} {proc.stderr[-500:]}")
