from __future__ import annotations

import asyncio
import logging

import pytest

from tollway.background import Periodic


async def test_runs_keeps_going_after_a_failure_and_stops(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    async def action() -> None:
        calls.append(len(calls))
        if len(calls) == 2:
            raise OSError("store unreachable")

    loop = Periodic("t", 0.01, action, "testing the loop", run_first=True)
    with caplog.at_level(logging.ERROR, logger="tollway"):
        loop.start()
        for _ in range(200):
            if len(calls) >= 4:
                break
            await asyncio.sleep(0.01)
        await loop.stop()
    assert len(calls) >= 4 and not loop.running
    assert "testing the loop failed" in caplog.text
    done = len(calls)
    await asyncio.sleep(0.05)
    assert len(calls) == done  # nothing runs after stop()


async def test_without_run_first_it_waits_one_interval() -> None:
    calls: list[int] = []

    async def action() -> None:
        calls.append(1)

    loop = Periodic("t", 10.0, action, "waiting")
    loop.start()
    await asyncio.sleep(0.05)
    await loop.stop()
    assert calls == []
