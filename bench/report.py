"""Headline figures and Markdown tables from a results JSON.

python -m bench.report bench/results/latest.json     # prints the tables
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

SMALL = ("openai-small", "anthropic-small")
STREAM = "claude-code-stream"


def _index(rows: list[dict[str, Any]], key: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {(r["target"], r["shape"], r[key]): r for r in rows}


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 3)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if not a or not b else round(a / b, 2)


def summary(out: dict[str, Any]) -> dict[str, Any]:
    closed, opened = _index(out["closed"], "concurrency"), _index(out["open"], "rate")
    s: dict[str, Any] = {
        "cpu_ms_per_req": {},
        "overhead_ms": {},
        "ttfb_overhead_ms": {},
        "throughput_ratio": {},
        "cpu_ratio_litellm_over_tollway": {},
    }
    for (target, shape, c), row in closed.items():
        if target != "tollway":
            continue
        direct, ll = closed.get(("direct", shape, c)), closed.get(("litellm", shape, c))
        label = f"{shape}@c{c}"
        s["cpu_ms_per_req"][label] = {
            "tollway": row.get("cpu_ms_per_req"),
            "litellm": ll.get("cpu_ms_per_req") if ll else None,
        }
        if ll:
            s["throughput_ratio"][label] = _ratio(row["rps"], ll["rps"])
            s["cpu_ratio_litellm_over_tollway"][label] = _ratio(
                ll.get("cpu_ms_per_req"), row.get("cpu_ms_per_req")
            )
        if direct:
            s["overhead_ms"][f"closed {label} p50"] = _sub(row["p50_ms"], direct["p50_ms"])
    for (target, shape, rate), row in opened.items():
        direct = opened.get(("direct", shape, rate))
        if target == "direct" or direct is None:
            continue
        label = f"{shape}@{rate:g}rps"
        s["overhead_ms"].setdefault(label, {})[target] = {
            "p50": _sub(row["p50_ms"], direct["p50_ms"]),
            "p99": _sub(row["p99_ms"], direct["p99_ms"]),
            "ok": f"{row['ok']}/{row['requests']}",
        }
        if shape == STREAM:
            s["ttfb_overhead_ms"].setdefault(label, {})[target] = {
                "p50": _sub(row["ttfb_p50_ms"], direct["ttfb_p50_ms"]),
                "p99": _sub(row["ttfb_p99_ms"], direct["ttfb_p99_ms"]),
            }
    small_cpu = [
        r["cpu_ms_per_req"]
        for (t, sh, _), r in closed.items()
        if t == "tollway" and sh in SMALL and r.get("cpu_ms_per_req")
    ]
    small_ll = [
        r["cpu_ms_per_req"]
        for (t, sh, _), r in closed.items()
        if t == "litellm" and sh in SMALL and r.get("cpu_ms_per_req")
    ]
    s["cpu_ms_per_nonstream_req_median"] = {
        "tollway": round(statistics.median(small_cpu), 3) if small_cpu else None,
        "litellm": round(statistics.median(small_ll), 3) if small_ll else None,
    }
    rss = {t: r.get("peak_rss_mb") for (t, sh, c), r in closed.items() if sh == STREAM and c == 256}
    s["peak_rss_mb_256_streams"] = rss
    s["startup_s_median"] = {k: round(statistics.median(v), 3) for k, v in out["startup"].items()}
    return s


def _f(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_f(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown(out: dict[str, Any]) -> str:
    closed, opened = _index(out["closed"], "concurrency"), _index(out["open"], "rate")
    parts = ["## Closed loop (wrk): throughput, latency to last byte, CPU per request\n"]
    rows = []
    for (target, shape, c), tw in closed.items():
        if target != "tollway":
            continue
        d, ll = closed.get(("direct", shape, c), {}), closed.get(("litellm", shape, c), {})
        rows.append(
            [
                shape,
                c,
                d.get("rps"),
                tw["rps"],
                ll.get("rps"),
                f"{_f(tw['p50_ms'])} / {_f(tw['p99_ms'])}",
                f"{_f(ll.get('p50_ms'))} / {_f(ll.get('p99_ms'))}",
                _sub(tw["p50_ms"], d.get("p50_ms")),
                tw.get("cpu_ms_per_req"),
                ll.get("cpu_ms_per_req"),
                _ratio(ll.get("cpu_ms_per_req"), tw.get("cpu_ms_per_req")),
                tw.get("peak_rss_mb"),
                ll.get("peak_rss_mb"),
                d.get("mock_cpu_util"),
                tw["errors"],
                ll.get("errors"),
            ]
        )
    parts.append(
        _table(
            [
                "shape",
                "conc",
                "direct rps",
                "Tollway rps",
                "LiteLLM rps",
                "Tollway p50/p99 ms",
                "LiteLLM p50/p99 ms",
                "Tollway p50 overhead ms",
                "Tollway CPU ms/req",
                "LiteLLM CPU ms/req",
                "LiteLLM/Tollway CPU",
                "Tollway peak RSS MB",
                "LiteLLM peak RSS MB",
                "mock CPU (direct run)",
                "Tollway errors",
                "LiteLLM errors",
            ],
            rows,
        )
    )
    parts.append("\n## Open loop (fixed rate): latency and time to first byte from the due time\n")
    rows = []
    for (target, shape, rate), tw in opened.items():
        if target != "tollway":
            continue
        d, ll = opened.get(("direct", shape, rate), {}), opened.get(("litellm", shape, rate), {})
        rows.append(
            [
                shape,
                rate,
                f"{_f(d.get('p50_ms'))} / {_f(d.get('p99_ms'))}",
                f"{_f(tw['p50_ms'])} / {_f(tw['p99_ms'])}",
                f"{_f(_sub(tw['p50_ms'], d.get('p50_ms')))} / "
                f"{_f(_sub(tw['p99_ms'], d.get('p99_ms')))}",
                f"{_f(_sub(tw['ttfb_p50_ms'], d.get('ttfb_p50_ms')))}" if shape == STREAM else "–",
                tw.get("cpu_ms_per_req"),
                f"{tw['ok']}/{tw['requests']}",
                f"{_f(ll.get('p50_ms'))} / {_f(ll.get('p99_ms'))}",
                f"{ll.get('ok')}/{ll.get('requests')}" if ll else "–",
                ll.get("cpu_ms_per_req"),
            ]
        )
    parts.append(
        _table(
            [
                "shape",
                "rate/s",
                "direct p50/p99 ms",
                "Tollway p50/p99 ms",
                "Tollway overhead p50/p99 ms",
                "Tollway TTFB overhead p50 ms",
                "Tollway CPU ms/req",
                "Tollway ok",
                "LiteLLM p50/p99 ms",
                "LiteLLM ok",
                "LiteLLM CPU ms/req",
            ],
            rows,
        )
    )
    parts.append("\n## Start-up, memory, idle CPU\n")
    names = dict.fromkeys([*out["startup"], *out["rss_hwm_mb"]])
    parts.append(
        _table(
            ["process", "start-up s (each run)", "VmHWM MB", "idle CPU (cores)"],
            [
                [
                    name,
                    ", ".join(_f(x) for x in out["startup"].get(name, [])) or "–",
                    out["rss_hwm_mb"].get(name),
                    out.get("idle_cpu_util", {}).get(name),
                ]
                for name in names
            ],
        )
    )
    for section, title in (("servers", "HTTP server"), ("workers", "Worker processes")):
        if out.get(section):
            parts.append(f"\n## {title}: the Tollway app\n")
            parts.append(
                _table(
                    [
                        "server",
                        "load",
                        "rps",
                        "p50 / p99 ms",
                        "CPU ms/req",
                        "peak RSS MB",
                        "start-up s",
                    ],
                    [
                        [
                            r["target"],
                            f"{r['shape']} "
                            + (
                                f"c{r['concurrency']}"
                                if r["kind"] == "closed"
                                else f"{r['rate']:g}/s"
                            ),
                            r["rps"],
                            f"{_f(r['p50_ms'])} / {_f(r['p99_ms'])}",
                            r.get("cpu_ms_per_req"),
                            r.get("peak_rss_mb"),
                            r.get("startup_s"),
                        ]
                        for r in out[section]
                    ],
                )
            )
    if "micro_json" in out:
        parts.append("\n## JSON on the 77 KB body (µs per operation)\n")
        parts.append(
            _table(["operation", "µs"], [[k, v] for k, v in out["micro_json"]["us_per_op"].items()])
        )
    if "micro_client" in out:
        mc = out["micro_client"]
        parts.append(f"\n## Upstream client, {mc['concurrency']} in flight (client CPU)\n")
        parts.append(
            _table(
                ["client", "shape", "CPU ms/req", "rps"],
                [
                    [lib, shape, v["cpu_ms_per_req"], v["rps"]]
                    for lib in ("aiohttp", "httpx")
                    for shape, v in mc[lib].items()
                ],
            )
        )
    for prof in out.get("profile", []):
        parts.append(
            f"\n## Profile: {prof['shape']} c{prof['concurrency']} ({prof['samples']} samples)\n"
        )
        parts.append(
            _table(
                ["inclusive %", "frame"], [[pct, name] for name, pct in prof["inclusive_pct"][:40]]
            )
        )
    return "\n".join(parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("results", type=Path)
    args = p.parse_args()
    out = json.loads(args.results.read_text())
    print(markdown(out))
    print(json.dumps(summary(out), indent=1))


if __name__ == "__main__":
    main()
