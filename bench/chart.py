"""Draw the results as one PNG (matplotlib, from bench/.venv-tools).

bench/.venv-tools/bin/python -m bench.chart bench/results/latest.json out.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"direct": "#999999", "tollway": "#1f77b4", "litellm": "#d62728"}
SHAPES = ("openai-small", "anthropic-small", "claude-code-stream")


def _throughput(ax: Any, rows: list[dict[str, Any]], shape: str) -> None:
    for target, colour in COLOURS.items():
        pts = sorted(
            (r["concurrency"], r["rps"])
            for r in rows
            if r["target"] == target and r["shape"] == shape
        )
        if pts:
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                marker="o",
                color=colour,
                label=target,
                linestyle="--" if target == "direct" else "-",
            )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_title(f"{shape}: requests/s (wrk)")
    ax.set_xlabel("concurrency")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)


def _bars(ax: Any, labels: list[str], series: dict[str, list[float]], title: str) -> None:
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [j + i * width for j in range(len(labels))]
        ax.bar(xs, values, width, label=name, color=COLOURS.get(name, None))
        for x, v in zip(xs, values, strict=True):
            if v:
                ax.annotate(f"{v:.3g}", (x, v), ha="center", va="bottom", fontsize=6)
    ax.set_xticks([j + width * (len(series) - 1) / 2 for j in range(len(labels))])
    ax.set_xticklabels(labels, fontsize=6, rotation=15)
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(True, axis="y", alpha=0.3)


def draw(out: dict[str, Any], path: Path) -> None:
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    for ax, shape in zip(axes[0], SHAPES, strict=True):
        _throughput(ax, out["closed"], shape)
    cpu: dict[str, list[float]] = {"tollway": [], "litellm": []}
    labels = []
    for shape in SHAPES:
        for c in (16, 64):
            found = {
                r["target"]: r
                for r in out["closed"]
                if r["shape"] == shape and r["concurrency"] == c
            }
            if "tollway" in found:
                labels.append(f"{shape} c{c}")
                for t in cpu:
                    cpu[t].append(found.get(t, {}).get("cpu_ms_per_req") or 0)
    _bars(axes[1][0], labels, cpu, "gateway CPU ms per request (log)")
    direct = {(r["shape"], r["rate"]): r for r in out["open"] if r["target"] == "direct"}
    over: dict[str, list[float]] = {"tollway p50": [], "tollway p99": [], "litellm p50": []}
    labels = []
    for r in out["open"]:
        if r["target"] != "tollway" or (r["shape"], r["rate"]) not in direct:
            continue
        d = direct[(r["shape"], r["rate"])]
        ll = next(
            (
                x
                for x in out["open"]
                if x["target"] == "litellm" and x["shape"] == r["shape"] and x["rate"] == r["rate"]
            ),
            None,
        )
        labels.append(f"{r['shape']} {r['rate']:g}/s")
        over["tollway p50"].append(max(1e-3, r["p50_ms"] - d["p50_ms"]))
        over["tollway p99"].append(max(1e-3, r["p99_ms"] - d["p99_ms"]))
        over["litellm p50"].append(max(1e-3, ll["p50_ms"] - d["p50_ms"]) if ll else 0)
    _bars(axes[1][1], labels, over, "latency overhead vs direct, ms (fixed rate, log)")
    rss = {"tollway": [], "litellm": []}
    labels = []
    for shape in SHAPES:
        found = {
            r["target"]: r for r in out["closed"] if r["shape"] == shape and r["concurrency"] == 256
        }
        if found:
            labels.append(f"{shape} c256")
            for t in rss:
                rss[t].append(found.get(t, {}).get("peak_rss_mb") or 0)
    _bars(axes[1][2], labels, rss, "peak RSS MB at concurrency 256 (log)")
    machine = out["meta"]["machine"]
    fig.suptitle(
        f"Tollway vs LiteLLM proxy, one worker each, same mock upstream — "
        f"{machine['nproc']} x {machine['cpu_model']}, {out['meta']['started']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    draw(json.loads(src.read_text()), dst)
    print(f"wrote {dst}")


if __name__ == "__main__":
    main()
