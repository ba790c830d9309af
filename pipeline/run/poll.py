"""The poll stage: track every submitted job until the server says it is done, spending few requests.

A scheduler keeps the jobs in a heap by their next poll time (see `schedule`); a
small pool of workers does the GETs. Finished jobs go to the downloaders; their
observed durations teach the schedule when to look next time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from dataclasses import dataclass, field

from pipeline.api.answers import FINAL_FAILED, FINAL_OK, KNOWN_RUNNING
from pipeline.run.context import Completion, RunContext, Submission
from pipeline.errors import ApiError, AuthError, RunHalted, TransientApiError
from pipeline.run.schedule import PollTiming, first_poll_delay, next_poll_delay

log = logging.getLogger(__name__)

POLL_WORKERS = 4


@dataclass(slots=True)
class Tracked:
    """A job being polled: when it was submitted, how often polled, what it last said."""

    key: str
    job_id: str
    submitted_at: float
    polls: int = 0
    status: str = "queued"
    progress: float | None = None


@dataclass(slots=True)
class PollScheduler:
    """The heap of tracked jobs by due time, fed by the submit stage and by the poll workers."""

    timing: PollTiming
    _heap: list[tuple[float, int, Tracked]] = field(default_factory=list)
    _seq: itertools.count = field(default_factory=itertools.count)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    busy: int = 0  # jobs handed to a worker and not rescheduled or finished yet

    def schedule(self, job: Tracked, at: float) -> None:
        heapq.heappush(self._heap, (at, next(self._seq), job))
        self._wake.set()

    def __len__(self) -> int:
        return len(self._heap) + self.busy

    async def next_due(self, loop: asyncio.AbstractEventLoop, halted: asyncio.Event) -> Tracked | None:
        """Wait until the earliest job is due and return it; None when the heap is empty or halted."""
        while self._heap and not halted.is_set():
            due_at = self._heap[0][0]
            wait_s = due_at - loop.time()
            if wait_s <= 0:
                self.busy += 1
                return heapq.heappop(self._heap)[2]
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait_s)
            except TimeoutError:
                pass
        return None

    async def changed(self) -> None:
        self._wake.clear()
        await self._wake.wait()


async def poll(ctx: RunContext, submitted: asyncio.Queue[Submission | None],
               finished: asyncio.Queue[Completion | None], *, downloaders: int) -> None:
    """Run the scheduler and its workers until the submit stage closed and every job is done."""
    loop = asyncio.get_running_loop()
    scheduler = PollScheduler(PollTiming(ctx.settings.poll_first_delay_s, ctx.settings.poll_min_interval_s,
                                         ctx.settings.poll_max_interval_s))
    due: asyncio.Queue[Tracked | None] = asyncio.Queue(maxsize=POLL_WORKERS)
    intake_done = asyncio.Event()

    async def intake() -> None:
        while (item := await submitted.get()) is not None:
            delay = first_poll_delay(ctx.durations, scheduler.timing, eager=ctx.in_flight.waiting > 0)
            scheduler.schedule(Tracked(item.key, item.job_id, item.submitted_at),
                               item.submitted_at + delay)
        intake_done.set()
        scheduler._wake.set()

    async def wake_on_halt() -> None:
        await ctx.stop.halted.wait()
        scheduler._wake.set()

    async def dispatch() -> None:
        while not ctx.stop.halted.is_set():
            job = await scheduler.next_due(loop, ctx.stop.halted)
            if job is not None:
                await due.put(job)
                continue
            if intake_done.is_set() and len(scheduler) == 0:
                break
            if ctx.stop.halted.is_set():  # changed() would clear the wake-up the halt just set, and wait for ever
                break
            await scheduler.changed()
        halt_watch.cancel()
        for _ in range(POLL_WORKERS):
            await due.put(None)

    async def work() -> None:
        while (job := await due.get()) is not None:
            try:
                await _poll_once(ctx, job, scheduler, finished, loop)
            finally:
                scheduler.busy -= 1
                scheduler._wake.set()

    async with asyncio.TaskGroup() as group:
        halt_watch = group.create_task(wake_on_halt())
        group.create_task(intake())
        group.create_task(dispatch())
        for _ in range(POLL_WORKERS):
            group.create_task(work())
    for _ in range(downloaders):  # close the downloaders' stream (not on error: the group cancels all)
        await finished.put(None)


async def _poll_once(ctx: RunContext, job: Tracked, scheduler: PollScheduler,
                     finished: asyncio.Queue[Completion | None], loop: asyncio.AbstractEventLoop) -> None:
    try:
        view = await ctx.api.job(job.job_id)
    except AuthError as exc:
        ctx.stop.halt("auth", f"the API refused the credentials ({exc.message})")
        return  # still `submitted` in the journal: the resume polls it
    except RunHalted:
        return  # likewise
    except TransientApiError as exc:
        log.warning("poll of job %s kept failing (%s); trying again later", job.job_id, exc.message)
        await _again(ctx, job, scheduler, loop, ctx.settings.poll_max_interval_s)
        return
    except ApiError as exc:
        if exc.status == 404:  # the server gave us this id: the job exists and is paid, whatever this answer says
            await _give_up(ctx, job, "not-found", f"the server answered 404 (not found) for job {job.job_id}, which it "
                                     f"created for us; it is left submitted, never resent: the next run polls it "
                                     f"again (check the API key's project if this persists)")
            return
        log.warning("poll of job %s: %s; trying again later", job.job_id, exc)
        await _again(ctx, job, scheduler, loop, ctx.settings.poll_max_interval_s)
        return
    job.polls += 1
    elapsed_s = loop.time() - job.submitted_at
    if view.status in FINAL_OK:
        ctx.durations.observe(view.duration_s if view.duration_s is not None else elapsed_s)
        await ctx.journal.write("succeeded", key=job.key, asset_ids=list(view.asset_ids),
                                server_duration_s=view.duration_s, polls=job.polls, cost_cu=view.cost_cu)
        await ctx.in_flight.release()
        if not view.asset_ids:
            await ctx.journal.write("failed", key=job.key, reason="job-failed", error="success without outputs")
            return
        await finished.put(Completion(job.key, view.asset_ids))
        return
    if view.status in FINAL_FAILED:
        ctx.durations.observe(view.duration_s if view.duration_s is not None else elapsed_s)
        await ctx.journal.write("failed", key=job.key, reason="job-failed", status=view.status,
                                error=view.error or f"job ended with status {view.status!r}", hint=view.hint,
                                cost_cu=view.cost_cu)
        await ctx.in_flight.release()
        return
    if view.status not in KNOWN_RUNNING and view.status != job.status:
        log.info("job %s reports unknown status %r: treated as still running", job.job_id, view.status)
    if view.status != job.status or (view.progress is not None and view.progress != job.progress):
        job.status, job.progress = view.status, view.progress
        await ctx.journal.write("status", key=job.key, status=view.status, progress=view.progress)
    delay = next_poll_delay(elapsed_s=elapsed_s, status=view.status, progress=view.progress,
                            polls=job.polls, model=ctx.durations, timing=scheduler.timing,
                            eager=ctx.in_flight.waiting > 0)
    await _again(ctx, job, scheduler, loop, delay)


async def _again(ctx: RunContext, job: Tracked, scheduler: PollScheduler, loop: asyncio.AbstractEventLoop,
                 delay_s: float) -> None:
    """Poll the job again in `delay_s`, unless it has been polled for `job_timeout_s` already in this session.

    Then this session stops polling it and frees its in-flight place. It stays submitted, never failed: it may
    still finish, it is paid for, and `--retry-failed` must not send it again. The next run polls it again."""
    timeout_s = ctx.settings.job_timeout_s
    tracked_s = loop.time() - job.submitted_at
    if not timeout_s or tracked_s < timeout_s:  # the last poll comes at the timeout, not before
        scheduler.schedule(job, loop.time() + (min(delay_s, timeout_s - tracked_s) if timeout_s else delay_s))
        return
    await _give_up(ctx, job, "timeout", f"still {job.status!r} on the server after {tracked_s:.1f}s of polling "
                             f"(job_timeout_s); the next run polls it again")


async def _give_up(ctx: RunContext, job: Tracked, reason: str, error: str) -> None:
    """Stop polling the job in this session: journaled as gave-up, still submitted (paid, never resent)."""
    log.warning("job %s: %s", job.job_id, error)
    await ctx.journal.write("gave-up", key=job.key, job_id=job.job_id, status=job.status, reason=reason, error=error)
    await ctx.in_flight.release()
