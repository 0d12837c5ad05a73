"""Background loops: run an action every interval, keep going on failure, stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable


class Periodic:
    """``Periodic("tollway-registry", 1.0, registry.refresh, "refreshing keys")``."""

    def __init__(
        self,
        name: str,
        interval_s: float,
        action: Callable[[], Awaitable[object]],
        what: str,
        *,
        run_first: bool = False,
        log: logging.Logger | None = None,
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self.action = action
        self.what = what
        self.run_first = run_first
        self.log = log or logging.getLogger("tollway")
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def _loop(self) -> None:
        if not self.run_first:
            await asyncio.sleep(self.interval_s)
        while True:
            try:
                await self.action()
            except Exception:  # a background loop's outermost layer: keep the gateway up
                self.log.exception("%s failed; retrying in %.0f s", self.what, self.interval_s)
            await asyncio.sleep(self.interval_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
