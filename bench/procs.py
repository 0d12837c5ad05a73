"""Processes under test: start, wait until ready, read CPU and memory from /proc, stop.

CPU is utime+stime of the process and all its descendants (every thread included);
memory is VmRSS / VmHWM summed the same way. A service may be pinned to one CPU with
taskset so that it does not share a core with the load generator and the mock.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def tree(pid: int) -> list[int]:
    """``pid`` and every live descendant."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None:
                parents.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def cpu_seconds(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def status_kb(pids: Sequence[int], field: str) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
                    break
    return total


def http_ok(port: int, path: str, timeout: float = 1.0) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


class Service:
    """A server process: ``start()`` returns seconds from spawn to a 200 on ``ready_path``."""

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        port: int,
        ready_path: str,
        log: Path,
        *,
        env: Mapping[str, str] | None = None,
        cpu: int | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.cmd = list(cmd)
        if cpu is not None and shutil.which("taskset"):
            self.cmd = ["taskset", "-c", str(cpu), *self.cmd]
        self.port = port
        self.ready_path = ready_path
        self.log = log
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self._pids: list[int] = []

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def pids(self) -> list[int]:
        """The process tree, cached: workers are forked at start-up, not per request."""
        if not self._pids or len(self._pids) == 1:
            self._pids = tree(self.pid)
        return self._pids

    def start(self, timeout: float = 90.0) -> float:
        out = self.log.open("ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )
        out.close()
        deadline = t0 + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}; see {self.log}"
                )
            if http_ok(self.port, self.ready_path, timeout=0.5):
                elapsed = time.perf_counter() - t0
                self._pids = []
                time.sleep(0.3)  # let forked workers appear before the tree is read
                self.pids()
                return elapsed
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"{self.name} was not ready within {timeout}s; see {self.log}")

    def cpu(self) -> float:
        return cpu_seconds(self.pids())

    def rss_kb(self) -> int:
        return status_kb(self.pids(), "VmRSS")

    def hwm_kb(self) -> int:
        return status_kb(self.pids(), "VmHWM")

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


class PeakRSS:
    """Samples a service's RSS every ``interval`` seconds in a thread; ``stop()`` -> peak kB."""

    def __init__(self, service: Service, interval: float = 0.05) -> None:
        self.service = service
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.service.rss_kb())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.service.rss_kb())


def wait_idle(service: Service, limit: float = 30.0, threshold: float = 0.05) -> float:
    """Wait until the service uses under ``threshold`` of a core over 0.5 s; returns waited s."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        a = service.cpu()
        time.sleep(0.5)
        if service.cpu() - a < threshold * 0.5:
            break
    return time.perf_counter() - t0
