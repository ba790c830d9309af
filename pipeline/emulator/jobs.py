"""Job simulation without a task per job: state computed lazily from timestamps and two event heaps.

A job is `pending` for `pending_s`, then waits `queued` in a FIFO until one of
`max_running` slots frees; it then holds the slot for its own `run_s`
(`warming-up` the first 10%, `in-progress`, `finalizing` the last 10%) and ends
in its fate: `success`, `failure` or `canceled` (api-notes "Jobs", confirmed).
`JobBoard.advance(now_s)` replays every arrival and end up to `now_s` in time
order, starting waiting jobs at the exact moment a slot freed, so the timeline is
the same however rarely anyone looks. Pure: the caller passes the clock.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

WARMUP_SHARE = FINALIZING_SHARE = 0.1  # of the run
FINAL_STATUSES = ("success", "failure", "canceled")


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
    fate: str = "success"  # or "failure", "canceled"
    error: str | None = None  # metadata.error when the fate is not success
    hint: str | None = None  # metadata.hint
    cost_cu: float = 0.0
    warmup: bool = False  # reports an unknown status while queued and warming up (the unknown-status fault)
    stale_update: bool = False  # its status changes do not move its updatedAt (the stale-update fault)
    pad_bytes: int = 0
    queued_s: float | None = None
    started_s: float | None = None
    finished_s: float | None = None
    output_sha256: str | None = field(default=None, repr=False)  # cached once computed
    marks: tuple[tuple[Any, ...], list[tuple[str, float]]] | None = field(default=None, repr=False)  # `history`
    output_size: int | None = None

    @property
    def finished(self) -> bool:
        return self.finished_s is not None

    @property
    def succeeded(self) -> bool:
        return self.finished_s is not None and self.fate == "success"


@dataclass(frozen=True, slots=True)
class JobView:
    """What `GET /v1/jobs/{jobId}` reports at one instant."""

    status: str
    progress: float
    updated_s: float  # when the status began (updatedAt), unless changes do not move it (stale_update)


def history(job: Job, *, unknown_status: str) -> list[tuple[str, float]]:
    """Every status the job has taken so far (as far as the board has advanced), with when it began.

    A status that lasted no time (a free slot skips `queued`) is left out; the last one always stays.
    Kept on the job until the board moves it on (listings of thousands of jobs ask for it on every page)."""
    key = (job.queued_s, job.started_s, job.finished_s, job.fate, job.warmup, unknown_status)
    if job.marks is None or job.marks[0] != key:
        job.marks = (key, _history(job, unknown_status=unknown_status))
    return job.marks[1]


def _history(job: Job, *, unknown_status: str) -> list[tuple[str, float]]:
    marks: list[tuple[str, float]] = [("pending", job.created_s)]
    if job.queued_s is not None:
        marks.append((unknown_status if job.warmup else "queued", job.queued_s))
    if job.started_s is not None:
        run = job.run_s
        marks += [(unknown_status if job.warmup else "warming-up", job.started_s),
                  ("in-progress", job.started_s + run * WARMUP_SHARE),
                  ("finalizing", job.started_s + run * (1 - FINALIZING_SHARE))]
    if job.finished_s is not None:
        marks.append((job.fate, job.finished_s))
    kept: list[tuple[str, float]] = []
    for (status, at_s), later in zip(marks, [*marks[1:], None]):
        if later is not None and later[1] <= at_s:
            continue
        if kept and kept[-1][0] == status:
            continue
        kept.append((status, at_s))
    return kept


def view(job: Job, now_s: float, *, unknown_status: str) -> JobView:
    """The status, progress (0..1) and last-change time of a job at `now_s` (after `advance(now_s)`); a job hit
    by the stale-update fault keeps its creation time as its last change."""
    seen = _view(job, now_s, unknown_status=unknown_status)
    return JobView(seen.status, seen.progress, job.created_s) if job.stale_update else seen


def _view(job: Job, now_s: float, *, unknown_status: str) -> JobView:
    status, since_s = next((mark for mark in reversed(history(job, unknown_status=unknown_status))
                            if mark[1] <= now_s), ("pending", job.created_s))
    if status in FINAL_STATUSES:
        return JobView(status, 1.0, since_s)
    if status == "finalizing":
        return JobView(status, 0.99, since_s)
    if status != "in-progress" or job.started_s is None:
        return JobView(status, 0.0, since_s)
    span_s = job.run_s * (1 - WARMUP_SHARE - FINALIZING_SHARE)
    progress = min(0.99, (now_s - since_s) / span_s) if span_s > 0 else 0.99
    return JobView(status, round(max(0.0, progress), 3), since_s)


class JobBoard:
    """Every job of one account: arrivals (pending), the waiting queue and the heap of running jobs' ends."""

    def __init__(self, *, max_running: int) -> None:
        self.max_running = max_running
        self._jobs: dict[str, Job] = {}
        self._arrivals: list[tuple[float, int, Job]] = []  # (queued time, tie-breaker, job)
        self._waiting: deque[Job] = deque()
        self._ends: list[tuple[float, int, Job]] = []  # (end time, tie-breaker, job)
        self._created: list[float] = []  # creation times, in the order of `_jobs` (never decreasing)
        self._ended: list[Job] = []  # finished jobs in the order they ended
        self._ended_s: list[float] = []  # ... and when
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
    def pending(self) -> int:
        return len(self._arrivals)

    @property
    def in_flight(self) -> int:
        """Jobs not final: pending, queued and running."""
        return len(self._ends) + len(self._waiting) + len(self._arrivals)

    def get(self, job_id: str) -> Job | None:
        """The job with this id (call `advance` first for a current timeline)."""
        return self._jobs.get(job_id)

    def created_since(self, since_s: float) -> list[Job]:
        """The jobs created after `since_s` (loop time), without looking at the others."""
        start = bisect.bisect_right(self._created, since_s)
        return list(itertools.islice(self._jobs.values(), start, None))

    def changed_since(self, since_s: float) -> list[Job]:
        """Every job that may have changed after `since_s` (loop time): the unfinished ones and those that ended
        since (a job's last change is never after its end), without looking at the others."""
        ended = self._ended[bisect.bisect_right(self._ended_s, since_s):]
        return [*(job for _, _, job in self._arrivals), *self._waiting, *(job for _, _, job in self._ends), *ended]

    def add(self, job: Job, now_s: float, *, pending_s: float = 0.0) -> list[Job]:
        """A new job at `now_s`, queued after `pending_s`; returns the jobs that finished up to then (as `advance`)."""
        finished = self.advance(now_s)
        self._jobs[job.job_id] = job
        self._created.append(job.created_s)
        self._seq += 1
        heapq.heappush(self._arrivals, (now_s + pending_s, self._seq, job))
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        return finished + self.advance(now_s)

    def advance(self, now_s: float) -> list[Job]:
        """Replay every arrival and end up to `now_s` in time order (an end first at a tie, so its slot is free);
        returns the jobs that finished."""
        finished = []
        while True:
            end_s = self._ends[0][0] if self._ends else float("inf")
            arrival_s = self._arrivals[0][0] if self._arrivals else float("inf")
            if min(end_s, arrival_s) > now_s:
                return finished
            if end_s <= arrival_s:
                _, _, job = heapq.heappop(self._ends)
                job.finished_s = end_s
                finished.append(job)
                self._ended.append(job)
                self._ended_s.append(end_s)
                self._fill(end_s)
            else:
                _, _, job = heapq.heappop(self._arrivals)
                job.queued_s = arrival_s
                self._waiting.append(job)
                self._fill(arrival_s)

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
