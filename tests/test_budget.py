"""The request budget: pacing after 429s (pure), the turnstile's priority order, cancellation and lowered rate."""

from __future__ import annotations

import asyncio
import time

import pytest

from pipeline.api.budget import LOOKUP, POLL, SUBMIT, RequestBudget
from pipeline.api.pacing import (
    CUT_FACTOR,
    GROW_AFTER_S,
    GROW_FACTOR,
    LONE_AFTER_S,
    NEAR_CEILING,
    NEAR_CUT_FACTOR,
    PROBE_FACTOR,
    Pacing,
)
from pipeline.run.progress import Snapshot, line, table


@pytest.mark.parametrize(("throttles", "expected_per_s", "expected_cuts", "expected_episodes"), [
    ([], 100.0, 0, 0),
    # a lone episode at the configured rate is noise: no cut
    ([(100.0, 100.0)], 100.0, 0, 1),
    # 429s for requests sent before the episode's first 429 came back are the same episode
    ([(100.0, 100.0), (99.9, 100.1), (99.95, 100.2)], 100.0, 0, 1),
    # a new episode soon after the first cuts the rate
    ([(100.0, 100.0), (101.0, 101.1)], 100.0 * CUT_FACTOR, 1, 2),
    # ...and, the rate being lowered, the next one cuts too, however long after
    ([(100.0, 100.0), (101.0, 101.1), (500.0, 500.0)], 100.0 * CUT_FACTOR ** 2, 2, 3),
    # two lone episodes far apart: still no cut
    ([(100.0, 100.0), (100.0 + LONE_AFTER_S, 100.0 + LONE_AFTER_S)], 100.0, 0, 2),
    # the rate never goes below 1% of the configured rate (13 cuts of 30% reach it; later episodes cut nothing)
    ([(t, t) for t in range(1, 42)], 1.0, 13, 41),
])
def test_pacing_cuts_once_per_episode_and_not_for_a_lone_one(
        throttles: list[tuple[float, float]], expected_per_s: float, expected_cuts: int,
        expected_episodes: int) -> None:
    """429 episodes soon after another, or while lowered, cut the rate (to a floor); a lone one does not."""
    pacing = Pacing(100.0)
    for sent_at, now in throttles:
        pacing.throttled(sent_at=sent_at, now=now)
    assert pacing.current_per_s == pytest.approx(expected_per_s)
    assert (pacing.cuts, pacing.episodes) == (expected_cuts, expected_episodes)
    assert pacing.lowest_per_s == pytest.approx(expected_per_s)


@pytest.mark.parametrize(("configured", "floor"), [(100.0, 1.0), (5.0, 0.1), (0.05, 0.05), (1000.0, 10.0)])
def test_pacing_floor(configured: float, floor: float) -> None:
    """The floor is 1% of the configured rate, at least 0.1/s, never above the configured rate."""
    assert Pacing(configured).floor_per_s == pytest.approx(floor)


def test_pacing_grows_back_after_calm_stretches_and_stops_at_the_configured_rate() -> None:
    """After a cut, each GROW_AFTER_S worth of requests without a new cut raises the rate, up to the configured one."""
    pacing = Pacing(100.0)
    assert pacing.sent() is None  # at the configured rate nothing changes
    pacing.throttled(sent_at=0.0, now=0.0)
    pacing.throttled(sent_at=1.0, now=1.0)
    calm = int(pacing.current_per_s * GROW_AFTER_S)
    changes = [pacing.sent() for _ in range(calm)]
    assert changes[:-1] == [None] * (calm - 1)
    assert changes[-1] is not None and pacing.current_per_s == pytest.approx(100.0 * CUT_FACTOR * GROW_FACTOR)
    for _ in range(100_000):
        pacing.sent()
    assert pacing.current_per_s == 100.0 and not pacing.lowered and pacing.lowest_per_s == pytest.approx(70.0)


def test_pacing_rejects_a_rate_that_is_not_positive() -> None:
    """A zero rate is a programming error, said plainly."""
    with pytest.raises(ValueError, match="positive"):
        Pacing(0.0)


async def test_turnstile_lets_callers_out_in_priority_order() -> None:
    """Waiting callers go out submissions first, then polls, then lookups; first come first served within each."""
    budget = RequestBudget(50.0)
    budget.pause(0.05)  # the first caller waits at the turnstile while the others queue
    order: list[str] = []

    async def call(name: str, priority: int) -> None:
        async with budget.slot(priority):
            order.append(name)

    async with asyncio.TaskGroup() as group:
        group.create_task(call("first", LOOKUP))  # takes the turnstile
        await asyncio.sleep(0)
        for name, priority in [("l1", LOOKUP), ("p1", POLL), ("s1", SUBMIT), ("p2", POLL), ("s2", SUBMIT)]:
            group.create_task(call(name, priority))
    assert order == ["first", "s1", "s2", "p1", "p2", "l1"]
    assert budget.requests == 6


async def test_a_cancelled_waiter_does_not_wedge_the_turnstile() -> None:
    """Cancelling callers while they wait, or just as they are given the turn, leaves the budget usable."""
    budget = RequestBudget(200.0)
    done: list[int] = []

    async def call(n: int) -> None:
        async with budget.slot(POLL):
            done.append(n)

    tasks = [asyncio.create_task(call(n)) for n in range(20)]
    await asyncio.sleep(0.02)
    for task in tasks[5:15]:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert len(done) >= 10 and not budget._busy and not any(budget._queues)
    async with asyncio.timeout(1):
        await call(99)
    assert done[-1] == 99


async def test_a_429_lowers_the_rate_for_everyone_and_spaces_requests() -> None:
    """After a 429 the budget lets requests out at the lowered rate (and no faster)."""
    budget = RequestBudget(100.0)
    for _ in range(2):  # two episodes in a row: the second cuts the rate
        async with budget.slot(SUBMIT) as sent_at:
            pass
        budget.throttled(sent_at=sent_at)
    assert budget.pacing.current_per_s == pytest.approx(97.0 * CUT_FACTOR)
    budget.throttled(sent_at=sent_at)  # same episode
    assert budget.pacing.cuts == 1
    times: list[float] = []

    async def call(priority: int) -> None:
        async with budget.slot(priority) as out_at:
            times.append(out_at)

    async with asyncio.TaskGroup() as group:
        for n in range(21):
            group.create_task(call(n % 3))
    span_s = times[-1] - times[0]
    # 20 intervals at 67.9/s take 0.29 s; at the configured 97/s they would take 0.21 s
    assert span_s >= 20 / budget.pacing.current_per_s - 0.01


async def test_a_pause_holds_every_caller() -> None:
    """`pause` (a 429's Retry-After) holds the next request until it has passed."""
    budget = RequestBudget(1000.0)
    budget.pause(0.1)
    started = time.monotonic()
    async with budget.slot(SUBMIT) as sent_at:
        pass
    assert sent_at - started >= 0.09


@pytest.mark.parametrize(("sending_per_s", "shown"), [(None, None), (67.9, "held to 67.9/s after 429s")])
def test_progress_says_when_429s_hold_the_rate_down(sending_per_s: float | None, shown: str | None) -> None:
    """The progress line and the live table show the lowered sending rate, and nothing when there is none."""
    from rich.console import Console

    snapshot = Snapshot(total=10, pending=2, in_flight=3, running=3, downloading=1, done=4, failed=0, unknown=0,
                        requests=40, requests_per_s=97.0, sending_per_s=sending_per_s, elapsed_s=12.0, eta_s=30.0)
    console = Console(record=True, width=120)
    console.print(table(snapshot))
    for text in (line(snapshot), console.export_text()):
        assert "40 (97.0/s" in text or "40 requests (97.0/s" in text
        assert (shown in text) if shown else ("held to" not in text)


def test_progress_says_why_the_run_waits() -> None:
    """A cooldown's countdown and a server-lowered in-flight cap appear in the log line and the live table."""
    from rich.console import Console

    waits = ("every request waits: cooldown (429): 39:12 left",
             "at most 4 in flight: the account's running-jobs cap (4)")
    snapshot = Snapshot(total=10, pending=2, in_flight=4, running=4, downloading=0, done=4, failed=0, unknown=0,
                        requests=40, requests_per_s=0.0, sending_per_s=None, elapsed_s=12.0, eta_s=None,
                        waits=waits)
    console = Console(record=True, width=160)
    console.print(table(snapshot))
    for text in (line(snapshot), console.export_text()):
        assert all(wait in text for wait in waits)


def _calm_stretch(pacing: Pacing) -> None:
    """Send one calm stretch's worth of requests (one rise of the rate)."""
    for _ in range(int(pacing.current_per_s * GROW_AFTER_S) + 1):
        if pacing.sent() is not None:
            return


def test_pacing_remembers_the_ceiling_grows_back_fast_below_it_and_probes_slowly_near_it() -> None:
    """Below the ceiling (the rate at the last cut) the rate rises 10% a stretch, from 95% of it 2%;
    an episode there, having grown back, cuts to 90% only; a cut right after a cut is deep."""
    pacing = Pacing(100.0)
    pacing.throttled(sent_at=0.0, now=0.0)  # lone: noted, no cut
    pacing.throttled(sent_at=1.0, now=1.0)  # 100 -> 70, ceiling 100
    assert pacing.current_per_s == pytest.approx(70.0) and pacing.ceiling_per_s == pytest.approx(100.0)
    rates = []
    while pacing.current_per_s < 95.0:
        _calm_stretch(pacing)
        rates.append(pacing.current_per_s)
    assert rates == pytest.approx([77.0, 84.7, 93.17, 100.0 * min(1.0, 0.9317 * GROW_FACTOR)])
    pacing = Pacing(100.0)
    pacing.throttled(sent_at=0.0, now=0.0)
    pacing.throttled(sent_at=1.0, now=1.0)  # 70, ceiling 100
    pacing.throttled(sent_at=2.0, now=2.0)  # a cut right after a cut: deep, 49, ceiling 70
    assert pacing.current_per_s == pytest.approx(49.0) and pacing.ceiling_per_s == pytest.approx(70.0)
    while pacing.current_per_s < NEAR_CEILING * 70.0:
        _calm_stretch(pacing)
    near = pacing.current_per_s
    _calm_stretch(pacing)
    assert pacing.current_per_s == pytest.approx(near * PROBE_FACTOR)  # probing near the ceiling
    probed = pacing.current_per_s
    pacing.throttled(sent_at=100.0, now=100.0)  # having grown back near the ceiling: a gentle cut
    assert pacing.current_per_s == pytest.approx(probed * NEAR_CUT_FACTOR)
    assert pacing.ceiling_per_s == pytest.approx(probed) and pacing.cuts == 3


async def test_used_share_is_the_part_of_the_rate_the_last_five_seconds_took() -> None:
    """10 requests at 20/s: 10 of the 97 the last 5 s allowed; nothing once they have left the window."""
    budget = RequestBudget(20.0)
    assert budget.used_share() == 0.0
    for _ in range(10):
        async with budget.slot(SUBMIT):
            pass
    assert budget.used_share() == pytest.approx(10 / (20 * 0.97 * 5))
    assert budget.used_share(time.monotonic() + 5.1) == 0.0
