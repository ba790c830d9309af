"""How fast to send: the configured rate, lowered after a 429 and raised back while none come (pure, no asyncio).

The configured `--rate` is what the user believes the account allows. When the server answers 429 anyway
(its limit is lower, or the network bunched our requests against a small burst), sending again at the
configured rate after the `Retry-After` pause would only buy the next 429. An episode is the 429s of
requests sent before its first 429 came back (they were already on the wire). A lone episode at the
configured rate, `LONE_AFTER_S` after the previous one, is taken for noise (a pause somewhere bunched
a few requests): it costs only its `Retry-After`. Any other episode means the rate is too high, and
the sending rate is cut; after each few seconds' worth of requests sent without a new cut it grows
back, never above the configured rate.

The rate at the last cut is remembered as the ceiling (what the server would not take). Coming down
(a cut right after a cut) the cuts are deep (`CUT_FACTOR`), so a `--rate` far above the account's limit
costs a handful of 429s. Below the ceiling the rate grows back quickly (`GROW_FACTOR`); near it, slowly
(`PROBE_FACTOR`), and an episode there, having grown back, cuts gently (`NEAR_CUT_FACTOR`): the rate
then stays within a few percent of the server's real limit instead of sawing between 70% and 100% of it.
"""

from __future__ import annotations

from dataclasses import dataclass

LONE_AFTER_S = 30.0  # an episode this long after the previous one is not a reason to slow down
CUT_FACTOR = 0.7  # coming down: a 429 episode lowers the rate to 70%
NEAR_CUT_FACTOR = 0.9  # having grown back near the ceiling: to 90%
GROW_FACTOR = 1.1  # each calm stretch raises the rate by 10% below the ceiling...
PROBE_FACTOR = 1.02  # ...and by 2% from NEAR_CEILING of it up
NEAR_CEILING = 0.95
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
        self.episodes = 0
        self._episode_at = float("-inf")  # when the last episode's first 429 came back
        self._calm_sent = 0  # requests sent since the last change of rate
        self.ceiling_per_s: float | None = None  # the rate at the last cut: the server would not take it
        self._grown = False  # the last change of rate was a rise (not a cut)

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
        near = self.ceiling_per_s is not None and before >= NEAR_CEILING * self.ceiling_per_s
        self.current_per_s = min(self.configured_per_s, before * (PROBE_FACTOR if near else GROW_FACTOR))
        self._calm_sent = 0
        self._grown = True
        return RateChange(before, self.current_per_s)

    def throttled(self, *, sent_at: float, now: float) -> RateChange | None:
        """A request sent at `sent_at` got a 429 at `now`: a new episode cuts the rate unless it is a lone one."""
        if sent_at < self._episode_at:
            return None  # sent before this episode's first 429 came back: part of it
        lone = not self.lowered and now - self._episode_at >= LONE_AFTER_S
        self._episode_at = now
        self.episodes += 1
        if lone or self.current_per_s <= self.floor_per_s:
            return None
        before = self.current_per_s
        near = (self._grown and self.ceiling_per_s is not None
                and before >= NEAR_CEILING * self.ceiling_per_s)
        self.current_per_s = max(self.floor_per_s, before * (NEAR_CUT_FACTOR if near else CUT_FACTOR))
        self.lowest_per_s = min(self.lowest_per_s, self.current_per_s)
        self.ceiling_per_s = before
        self.cuts += 1
        self._calm_sent = 0
        self._grown = False
        return RateChange(before, self.current_per_s)
