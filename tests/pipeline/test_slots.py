"""The concurrency gate: FIFO turns, all scopes or none, bounded waits, no leaked slots."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from tollway.pipeline.slots import SlotGate


async def test_takes_turns_in_arrival_order() -> None:
    gate = SlotGate()
    first = gate.try_take([("vk:a", 1)])
    assert first is not None and gate.try_take([("vk:a", 1)]) is None
    order: list[int] = []

    async def wait(i: int) -> None:
        hold = await gate.take([("vk:a", 1)], 5)
        assert hold is not None
        order.append(i)
        await asyncio.sleep(0)
        gate.release(hold)

    tasks = [asyncio.create_task(wait(i)) for i in range(5)]
    await asyncio.sleep(0.01)
    assert gate.waiting == 5
    gate.release(first)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    assert gate.in_flight("vk:a") == 0 and gate.waiting == 0


async def test_a_newcomer_does_not_jump_the_queue() -> None:
    gate = SlotGate()
    held = gate.try_take([("team:t", 1)])
    assert held is not None
    waiter = asyncio.create_task(gate.take([("team:t", 1)], 5))
    await asyncio.sleep(0.01)
    gate.release(held)  # the slot goes to the waiter, not to whoever asks next
    assert gate.try_take([("team:t", 1)]) is None
    assert (await waiter) is not None


async def test_all_scopes_or_none() -> None:
    gate = SlotGate()
    assert gate.try_take([("team:t", 1)]) is not None
    assert gate.try_take([("vk:a", 5), ("team:t", 1)]) is None
    assert gate.in_flight("vk:a") == 0  # nothing taken for the key when the team is full


async def test_wait_runs_out_and_cancelled_waiters_leave_nothing_behind() -> None:
    gate = SlotGate()
    held = gate.try_take([("vk:a", 1)])
    assert held is not None
    assert await gate.take([("vk:a", 1)], 0.05) is None
    cancelled = asyncio.create_task(gate.take([("vk:a", 1)], 5))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert gate.waiting == 0
    gate.release(held)
    gate.release(held)  # a second release is a no-op
    assert gate.in_flight("vk:a") == 0


@given(st.lists(st.tuples(st.integers(1, 3), st.floats(0, 0.004)), min_size=1, max_size=25))
def test_never_more_than_the_cap_in_flight(jobs: list[tuple[int, float]]) -> None:
    async def run() -> None:
        gate = SlotGate()
        peak = 0

        async def job(cap: int, hold_s: float) -> None:
            nonlocal peak
            hold = await gate.take([("vk:a", 2), (f"pc:{cap}", cap)], 1.0)
            if hold is None:
                return
            peak = max(peak, gate.in_flight("vk:a"))
            await asyncio.sleep(hold_s)
            gate.release(hold)

        await asyncio.gather(*(job(cap, t) for cap, t in jobs))
        assert peak <= 2
        assert gate.in_flight("vk:a") == 0 and gate.waiting == 0

    asyncio.run(run())
