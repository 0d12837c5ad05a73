"""The Tollway app for servers other than ``tollway serve``: granian, uvicorn --workers N.

    TOLLWAY_BENCH_CONFIG=cfg.yaml TOLLWAY_BENCH_DB=sqlite:///x.db \\
        granian --interface asgi --factory bench.asgi_app:build ...

Builds exactly what ``tollway serve`` hands to uvicorn (``tollway.cli.serve.run``),
including ``gc.collect(); gc.freeze()`` once started (``TOLLWAY_BENCH_GC_FREEZE=0``: without).
"""

from __future__ import annotations

import atexit
import gc
import os
import secrets
import sys
import threading
import time

from tollway.app import TollwayApp, build_app
from tollway.config import load_config
from tollway.services import Services
from tollway.storage import open_store


def build() -> TollwayApp:
    config = load_config(os.environ["TOLLWAY_BENCH_CONFIG"])
    services = Services(config, open_store(os.environ["TOLLWAY_BENCH_DB"]))
    services.admin_token = "twadmin-bench-" + secrets.token_hex(12)
    services.freeze_gc = os.environ.get("TOLLWAY_BENCH_GC_FREEZE", "1") != "0"  # as serve does
    return build_app(services)


def build_gc_logged() -> TollwayApp:
    """``build()``, plus every garbage-collector pause timed and written at exit.

    A diagnostic for latency tails: ``uvicorn --factory bench.asgi_app:build_gc_logged``;
    the summary goes to stderr every 5 s (generation, count, total and longest pause).
    """
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    started: list[float] = [0.0]
    long: list[str] = []  # pauses over 5 ms: when (s since build) and how long
    t0 = time.perf_counter()

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            ms = (time.perf_counter() - started[0]) * 1000
            pauses[info["generation"]].append(ms)
            if ms > 5:
                long.append(f"gen{info['generation']} {ms:.1f} ms at {started[0] - t0:.1f} s")

    def report() -> None:
        for gen, times in pauses.items():
            if times:
                times.sort()
                print(
                    f"gc gen{gen}: {len(times)} pauses, total {sum(times):.1f} ms, "
                    f"p99 {times[int(len(times) * 0.99)]:.2f} ms, max {times[-1]:.2f} ms, "
                    f"tracked objects now {len(gc.get_objects())}",
                    file=sys.stderr,
                    flush=True,
                )
        print("gc pauses over 5 ms: " + ("; ".join(long) or "none"), file=sys.stderr, flush=True)

    def every(seconds: float) -> None:
        while True:
            time.sleep(seconds)
            report()

    gc.callbacks.append(watch)
    atexit.register(report)
    threading.Thread(target=every, args=(5.0,), daemon=True).start()
    return build()
