"""The emulator's clock: the event loop's time, shown to clients as ISO-8601 UTC.

Only the loop clock is read (so a test may patch it); wall-clock times are the
loop time shifted by the offset seen at first use.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime


class LoopClock:
    """Loop time now, and its conversion to Unix time and to `2025-01-02T03:04:05.678Z`."""

    def __init__(self) -> None:
        self._epoch: tuple[float, float] | None = None  # (wall clock, loop clock) at first use

    def now_s(self) -> float:
        """The running loop's time (seconds, monotonic); outside a loop, the same clock the default loop reads."""
        try:
            now = asyncio.get_running_loop().time()
        except RuntimeError:
            now = time.monotonic()
        if self._epoch is None:
            self._epoch = (time.time(), now)
        return now

    def wall_s(self, loop_s: float) -> float:
        """A loop-clock instant as Unix time."""
        if self._epoch is None:
            self.now_s()
        assert self._epoch is not None
        return self._epoch[0] + (loop_s - self._epoch[1])

    def loop_s(self, wall_s: float) -> float:
        """A Unix time as a loop-clock instant."""
        if self._epoch is None:
            self.now_s()
        assert self._epoch is not None
        return self._epoch[1] + (wall_s - self._epoch[0])

    def wall_ms(self, loop_s: float) -> int:
        """A loop-clock instant as Unix time in whole milliseconds."""
        return int(self.wall_s(loop_s) * 1000)

    def iso(self, loop_s: float | None) -> str | None:
        """A loop-clock instant as ISO-8601 UTC with milliseconds and a `Z`; None stays None."""
        if loop_s is None:
            return None
        stamp = datetime.fromtimestamp(self.wall_s(loop_s), UTC)
        return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
