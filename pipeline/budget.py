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


class RequestBudget:
    """Rate limit (requests per second, no bursts), priority order and a shared pause."""

    def __init__(self, max_requests_per_s: float) -> None:
        # capacity 1 refilled every 1/rate s: requests are spaced evenly, never bursting past the limit;
        # a little headroom absorbs the jitter between our send times and the server's arrival times
        self._limiter = AsyncLimiter(1, 1.0 / (max_requests_per_s * RATE_HEADROOM))
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
