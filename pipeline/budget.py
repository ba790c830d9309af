"""The account's request budget: one aiolimiter limiter shared by every API call, with priorities and pauses.

Submissions go first, then polls, then asset lookups: a lower-priority caller waits
while a higher-priority one is waiting, so polls never starve submissions. A 429
pauses the whole budget (everyone) until its `Retry-After` has passed.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from collections.abc import AsyncIterator

from aiolimiter import AsyncLimiter

SUBMIT, POLL, LOOKUP = 0, 1, 2
RATE_HEADROOM = 0.97  # we send at 97% of the configured rate
LATE_WAKE_S = 0.002  # how late a timer may fire (epoll waits in whole milliseconds) without costing rate


class RequestBudget:
    """Rate limit (requests per second, evenly spaced, no bursts), priority order and a shared pause."""

    def __init__(self, max_requests_per_s: float) -> None:
        # one request every 1/(0.97 rate) s on average. The bucket holds a little more than 1 (2 ms worth,
        # or half an interval if that is less) so that a request whose timer fired late does not delay all
        # the ones after it: with a bucket of exactly 1 every late wake-up was lost for good (87% of the
        # rate at 200/s). Requests stay at least an interval minus 2 ms apart (half an interval at most).
        interval_s = 1.0 / (max_requests_per_s * RATE_HEADROOM)
        capacity = 1.0 + min(LATE_WAKE_S, interval_s / 2) / interval_s
        self._limiter = AsyncLimiter(capacity, capacity * interval_s)
        self._waiting = [0, 0, 0]
        self._changed = asyncio.Condition()
        self._paused_until = 0.0
        self.requests = 0  # requests let through (every attempt, retries included)

    def pause(self, seconds: float) -> None:
        """Hold every caller for `seconds` from now (the server said 429)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    @property
    def paused_for_s(self) -> float:
        return max(0.0, self._paused_until - time.monotonic())

    @asynccontextmanager
    async def slot(self, priority: int) -> AsyncIterator[None]:
        """Wait for this caller's turn under the rate limit, then run the request."""
        self._waiting[priority] += 1
        try:
            async with self._changed:
                await self._changed.wait_for(lambda: not any(self._waiting[:priority]))
            while (pause := self.paused_for_s) > 0:
                await asyncio.sleep(pause)
            await self._limiter.acquire()
        finally:
            self._waiting[priority] -= 1
            async with self._changed:
                self._changed.notify_all()
        self.requests += 1
        yield
