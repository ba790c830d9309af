"""How fast to send: the configured rate, lowered after a 429 and raised back while none come (pure, no asyncio).

The configured `--rate` is what the user believes the account allows. When the server answers 429 anyway
(its limit is lower, or the network bunched our requests against a small burst), sending again at the
configured rate after the `Retry-After` pause would only buy the next 429. So the sending rate is cut
multiplicatively, once per episode (429s for requests sent before the cut are the same episode: they
were already on the wire), and grows back by a small factor after each few seconds' worth of requests
sent without a new cut, never above the configured rate. This is additive-increase/multiplicative-
decrease in the shape TCP uses; the averaged rate settles just under the server's real limit.
"""

from __future__ import annotations

from dataclasses import dataclass

CUT_FACTOR = 0.7  # a 429 episode lowers the rate to 70%
GROW_FACTOR = 1.1  # ...and each calm stretch raises it by 10%
GROW_AFTER_S = 5.0  # a calm stretch: this many seconds' worth of requests at the current rate
FLOOR_FRACTION = 0.01  # never below 1% of the configured rate...
FLOOR_MIN_PER_S = 0.1  # ...nor below one request every 10 s (unless that is above the configured rate)


@dataclass(frozen=True, slots=True)
class RateChange:
    """What `Pacing` did, for the log: the rate before and after (requests per second)."""

    before_per_s: float
    after_per_s: float


class Pacing:
    """The current sending rate within `[floor, configured]`, driven by 429s and by calm stretches."""

    def __init__(self, configured_per_s: float) -> None:
        if configured_per_s <= 0:
            raise ValueError("the configured rate must be positive")
        self.configured_per_s = configured_per_s
        self.floor_per_s = min(configured_per_s, max(configured_per_s * FLOOR_FRACTION, FLOOR_MIN_PER_S))
        self.current_per_s = configured_per_s
        self.lowest_per_s = configured_per_s
        self.cuts = 0
        self._cut_at = float("-inf")  # when the last cut was made (the episode boundary)
        self._calm_sent = 0  # requests sent since the last change of rate

    @property
    def lowered(self) -> bool:
        return self.current_per_s < self.configured_per_s

    @property
    def interval_s(self) -> float:
        return 1.0 / self.current_per_s

    def sent(self) -> RateChange | None:
        """One request went out; after a calm stretch at a lowered rate, raise the rate."""
        if not self.lowered:
            return None
        self._calm_sent += 1
        if self._calm_sent < self.current_per_s * GROW_AFTER_S:
            return None
        before = self.current_per_s
        self.current_per_s = min(self.configured_per_s, before * GROW_FACTOR)
        self._calm_sent = 0
        return RateChange(before, self.current_per_s)

    def throttled(self, *, sent_at: float, now: float) -> RateChange | None:
        """A request sent at `sent_at` got a 429: cut the rate, unless an earlier 429 of this episode did."""
        if sent_at < self._cut_at:
            return None  # it was sent before the last cut: that cut already answered it
        before = self.current_per_s
        self.current_per_s = max(self.floor_per_s, before * CUT_FACTOR)
        self.lowest_per_s = min(self.lowest_per_s, self.current_per_s)
        self.cuts += 1
        self._cut_at = now
        self._calm_sent = 0
        return RateChange(before, self.current_per_s)
