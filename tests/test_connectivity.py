"""The circuit breaker's wait (`api.connectivity.Connectivity.wait_up`): up, or told to give up; never a flap."""

from __future__ import annotations

import asyncio

from pipeline.api.connectivity import Connectivity


async def test_wait_up_waits_on_when_the_api_goes_down_again_before_the_waiter_wakes() -> None:
    """An answer undone by a new failure before the waiter runs keeps it waiting (a submit worker took the False
    it returned for 'submitting stopped' and dropped its job, left pending)."""
    connectivity, give_up = Connectivity(), asyncio.Event()
    connectivity.failed("connection reset")
    waiter = asyncio.create_task(connectivity.wait_up(give_up))
    await asyncio.sleep(0.01)  # the waiter waits
    connectivity.answered()
    connectivity.failed("connection reset again")  # down again before the waiter ran
    await asyncio.sleep(0.01)
    assert not waiter.done()
    connectivity.answered()
    assert await asyncio.wait_for(waiter, 1.0) is True


async def test_wait_up_gives_up_only_when_told() -> None:
    """While down, wait_up returns False once `give_up` is set; while up it returns True at once."""
    connectivity, give_up = Connectivity(), asyncio.Event()
    assert await connectivity.wait_up(give_up) is True
    connectivity.failed("connection refused")
    waiter = asyncio.create_task(connectivity.wait_up(give_up))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    give_up.set()
    assert await asyncio.wait_for(waiter, 1.0) is False
