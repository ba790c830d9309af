"""Watching every job in flight with one listing: `GET /v1/jobs?type=custom&updatedAfter=T&hideResults=false`.

One listing (every page) each interval (`schedule.feed_interval`) shows every job that changed since the
last one, whether 4 or 4,000 are in flight (`cursor` says where each listing starts). A finished job is
settled at once; a final row without its results is fetched by id; a running one is noted and its
own poll put off; rows of jobs this run does not track (other tools on the account, or a job whose POST
answer is still on its way) are remembered for a while and otherwise ignored.

Trust, but verify: a job the listing leaves silent for much longer than jobs like it take is polled on its
own (`schedule.verify_delay`), and so is every job sent in an earlier session (it may have ended before
this session's first listing). A job such a poll finds finished although the listing had moved past its
last change is one the listing missed: with poll_mode `auto`, a few of them (`cursor.unreliable`) make the
run fall back to polling each job on its own, and say why (log, progress line, journal, results.json).
A listing the API refuses, or one that keeps failing, falls back in any mode.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

from pipeline.api.answers import JobView, iso_z
from pipeline.api.budget import SUBMIT
from pipeline.api.listing import list_jobs
from pipeline.errors import ApiError, AuthError, RunHalted, TransientApiError
from pipeline.run.context import Completion, RunContext
from pipeline.run.cursor import FeedCursor, FeedRow, read_row, unreliable
from pipeline.run.schedule import PollTiming, feed_interval, first_poll_delay, verify_delay
from pipeline.run.tracking import Board, Tracked, again, note_status, settle

log = logging.getLogger(__name__)

STRANGERS_KEPT = 10_000  # rows of untracked jobs remembered, in case one turns out ours (its POST answer late)
FAILED_LISTINGS_TO_FALL_BACK = 5  # listings in a row that failed after their retries
RECHECK_S = 0.25  # between listings, how often the interval is chosen again (jobs may start waiting for a place)


class Watch:
    """The job listing followed as a feed of changes, for the jobs on `board`, until it falls back."""

    def __init__(self, ctx: RunContext, board: Board, finished: asyncio.Queue[Completion | None],
                 timing: PollTiming) -> None:
        self._ctx, self._board, self._finished, self._timing = ctx, board, finished, timing
        self.setting = ctx.settings.poll_mode  # "auto" or "feed"
        self.active = True  # False once fallen back to polling each job
        self.session_start_s = time.time()
        self.cursor = FeedCursor.starting(self.session_start_s, overlap_s=ctx.settings.feed_overlap_s)
        self.listings = self.missed = self.seen_finished = self.fetched = 0
        self._failures = 0  # listings in a row that failed
        self._strangers: OrderedDict[str, FeedRow] = OrderedDict()
        self._told = False  # the log said how jobs are watched (once there is one: a run with nothing to do is quiet)

    async def start(self) -> None:
        await self._ctx.journal.write("poll-mode", mode="feed", setting=self.setting)

    async def track(self, job: Tracked) -> None:
        """A job to watch: when to poll it on its own, or what the listing already said of it."""
        if not self._told:
            self._told = True
            log.info("watching the jobs in flight with the job listing (poll_mode %s): one listing every %gs",
                     self.setting, self._timing.feed_interval_s)
        loop = asyncio.get_running_loop()
        state = self._ctx.journal.state.jobs.get(job.key)
        intent_s = state.intent_at if state is not None else None
        job.earlier = intent_s is None or intent_s < self.session_start_s  # sent before this session's listings
        seen = self._strangers.pop(job.job_id, None)
        if seen is not None:  # listed before its POST's answer reached us (or before a resume tracked it)
            await self._apply(job, seen)
            if job.done or not job.earlier:
                return
        if job.earlier:  # it may have ended before this session's first listing: ask it at once
            self._board.schedule(job, loop.time())
            return
        await again(self._ctx, self._board, job, verify_delay(self._ctx.durations, self._timing, checks=0))

    async def run(self) -> None:
        """List each interval while jobs are tracked; until nothing is left, the run halts or it falls back."""
        loop = asyncio.get_running_loop()
        ctx = self._ctx
        while self.active and await self._board.until_tracking():
            started = loop.time()
            await self._list()
            while self.active:
                # sooner while a finish noticed late leaves a place idle, or ends the run late: jobs wait for an
                # in-flight place, or every job has been sent and the last one sent may be done
                eager = ctx.in_flight.waiting > 0 or self._last_may_be_done(loop.time())
                interval_s = feed_interval(ctx.durations, self._timing, eager=eager,
                                           requests_per_s=ctx.api.pacing.current_per_s)
                left_s = started + interval_s - loop.time()
                if left_s <= 0:
                    break
                if await self._board.quiet_within(min(left_s, RECHECK_S)):
                    return

    def _last_may_be_done(self, now: float) -> bool:
        """Every job has been sent, and the last one sent has run as long as a typical job."""
        typical_s = self._ctx.durations.quantile(0.5)
        return self._board.intake_done and now >= self._board.last_submitted_at + (
            typical_s if typical_s is not None else self._timing.first_delay_s)

    async def _list(self) -> None:
        """One listing, every page, applied to the tracked jobs."""
        ctx = self._ctx
        params = {"type": "custom", "updatedAfter": iso_z(self.cursor.after_s), "hideResults": "false"}
        try:
            # one request an interval that frees the in-flight places of every finished job: it goes with the
            # submissions, before polls and lookups (else a run that keeps the budget busy would starve it)
            rows = await list_jobs(ctx.api, params, priority=SUBMIT, retries=ctx.settings.max_retries)
        except AuthError as exc:
            if exc.status == 401:
                ctx.stop.halt("auth", f"the API refused the credentials ({exc.message})")
            else:  # a key that may not list jobs: the polls of each job tell whether it may do the rest
                await self.fall_back(f"the API refused the job listing ({exc})")
            return
        except RunHalted:
            return
        except TransientApiError as exc:
            if exc.status == 0 and ctx.api.connectivity.down:  # an outage: wait it out, it proves nothing
                await ctx.api.connectivity.wait_up(ctx.stop.halted)
                return
            await self._failed(exc)
            return
        except ApiError as exc:
            if 400 <= exc.status < 500:
                await self.fall_back(f"the API refused the job listing ({exc})")
            else:
                await self._failed(exc)
            return
        self._failures = 0
        self.listings += 1
        stamps = []
        for raw in rows:
            row = read_row(raw)
            if row is None:
                continue
            if row.view.updated_s is not None:
                stamps.append(row.view.updated_s)
            job = self._board.jobs.get(row.view.job_id)
            if job is None:
                self._remember(row)
            elif not job.done:
                await self._apply(job, row)
        if rows and not stamps:
            await self.fall_back("the job listing's rows carry no readable updatedAt, so changes cannot be followed")
            return
        self.cursor.advance(stamps)

    async def _apply(self, job: Tracked, row: FeedRow) -> None:
        """What one listed row says of a tracked job."""
        view, loop = row.view, asyncio.get_running_loop()
        if row.final:
            if job.fetch:
                return  # fetched by id already
            if not row.complete:  # the row lacks what a finished job needs (unconfirmed that rows carry it)
                job.fetch = True
                self.fetched += 1
                if not job.polling:
                    self._board.schedule(job, loop.time())
                return
            self.seen_finished += 1
            await settle(self._ctx, self._board, job, view, self._finished)
            return
        if view.status == job.status and view.updated_s == job.updated_s:
            return  # listed again (the overlap): no news
        await note_status(self._ctx, job, view, every_change=False)
        if not job.polling:
            await again(self._ctx, self._board, job,
                        verify_delay(self._ctx.durations, self._timing, checks=job.checks))

    def _remember(self, row: FeedRow) -> None:
        self._strangers[row.view.job_id] = row
        self._strangers.move_to_end(row.view.job_id)
        while len(self._strangers) > STRANGERS_KEPT:
            self._strangers.popitem(last=False)

    async def polled_final(self, job: Tracked, view: JobView) -> None:
        """A job's own poll found it finished: if the listing should have shown that already, count it missed
        (with `auto`, enough of them make the run fall back)."""
        if job.fetch or job.earlier or not self.cursor.missed(view.updated_s):
            return  # the listing showed it finished, or it may have ended before this session's listings
        self.missed += 1
        log.info("job %s: found %s by its own poll, but the job listing never showed it (%d such job(s))",
                 job.job_id, view.status, self.missed)
        if self.setting == "auto" and unreliable(self.missed, self.seen_finished):
            await self.fall_back(f"the job listing did not show {self.missed} finished job(s) that their own "
                                 f"polls found done")

    async def _failed(self, exc: ApiError) -> None:
        self._failures += 1
        log.warning("the job listing failed (%s); the next one comes in a moment (%d in a row)", exc,
                    self._failures)
        if self._failures >= FAILED_LISTINGS_TO_FALL_BACK:
            await self.fall_back(f"the job listing failed {self._failures} times in a row ({exc})")

    async def fall_back(self, why: str) -> None:
        """Poll every job on its own from now on, for the rest of this run; say so everywhere."""
        if not self.active:
            return
        self.active = False
        ctx, loop = self._ctx, asyncio.get_running_loop()
        ctx.polling = f"each job polled on its own: {why}"
        log.warning("%s: polling each job on its own for the rest of the run (more requests per job)", why)
        await ctx.journal.write("poll-mode", mode="per-job", setting=self.setting, why=why, missed=self.missed)
        eager = ctx.in_flight.waiting > 0
        for job in list(self._board.jobs.values()):
            if not job.polling:
                first_s = first_poll_delay(ctx.durations, self._timing, eager=eager)
                self._board.schedule(job, max(loop.time(), job.submitted_at + first_s))
