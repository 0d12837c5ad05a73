"""Watchers for hostile-load tests: ``/health`` probed, and the gateway's memory sampled.

    with HealthWatch(server.base_url) as health, RssWatch(server.process.pid) as rss:
        ...  # the flood
    health.assert_all_ok()
    assert rss.peak_mb < 300

Every probe has a timeout, and the watchers stop when the ``with`` block ends, so a test
using them is bounded in time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Probe:
    at: float
    status: int | None  # None: no answer (the error says why)
    seconds: float
    error: str | None = None


@dataclass
class HealthWatch:
    """Probes ``GET /health`` on a fresh connection every ``interval`` s, in a thread."""

    base_url: str
    interval: float = 0.25
    timeout: float = 3.0
    probes: list[Probe] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> HealthWatch:
        self._thread = threading.Thread(target=self._run, name="health-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(self.timeout + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                # A new connection each time: a flood must not starve new clients.
                with httpx.Client(timeout=self.timeout) as client:
                    resp = client.get(f"{self.base_url}/health")
                self.probes.append(Probe(t, resp.status_code, time.monotonic() - t))
            except httpx.HTTPError as exc:
                self.probes.append(Probe(t, None, time.monotonic() - t, repr(exc)))
            self._stop.wait(self.interval)

    def assert_all_ok(self, min_probes: int = 3) -> None:
        bad = [p for p in self.probes if p.status != 200]
        assert len(self.probes) >= min_probes, f"only {len(self.probes)} /health probes ran"
        assert not bad, f"{len(bad)} of {len(self.probes)} /health probes failed: {bad[:5]}"


@dataclass
class RssWatch:
    """Samples VmRSS of ``pid`` every 50 ms; ``peak_mb`` is the largest sample."""

    pid: int
    samples_mb: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def peak_mb(self) -> float:
        return max(self.samples_mb, default=0.0)

    def sample(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError(f"no VmRSS for pid {self.pid}")

    def __enter__(self) -> RssWatch:
        self.samples_mb.append(self.sample())
        self._thread = threading.Thread(target=self._run, name="rss-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.samples_mb.append(self.sample())
            except (OSError, AssertionError):
                return


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))
