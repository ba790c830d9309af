"""When to poll a job next: pure functions over what finished jobs taught us and what the server reports.

With the job listing as a feed of changes (poll_mode feed), a job is polled on its own only when the
listing has left it silent for much longer than jobs like it take (`verify_delay`), and the listing
itself comes every `feed_interval_s`, or sooner while jobs wait for an in-flight place (`feed_interval`).

Per job, the aim is one poll per job where possible: the first poll waits until the job can
plausibly be done (a high quantile of observed durations, or `first_delay_s`
before any job has finished), later polls use the reported progress to estimate
the time left. Every delay is clamped to [min_interval_s, max_interval_s].

`eager` is for when jobs wait for an in-flight place (our cap, or the account's running-jobs cap
learnt from its 429s): then each moment a finished job goes unnoticed is a running slot left idle,
worth more than a few extra polls. The first poll comes at the first decile instead, and a job past
its typical time is polled again soon (2% of it, growing by half each poll) rather than backed off.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field


@dataclass(slots=True)
class DurationModel:
    """Observed job durations (submit to done, seconds), kept sorted; a bounded window of recent ones."""

    window: int = 200
    _recent: list[float] = field(default_factory=list)
    _sorted: list[float] = field(default_factory=list)

    def observe(self, duration_s: float) -> None:
        if duration_s < 0:
            return
        self._recent.append(duration_s)
        bisect.insort(self._sorted, duration_s)
        if len(self._recent) > self.window:
            old = self._recent.pop(0)
            del self._sorted[bisect.bisect_left(self._sorted, old)]

    @property
    def count(self) -> int:
        return len(self._sorted)

    def quantile(self, q: float) -> float | None:
        if not self._sorted:
            return None
        position = min(len(self._sorted) - 1, max(0, round(q * (len(self._sorted) - 1))))
        return self._sorted[position]


@dataclass(frozen=True, slots=True)
class PollTiming:
    """The tunables of the poll schedule, from the settings."""

    first_delay_s: float
    min_interval_s: float
    max_interval_s: float
    target_quantile: float = 0.8  # first poll when 80% of jobs like this one are done
    eager_quantile: float = 0.1  # ... or a tenth of them, when jobs wait for in-flight places
    eager_late_fraction: float = 0.02  # then a late job is polled again after this fraction of the typical time
    feed_interval_s: float = 2.0  # one job listing this often (poll_mode feed)


def _clamp(value: float, timing: PollTiming) -> float:
    return min(timing.max_interval_s, max(timing.min_interval_s, value))


def first_poll_delay(model: DurationModel, timing: PollTiming, *, eager: bool = False) -> float:
    """Seconds from submission to the first poll."""
    typical = model.quantile(timing.eager_quantile if eager else timing.target_quantile)
    if typical is None:
        return max(timing.min_interval_s, min(timing.first_delay_s, timing.max_interval_s))
    return _clamp(typical, timing)


def next_poll_delay(*, elapsed_s: float, status: str, progress: float | None, polls: int,
                    model: DurationModel, timing: PollTiming, eager: bool = False) -> float:
    """Seconds until the next poll of a job that is not done `elapsed_s` after submission."""
    if progress is not None and 0.05 <= progress < 1.0 and status == "in-progress":
        remaining = elapsed_s * (1.0 - progress) / progress
        return _clamp(remaining * 1.05, timing)
    typical = model.quantile(0.5)
    if typical is not None and elapsed_s < typical:
        return _clamp(typical - elapsed_s, timing)
    # past the typical duration, or nothing learnt yet: back off geometrically
    if eager:
        base = typical if typical is not None else timing.first_delay_s
        return _clamp(base * timing.eager_late_fraction * (1.5 ** min(polls, 12)), timing)
    base = typical * 0.25 if typical is not None else timing.first_delay_s
    return _clamp(base * (1.5 ** min(polls, 12)), timing)


EAGER_FLOOR_S = 0.05  # the listing never comes more often than this
EAGER_BUDGET_REQUESTS = 3.0  # ... nor more often than once every this many requests of the budget


def feed_interval(model: DurationModel, timing: PollTiming, *, eager: bool, requests_per_s: float) -> float:
    """Seconds from one job listing to the next: `feed_interval_s`; `eager` (jobs wait for an in-flight place,
    or the last job sent may be done), `eager_late_fraction` of a typical job's time, but no more often than every
    third request of the budget."""
    if not eager:
        return timing.feed_interval_s
    typical = model.quantile(0.5)
    wanted = timing.eager_late_fraction * typical if typical is not None else 0.0
    budget = EAGER_BUDGET_REQUESTS / requests_per_s if requests_per_s > 0 else timing.feed_interval_s
    return min(timing.feed_interval_s, max(EAGER_FLOOR_S, budget, wanted))


def verify_delay(model: DurationModel, timing: PollTiming, *, checks: int) -> float:
    """Seconds a job may stay silent in the job listing before it is polled on its own: much longer than
    jobs like it take (twice the 90th percentile of the observed durations; three times `first_delay_s`
    before any job finished), growing by half at each poll that found it still running; never less than
    three listings."""
    typical = model.quantile(0.9)
    base = 2.0 * typical if typical is not None else 3.0 * timing.first_delay_s
    floor = max(timing.min_interval_s, 3.0 * timing.feed_interval_s)
    return max(floor, base * 1.5 ** min(checks, 12))
