"""The table of a ``bench.content_load`` run, with overheads and ratios from that run.

    .venv/bin/python -m bench.content_report bench/results/content-load.json

Overheads are a target's figure minus ``direct``'s at the same rate; "content's CPU" is a
target's CPU per stream minus ``off``'s (the same tree with content logging off), and
its ratio to ``off`` is the share content adds, GIL and writer thread included. "mock
CPU" is what the upstream spent per stream in the same row (one hop of the stream), and
"× floor" a target's CPU per stream over ``floor``'s (bench.floor_proxy: bytes forwarded
and nothing else) at the same rate.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _f(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def table(doc: dict[str, Any]) -> str:
    rows: list[dict[str, Any]] = doc["rows"]
    out = [
        "| rate | target | stored / streams | dropped | spilled | bytes per body | CPU ms per "
        "stream | mock CPU ms | × floor | content's CPU ms (× off) | TTFB p50 / p90 ms | "
        "TTFB overhead p50 ms | latency p50 / p99 ms | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rate in sorted({r["rate"] for r in rows}):
        at = {r["target"]: r for r in rows if r["rate"] == rate}
        direct, off, floor = at.get("direct"), at.get("off"), at.get("floor")
        for name, r in at.items():
            cpu = r.get("cpu_ms_per_stream")
            share = "–"
            vs_floor = "–"
            if cpu is not None and floor is not None and floor.get("cpu_ms_per_stream"):
                vs_floor = f"{cpu / floor['cpu_ms_per_stream']:.2f}×"
            if cpu is not None and off is not None and name not in ("off", "direct", "floor"):
                extra = cpu - off["cpu_ms_per_stream"]
                share = f"{extra:.2f} ({cpu / off['cpu_ms_per_stream']:.2f}×)"
            over = None
            if direct is not None and name != "direct":
                over = r["ttfb_p50_ms"] - direct["ttfb_p50_ms"]
            stored = r.get("bodies_stored")
            per_body = r["body_bytes_stored"] / stored / 1000 if stored else None
            out.append(
                f"| {rate:g}/s | {name} | {_f(stored, 0) if 'bodies_stored' in r else '–'} / "
                f"{r['ok']} | {_f(r.get('dropped_metric'), 0)} | {_f(r.get('spilled_metric'), 0)} "
                f"| {_f(per_body, 1)} kB | {_f(cpu)} | {_f(r.get('mock_cpu_ms_per_stream'))} "
                f"| {vs_floor} | {share} | {_f(r['ttfb_p50_ms'])} / "
                f"{_f(r['ttfb_p90_ms'])} | {_f(over)} | {_f(r['p50_ms'], 1)} / "
                f"{_f(r['p99_ms'], 1)} | {_f(r.get('load_average_1m'))} |"
            )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("result", type=Path)
    args = ap.parse_args()
    print(table(json.loads(args.result.read_text())))


if __name__ == "__main__":
    main()
