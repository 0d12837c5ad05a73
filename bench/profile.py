"""Profile the gateway under load with py-spy: collapsed stacks, their summary, and an SVG.

Called by ``bench.run``; py-spy comes from bench/.venv-tools. ``record`` samples the
Python stacks (``--format raw``, analysed by ``bench.stacks``), then a second pass with
``--native`` draws the flame graph, so time inside zlib, sqlite or the kernel shows too.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any

from bench.payloads import Shape
from bench.scenarios import loadgen
from bench.stacks import analyse
from bench.targets import TOOLS, Target


def _py_spy(pid: int, seconds: float, out: Path, fmt: str, native: bool) -> None:
    cmd = [
        str(TOOLS / "py-spy"),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(int(seconds)),
        "--rate",
        "250",
        "--format",
        fmt,
        "-o",
        str(out),
    ]
    if native:
        cmd.append("--native")
    subprocess.run(cmd, capture_output=True, timeout=seconds + 60, check=True)


def profile(
    target: Target, shape: Shape, concurrency: int, seconds: float, out_dir: Path
) -> dict[str, Any]:
    """Load ``target`` at ``concurrency`` and sample it twice; returns the stack summary."""
    assert target.service is not None
    raw = out_dir / f"profile-{shape.name}.txt"
    svg = out_dir / f"profile-{shape.name}.svg"
    result: dict[str, Any] = {}

    def load() -> None:
        result["load"] = loadgen(
            target.port, shape, target.key, concurrency=concurrency, duration=2 * seconds + 4
        )

    thread = threading.Thread(target=load)
    thread.start()
    try:
        _py_spy(target.service.pid, seconds, raw, "raw", native=False)
        _py_spy(target.service.pid, seconds, svg, "flamegraph", native=True)
    finally:
        thread.join()
    summary = analyse(raw.read_text(), top=40)
    summary["raw"] = raw.name
    summary["svg"] = svg.name
    summary["shape"] = shape.name
    summary["concurrency"] = concurrency
    return summary
