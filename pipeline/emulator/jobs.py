"""Job simulation without a task per job: state computed lazily from timestamps and an event heap.

A job waits in a FIFO queue until one of `max_running` slots frees; it then runs
for its own `run_s` and finishes. `JobBoard.advance(now_s)` replays every end
event up to `now_s` in time order, starting waiting jobs at the exact moment a
slot freed, so the timeline is the same however rarely anyone looks. Cost:
O(log n) per job start/end, nothing per tick. Pure: the caller passes the clock.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True, eq=False)
class Job:
    """One emulated job: what was asked, its fate (drawn at creation) and its timeline."""

    job_id: str
    model_id: str
    body: dict[str, Any]  # as received
    params: dict[str, Any]  # checked and normalised (width/height rounded)
    created_s: float
    run_s: float
    output_asset_id: str
    failure: str | None = None  # the reason, when this job is fated to fail
    warmup: bool = False  # reports an unknown status while queued and in the first half of its run
    pad_bytes: int = 0
    started_s: float | None = None
    finished_s: float | None = None
    output_sha256: str | None = field(default=None, repr=False)  # cached once computed
    output_size: int | None = None

    @property
    def finished(self) -> bool:
        return self.finished_s is not None

    @property
    def succeeded(self) -> bool:
        return self.finished_s is not None and self.failure is None


@dataclass(frozen=True, slots=True)
class JobView:
    """What `GET /v1/jobs/{jobId}` reports at one instant."""

    status: str
    progress: float
    updated_s: float


def view(job: Job, now_s: float, *, unknown_status: str) -> JobView:
    """The status, progress (0..1) and last-change time of a job at `now_s` (after `advance(now_s)`)."""
    if job.finished_s is not None:
        return JobView("failure" if job.failure else "success", 1.0, job.finished_s)
    if job.started_s is None:
        return JobView(unknown_status if job.warmup else "queued", 0.0, job.created_s)
    elapsed = now_s - job.started_s
    if job.warmup and elapsed < job.run_s / 2:
        return JobView(unknown_status, 0.0, job.started_s)
    progress = min(0.99, elapsed / job.run_s) if job.run_s > 0 else 0.99
    return JobView("in-progress", round(max(0.0, progress), 3), now_s)


class JobBoard:
    """Every job of one account, its waiting queue and the heap of running jobs' end times."""

    def __init__(self, *, max_running: int) -> None:
        self.max_running = max_running
        self._jobs: dict[str, Job] = {}
        self._waiting: deque[Job] = deque()
        self._ends: list[tuple[float, int, Job]] = []  # (end time, tie-breaker, job)
        self._seq = 0
        self.peak_running = 0
        self.peak_in_flight = 0

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[Job]:
        return iter(self._jobs.values())

    @property
    def running(self) -> int:
        return len(self._ends)

    @property
    def queued(self) -> int:
        return len(self._waiting)

    @property
    def in_flight(self) -> int:
        return len(self._ends) + len(self._waiting)

    def get(self, job_id: str) -> Job | None:
        """The job with this id (call `advance` first for a current timeline)."""
        return self._jobs.get(job_id)

    def add(self, job: Job, now_s: float) -> list[Job]:
        """Queue a new job at `now_s`; returns the jobs that finished up to then (as `advance`)."""
        finished = self.advance(now_s)
        self._jobs[job.job_id] = job
        self._waiting.append(job)
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        self._fill(now_s)
        return finished

    def advance(self, now_s: float) -> list[Job]:
        """Replay every job end up to `now_s` (starting waiting jobs as slots free); returns the jobs that finished."""
        finished = []
        while self._ends and self._ends[0][0] <= now_s:
            end_s, _, job = heapq.heappop(self._ends)
            job.finished_s = end_s
            finished.append(job)
            self._fill(end_s)
        return finished

    def set_max_running(self, max_running: int, now_s: float) -> list[Job]:
        """Change the running cap live; more slots start waiting jobs at `now_s`, fewer let running ones finish."""
        finished = self.advance(now_s)
        self.max_running = max_running
        self._fill(now_s)
        return finished

    def reset_peaks(self) -> None:
        """Restart the peak counters from the current figures."""
        self.peak_running = self.running
        self.peak_in_flight = self.in_flight

    def _fill(self, at_s: float) -> None:
        while self._waiting and len(self._ends) < self.max_running:
            job = self._waiting.popleft()
            job.started_s = at_s
            self._seq += 1
            heapq.heappush(self._ends, (at_s + job.run_s, self._seq, job))
        self.peak_running = max(self.peak_running, len(self._ends))
