"""The poll stage: track every submitted job until the server says it is done, spending few requests.

poll_mode `feed` (and `auto`, the default) follows the job listing (`watch`): one request each interval
sees every job in flight change, and a job is polled on its own only when the listing leaves it silent
for too long, when a row lacks what we need, or when it was sent in an earlier session. poll_mode
`per-job` (and `auto` once the listing proved unreliable) polls each job on its own, when it can
plausibly be done (see `schedule`). Either way a small pool of workers does the GETs of `tracking`'s
heap; finished jobs go to the downloaders; their durations teach the schedule when to look next time.
"""

from __future__ import annotations

import asyncio
import logging

from pipeline.api.answers import FINAL_FAILED, FINAL_OK
from pipeline.errors import ApiError, AuthError, RunHalted, TransientApiError
from pipeline.run.context import Completion, RunContext, Submission
from pipeline.run.schedule import PollTiming, first_poll_delay, next_poll_delay, verify_delay
from pipeline.run.tracking import Board, Tracked, again, give_up, note_status, settle
from pipeline.run.watch import Watch

log = logging.getLogger(__name__)

POLL_WORKERS = 4


async def poll(ctx: RunContext, submitted: asyncio.Queue[Submission | None],
               finished: asyncio.Queue[Completion | None], *, downloaders: int) -> None:
    """Track every submitted job until the submit stage closed and every job is done; then close `finished`
    (`downloaders` Nones)."""
    loop = asyncio.get_running_loop()
    settings = ctx.settings
    timing = PollTiming(settings.poll_first_delay_s, settings.poll_min_interval_s, settings.poll_max_interval_s,
                        feed_interval_s=settings.feed_interval_s)
    board = Board()
    watch = Watch(ctx, board, finished, timing) if settings.poll_mode != "per-job" else None
    if watch is not None:
        await watch.start()
    else:
        await ctx.journal.write("poll-mode", mode="per-job", setting=settings.poll_mode)
    due: asyncio.Queue[Tracked | None] = asyncio.Queue(maxsize=POLL_WORKERS)

    async def intake() -> None:
        while (item := await submitted.get()) is not None:
            job = Tracked(item.key, item.job_id, item.submitted_at)
            board.track(job)
            if watch is not None and watch.active:
                await watch.track(job)
            else:
                delay = first_poll_delay(ctx.durations, timing, eager=ctx.in_flight.waiting > 0)
                board.schedule(job, item.submitted_at + delay)
        board.close_intake()

    async def wake_on_halt() -> None:
        await ctx.stop.halted.wait()
        board.halt()

    async def dispatch() -> None:
        while not ctx.stop.halted.is_set():
            job = await board.next_due(loop, ctx.stop.halted)
            if job is not None:
                await due.put(job)
                continue
            if board.finished_all or ctx.stop.halted.is_set():  # changed() would wait for ever after a halt
                break
            await board.changed()
        halt_watch.cancel()
        for _ in range(POLL_WORKERS):
            await due.put(None)

    async def work() -> None:
        while (job := await due.get()) is not None:
            try:
                await _poll_once(ctx, board, watch, job, finished, timing)
            finally:
                job.polling = False
                board.wake()

    async with asyncio.TaskGroup() as group:
        halt_watch = group.create_task(wake_on_halt())
        group.create_task(intake())
        group.create_task(dispatch())
        if watch is not None:
            group.create_task(watch.run())
        for _ in range(POLL_WORKERS):
            group.create_task(work())
    for _ in range(downloaders):  # close the downloaders' stream (not on error: the group cancels all)
        await finished.put(None)


async def _poll_once(ctx: RunContext, board: Board, watch: Watch | None, job: Tracked,
                     finished: asyncio.Queue[Completion | None], timing: PollTiming) -> None:
    loop = asyncio.get_running_loop()
    try:
        view = await ctx.api.job(job.job_id)
    except AuthError as exc:
        ctx.stop.halt("auth", f"the API refused the credentials ({exc.message})")
        return  # still `submitted` in the journal: the resume polls it
    except RunHalted:
        return  # likewise
    except TransientApiError as exc:
        log.warning("poll of job %s kept failing (%s); trying again later", job.job_id, exc.message)
        await again(ctx, board, job, ctx.settings.poll_max_interval_s)
        return
    except ApiError as exc:
        if exc.status == 404:  # the server gave us this id: the job exists and is paid, whatever this answer says
            await give_up(ctx, board, job, "not-found",
                          f"the server answered 404 (not found) for job {job.job_id}, which it created for us; it is "
                          f"left submitted, never resent: the next run polls it again (check the API key's "
                          f"project if this persists)")
            return
        log.warning("poll of job %s: %s; trying again later", job.job_id, exc)
        await again(ctx, board, job, ctx.settings.poll_max_interval_s)
        return
    if job.done:
        return  # the listing told first
    job.polls += 1
    following = watch is not None and watch.active
    if view.status in FINAL_OK or view.status in FINAL_FAILED:
        if following:
            assert watch is not None
            await watch.polled_final(job, view)
        if not job.done:
            await settle(ctx, board, job, view, finished)
        return
    await note_status(ctx, job, view, every_change=True)
    job.fetch = False  # a row said finished, its job says running: back to waiting for the listing
    if following:
        job.checks += 1
        await again(ctx, board, job, verify_delay(ctx.durations, timing, checks=job.checks))
        return
    delay = next_poll_delay(elapsed_s=loop.time() - job.submitted_at, status=view.status, progress=view.progress,
                            polls=job.polls, model=ctx.durations, timing=timing, eager=ctx.in_flight.waiting > 0)
    await again(ctx, board, job, delay)
