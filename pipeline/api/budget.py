"""The account's request budget: one aiolimiter limiter shared by every API call, with priorities and pauses.

Callers queue for one turnstile, which lets the next caller through in priority order (submissions,
then polls, then asset lookups; first come first served within a priority), so polls never starve
submissions. The caller at the turnstile waits out any 429 pause, then the aiolimiter limiter (the
configured rate, a hard cap), then the `Pacing` interval when a 429 has lowered the rate. One caller at
a time inside means the rate can change at once for everybody, and no herd wakes at each tick.

Once the run halts (the `halted` event), nothing more leaves: a 429 pause is cut short and every caller
gets `RunHalted` instead of its turn, so a stopping run sends no new request of any kind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiolimiter import AsyncLimiter

from pipeline.api.pacing import Pacing, RateChange
from pipeline.errors import RunHalted

SUBMIT, POLL, LOOKUP = 0, 1, 2
RATE_HEADROOM = 0.97  # we send at 97% of the configured rate
LATE_WAKE_S = 0.002  # how late a timer may fire (epoll waits in whole milliseconds) without costing rate
USE_WINDOW_S = 5.0  # `used_share` looks back this far

log = logging.getLogger(__name__)


class RequestBudget:
    """Rate limit (requests per second, evenly spaced, no bursts), priority order, 429 pauses and pacing."""

    def __init__(self, max_requests_per_s: float, *, halted: asyncio.Event | None = None) -> None:
        # one request every 1/(0.97 rate) s on average. The bucket holds a little more than 1 (2 ms worth,
        # or half an interval if that is less) so that a request whose timer fired late does not delay all
        # the ones after it: with a bucket of exactly 1 every late wake-up was lost for good (87% of the
        # rate at 200/s). Requests stay at least an interval minus 2 ms apart (half an interval at most).
        interval_s = 1.0 / (max_requests_per_s * RATE_HEADROOM)
        capacity = 1.0 + min(LATE_WAKE_S, interval_s / 2) / interval_s
        self._limiter = AsyncLimiter(capacity, capacity * interval_s)
        self.pacing = Pacing(max_requests_per_s * RATE_HEADROOM)
        self._queues: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque(), deque())
        self._busy = False  # a caller is at the turnstile
        self._next_paced_at = 0.0  # monotonic time before which a lowered rate lets no request out
        self._paused_until = 0.0
        self.pause_reason = ""  # why the current pause (see `waiting`)
        self.requests = 0  # requests let through (every attempt, retries included)
        self._let_out: deque[float] = deque()  # when the requests of the last USE_WINDOW_S were let through
        self.halted = halted if halted is not None else asyncio.Event()

    def pause(self, seconds: float, *, reason: str = "429") -> None:
        """Hold every caller for `seconds` from now (the server said 429); `reason` is shown while it lasts."""
        until = time.monotonic() + seconds
        if until > self._paused_until:
            self._paused_until, self.pause_reason = until, reason

    def throttled(self, *, sent_at: float) -> None:
        """A request let through at `sent_at` (monotonic) was answered 429: lower the sending rate."""
        self._log_change("429: sending rate lowered", self.pacing.throttled(sent_at=sent_at, now=time.monotonic()))

    @property
    def paused_for_s(self) -> float:
        return max(0.0, self._paused_until - time.monotonic())

    def used_share(self, now: float | None = None) -> float:
        """How much of the sending rate the last USE_WINDOW_S took, 0 (idle) to 1 (every slot used)."""
        now = time.monotonic() if now is None else now
        while self._let_out and self._let_out[0] <= now - USE_WINDOW_S:
            self._let_out.popleft()
        return min(1.0, len(self._let_out) / (self.pacing.current_per_s * USE_WINDOW_S))

    @property
    def waiting(self) -> str | None:
        """What every request waits for right now, for the user (`cooldown (429): 39:12 left`); None if nothing."""
        left_s = self.paused_for_s
        if left_s <= 0:
            return None
        minutes, seconds = divmod(int(left_s + 0.999), 60)
        return f"{self.pause_reason}: {minutes}:{seconds:02d} left"

    @asynccontextmanager
    async def slot(self, priority: int) -> AsyncIterator[float]:
        """Wait for this caller's turn under the rate limit, then run the request; yields when it was let out.

        Raises RunHalted instead once the run halts (the request must not be sent)."""
        await self._enter(priority)
        try:
            while (pause := self.paused_for_s) > 0 and not self.halted.is_set():
                await sleep_unless(self.halted, pause)
            if not self.halted.is_set():
                await self._limiter.acquire()
                await self._pace()
        finally:
            self._leave()
        if self.halted.is_set():
            raise RunHalted("the run is stopping: request not sent")
        self.requests += 1
        self._let_out.append(time.monotonic())
        self.used_share()  # forget what left the window
        self._log_change("no 429 for a while: sending rate raised", self.pacing.sent())
        yield time.monotonic()

    async def _pace(self) -> None:
        """At a lowered rate, keep requests `pacing.interval_s` apart (a timer that fires late is not owed)."""
        if not self.pacing.lowered:
            return
        now = time.monotonic()
        if (wait_s := self._next_paced_at - now) > 0:
            await asyncio.sleep(wait_s)
            now = time.monotonic()
        self._next_paced_at = max(self._next_paced_at, now - LATE_WAKE_S) + self.pacing.interval_s

    async def _enter(self, priority: int) -> None:
        if not self._busy and not any(self._queues):
            self._busy = True
            return
        turn = asyncio.get_running_loop().create_future()
        self._queues[priority].append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._leave()  # the turn was given to us just as we were cancelled: pass it on
            elif turn in self._queues[priority]:
                self._queues[priority].remove(turn)
            raise

    def _leave(self) -> None:
        """Give the turnstile to the first waiter of the highest priority, or free it."""
        for queue in self._queues:
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    turn.set_result(None)
                    return
        self._busy = False

    @staticmethod
    def _log_change(what: str, change: RateChange | None) -> None:
        if change is not None:
            log.info("%s from %.1f to %.1f requests/s", what, change.before_per_s, change.after_per_s)


async def sleep_unless(event: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds`, or less if `event` gets set; True when the event cut the sleep short (or was set)."""
    if event.is_set():
        return True
    try:
        await asyncio.wait_for(event.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
