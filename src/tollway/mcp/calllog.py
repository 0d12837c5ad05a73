"""The tool-call log: records queued in memory and written in batches, never awaited.

A call appends its record and moves on; a background loop writes the queue every
``flush_interval`` seconds and clears stored arguments and results older than
``retention_days`` once an hour. The queue is bounded: past ``queue_size`` records the
oldest are dropped and counted.
"""

from __future__ import annotations

import logging
import time
from collections import deque

from prometheus_client import Counter, Histogram

from tollway.background import Periodic
from tollway.observability.metrics import Metrics
from tollway.storage.base import Store
from tollway.storage.tool_calls import ToolCallRecord

log = logging.getLogger("tollway.mcp")
_PURGE_EVERY_S = 3600.0


class ToolCallLog:
    """``log.add(record)``; ``start()``/``stop()`` with the services (stop flushes)."""

    def __init__(
        self, store: Store, metrics: Metrics, *, flush_interval: float, queue_size: int,
        retention_days: int,
    ) -> None:  # fmt: skip
        self.store = store
        self.queue_size = queue_size
        self.retention_days = retention_days
        self.dropped = 0
        self._queue: deque[ToolCallRecord] = deque()
        self._last_purge = 0.0
        self._loop = Periodic("tollway-mcp-log", flush_interval, self.flush,
                              "writing MCP tool calls", log=log)  # fmt: skip
        self.calls = Counter(
            "tollway_mcp_tool_calls", "MCP tool calls by upstream server and outcome",
            ["server", "outcome"], registry=metrics.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "tollway_mcp_tool_call_duration_seconds", "MCP tool call duration", ["server"],
            buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=metrics.registry,
        )  # fmt: skip
        metrics.gauge("tollway_mcp_tool_calls_dropped", "Tool-call records dropped: queue full",
                      lambda: self.dropped)  # fmt: skip

    @property
    def pending(self) -> int:
        return len(self._queue)

    def add(self, record: ToolCallRecord) -> None:
        server = record.server or ""
        self.calls.labels(server, record.outcome).inc()
        self.latency.labels(server).observe(record.latency_ms / 1000)
        self._queue.append(record)
        while len(self._queue) > self.queue_size:
            self._queue.popleft()
            self.dropped += 1

    async def flush(self) -> None:
        batch, self._queue = list(self._queue), deque()
        if batch:
            try:
                await self.store.write_tool_calls(batch)
            except BaseException:
                self._queue.extendleft(reversed(batch))  # kept for the next flush
                raise
        now = time.time()
        if self.retention_days and now - self._last_purge >= _PURGE_EVERY_S:
            self._last_purge = now
            await self.store.purge_tool_call_content(now - self.retention_days * 86400)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self.flush()
