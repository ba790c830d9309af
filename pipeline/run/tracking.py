"""The jobs the poll stage tracks until the server says they are done, and what an answer does to one.

`Board` holds every tracked job by id, and a heap of when each is next polled on its own (a job is
rescheduled by pushing it again: older entries are skipped when they come up). The job listing
(`watch`) and the poll workers (`poll`) both answer for jobs; the first to see one finished settles it
(`settle`: journal, in-flight place, downloaders) and the other's answer is dropped.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from dataclasses import dataclass, field

from pipeline.api.answers import FINAL_OK, KNOWN_RUNNING, JobView
from pipeline.run.context import Completion, RunContext

log = logging.getLogger(__name__)

WAITING = ("pending", "queued")  # statuses of a job not running yet (the others of the notes run, or end)


@dataclass(slots=True, eq=False)
class Tracked:
    """A job being tracked: when it was submitted, what it last said, when it is next polled on its own."""

    key: str
    job_id: str
    submitted_at: float  # loop time
    polls: int = 0
    status: str = "queued"
    progress: float | None = None
    updated_s: float | None = None  # updatedAt of the last answer (Unix time)
    checks: int = 0  # polls of its own while the listing is followed (it stayed silent too long)
    fetch: bool = False  # the listing showed it finished without its results: it is fetched by id
    earlier: bool = False  # sent in an earlier session (its end may predate this session's listings)
    due_at: float = float("inf")  # loop time of its next poll of its own
    polling: bool = False  # a poll worker is asking for it now
    done: bool = False


@dataclass(slots=True)
class Board:
    """Every tracked job by id, and the heap of their next polls; wakes the dispatcher and the listing."""

    jobs: dict[str, Tracked] = field(default_factory=dict)
    intake_done: bool = False
    last_submitted_at: float = 0.0  # loop time of the latest submission tracked
    _heap: list[tuple[float, int, Tracked]] = field(default_factory=list)
    _seq: itertools.count = field(default_factory=itertools.count)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)  # the dispatcher: the heap or the board changed
    _quiet: asyncio.Event = field(default_factory=asyncio.Event)  # nothing left to track (or the run halted)
    _tracking: asyncio.Event = field(default_factory=asyncio.Event)  # at least one job tracked (or quiet)

    def track(self, job: Tracked) -> None:
        self.jobs[job.job_id] = job
        self.last_submitted_at = max(self.last_submitted_at, job.submitted_at)
        self._tracking.set()
        self._wake.set()

    def schedule(self, job: Tracked, at: float) -> None:
        """Poll `job` on its own at loop time `at` (instead of any time set before)."""
        if job.done:
            return
        job.due_at = at
        heapq.heappush(self._heap, (at, next(self._seq), job))
        self._wake.set()

    def done(self, job: Tracked) -> None:
        """The job needs no more answers (settled, or given up for this session)."""
        job.done = True
        self.jobs.pop(job.job_id, None)
        self._check_quiet()

    def close_intake(self) -> None:
        self.intake_done = True
        self._check_quiet()

    def halt(self) -> None:
        self._quiet.set()
        self._tracking.set()
        self._wake.set()

    @property
    def finished_all(self) -> bool:
        return self.intake_done and not self.jobs

    def _check_quiet(self) -> None:
        if not self.jobs:
            self._tracking.clear()
        if self.finished_all:
            self.halt()
        self._wake.set()

    async def next_due(self, loop: asyncio.AbstractEventLoop, halted: asyncio.Event) -> Tracked | None:
        """Wait until the earliest job is due, mark it polling and return it; None when none is scheduled or
        the run halted."""
        while not halted.is_set():
            while self._heap and self._stale(self._heap[0]):
                heapq.heappop(self._heap)
            if not self._heap:
                return None
            wait_s = self._heap[0][0] - loop.time()
            if wait_s <= 0:
                job = heapq.heappop(self._heap)[2]
                job.polling = True
                return job
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait_s)
            except TimeoutError:
                pass
        return None

    @staticmethod
    def _stale(entry: tuple[float, int, Tracked]) -> bool:
        at, _, job = entry
        return job.done or job.polling or at != job.due_at

    async def changed(self) -> None:
        """Until the heap or the board changes."""
        self._wake.clear()
        await self._wake.wait()

    def wake(self) -> None:
        self._wake.set()

    async def until_tracking(self) -> bool:
        """Until a job is tracked (True) or nothing is left to track (False)."""
        await self._tracking.wait()
        return not self._quiet.is_set()

    async def quiet_within(self, timeout_s: float) -> bool:
        """Whether nothing is left to track (or the run halted), waiting up to `timeout_s` for it."""
        if not self._quiet.is_set() and timeout_s > 0:
            try:
                await asyncio.wait_for(self._quiet.wait(), timeout=timeout_s)
            except TimeoutError:
                pass
        return self._quiet.is_set()


async def settle(ctx: RunContext, board: Board, job: Tracked, view: JobView,
                 finished: asyncio.Queue[Completion | None]) -> None:
    """A final answer (from the listing or a poll): journal it, free the in-flight place, hand the outputs on."""
    board.done(job)
    elapsed_s = asyncio.get_running_loop().time() - job.submitted_at
    ctx.durations.observe(view.duration_s if view.duration_s is not None else elapsed_s)
    if view.status in FINAL_OK:
        await ctx.journal.write("succeeded", key=job.key, asset_ids=list(view.asset_ids),
                                server_duration_s=view.duration_s, polls=job.polls, cost_cu=view.cost_cu)
        await ctx.in_flight.release()
        if not view.asset_ids:
            await ctx.journal.write("failed", key=job.key, reason="job-failed", error="success without outputs")
            return
        await finished.put(Completion(job.key, view.asset_ids))
        return
    await ctx.journal.write("failed", key=job.key, reason="job-failed", status=view.status,
                            error=view.error or f"job ended with status {view.status!r}", hint=view.hint,
                            cost_cu=view.cost_cu)
    await ctx.in_flight.release()


async def note_status(ctx: RunContext, job: Tracked, view: JobView, *, every_change: bool) -> None:
    """A running job's answer: remember it, journal what changed. `every_change` journals each new status or
    progress (a poll's answer); else only a move between waiting and running (the listing reports every
    status a job passes through: five lines a job would double the journal)."""
    if view.status not in KNOWN_RUNNING and view.status != job.status:
        log.info("job %s reports unknown status %r: treated as still running", job.job_id, view.status)
    if every_change:
        changed = view.status != job.status or (view.progress is not None and view.progress != job.progress)
    else:
        changed = (view.status in WAITING) != (job.status in WAITING)
    job.status, job.progress, job.updated_s = view.status, view.progress, view.updated_s
    if changed:
        await ctx.journal.write("status", key=job.key, status=view.status, progress=view.progress)


async def again(ctx: RunContext, board: Board, job: Tracked, delay_s: float) -> None:
    """Poll the job on its own in `delay_s`, unless it has been tracked for `job_timeout_s` already in this
    session.

    Then this session stops tracking it and frees its in-flight place. It stays submitted, never failed: it may
    still finish, it is paid for, and `--retry-failed` must not send it again. The next run polls it again."""
    loop = asyncio.get_running_loop()
    timeout_s = ctx.settings.job_timeout_s
    tracked_s = loop.time() - job.submitted_at
    if not timeout_s or tracked_s < timeout_s:  # the last poll comes at the timeout, not before
        board.schedule(job, loop.time() + (min(delay_s, timeout_s - tracked_s) if timeout_s else delay_s))
        return
    await give_up(ctx, board, job, "timeout", f"still {job.status!r} on the server after {tracked_s:.1f}s of "
                                              f"polling (job_timeout_s); the next run polls it again")


async def give_up(ctx: RunContext, board: Board, job: Tracked, reason: str, error: str) -> None:
    """Stop tracking the job in this session: journaled as gave-up, still submitted (paid, never resent)."""
    board.done(job)
    log.warning("job %s: %s", job.job_id, error)
    await ctx.journal.write("gave-up", key=job.key, job_id=job.job_id, status=job.status, reason=reason, error=error)
    await ctx.in_flight.release()
