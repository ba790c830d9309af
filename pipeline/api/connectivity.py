"""Whether the API answers: a circuit breaker that holds new submissions while it does not.

A connection that cannot be made or breaks (reset, timeout, DNS failure), or a POST whose answer is lost,
marks the API *down*; the next real HTTP answer (any status below 500: a 5xx from a gateway whose backend is
gone is no sign of life) marks it *up* again. While it is down, the submit stage sends nothing new (a POST
into an outage is at best refused and at worst paid with its answer lost), polls and downloads keep trying
on their own schedules, and a prober sends one cheap request now and then so that the run notices the API
is back even when nothing else would ask. Every wait says why, with the last error, in the progress line,
the log and `status`.
"""

from __future__ import annotations

import asyncio
import logging
import time

log = logging.getLogger(__name__)


class Connectivity:
    """Up or down, with the reason and since when; `wait_up` blocks while down."""

    def __init__(self) -> None:
        self._up = asyncio.Event()
        self._up.set()
        self._changed = asyncio.Event()  # set at each change of state (wakes the prober)
        self.reason: str | None = None  # the last connection error while down
        self.down_since: float | None = None  # monotonic time it went down
        self.outages = 0  # times it went down in this session
        self.down_s = 0.0  # time spent down in this session, outages over

    @property
    def down(self) -> bool:
        return not self._up.is_set()

    def failed(self, reason: str) -> None:
        """A request could not reach the API or lost its answer."""
        self.reason = reason
        if self.down:
            return
        self._up.clear()
        self.down_since = time.monotonic()
        self.outages += 1
        self._changed.set()
        log.warning("the API cannot be reached (%s): new submissions wait until it answers again", reason)

    def answered(self) -> None:
        """A request got a real answer from the API."""
        if not self.down:
            return
        lasted_s = time.monotonic() - (self.down_since or time.monotonic())
        self.down_s += lasted_s
        self._up.set()
        self._changed.set()
        log.warning("the API answers again after %.0fs unreachable (last error: %s): submissions resume",
                    lasted_s, self.reason)
        self.down_since = None

    async def wait_up(self, give_up: asyncio.Event) -> bool:
        """Until the API is up (True), or `give_up` is set first (False). An answer followed by another failure
        before this task wakes keeps it waiting: False means `give_up`, never a flap (callers then give up)."""
        while self.down:
            if give_up.is_set():
                return False
            waiters = {asyncio.ensure_future(self._up.wait()), asyncio.ensure_future(give_up.wait())}
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        return True

    async def changed(self) -> None:
        """Until the state changes (for the prober)."""
        self._changed.clear()
        await self._changed.wait()

    def describe(self) -> str | None:
        """`the API cannot be reached for 1m12s (connection reset): new submissions wait`, or None when up."""
        if not self.down:
            return None
        minutes, seconds = divmod(int(time.monotonic() - (self.down_since or time.monotonic())), 60)
        return f"the API cannot be reached for {minutes}m{seconds:02d}s ({self.reason}): new submissions wait"
