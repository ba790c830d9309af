"""One run: build the budget, queues and stages inside one TaskGroup, resume from the journal, shut down in order.

Flow: uploads → producer → submit workers → poller → URL batches → downloaders; every queue is
bounded; each stage closes the next by sending None. A halt (the first SIGINT/SIGTERM,
credentials refused, the disk unwritable) stops submitting and polling and gives what is
under way `shutdown_grace_s` to finish, whatever the in-flight cap; a second signal
cancels at once. The journal is valid at every instant; results.json is rewritten at
the end whatever happened.

The run walks its manifest at most once, at the start (how its jobs stand, for the opening lines), through a
`Roster` that keeps every job's key (32 bytes a job; a checked manifest hands over the keys its check hashed,
and then nothing is walked); the producer, the tally and results.json read the roster and the journal,
building a job again from its index (not hashing it) only where they need it whole. At the end the journal
leaves a snapshot of its state for the next session, and results.json keeps its jobs part when nothing its
records are made of changed (`jobs_mark`).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from pipeline import __version__
from pipeline.api.budget import RequestBudget
from pipeline.api.client import ApiClient
from pipeline.api.retry import backoff_s
from pipeline.config import Credentials, Settings
from pipeline.errors import InputError, PipelineError
from pipeline.gcpause import freeze_long_lived
from pipeline.ledger.journal import Journal, JournalError
from pipeline.ledger.replay import JOURNAL_NAME
from pipeline.ledger.results import jobs_mark, records
from pipeline.ledger.standing import standing
from pipeline.run.context import Completion, InFlight, RunContext, RunnableManifest, StopFlags, Submission
from pipeline.run.download import download
from pipeline.run.limit import Limit
from pipeline.run.outcome import RunSummary, run_record, save_results, summarize, summary_text, tally
from pipeline.run.poll import poll
from pipeline.run.produce import SUBMIT_WORKERS, feed
from pipeline.run.progress import Progress, opening_lines
from pipeline.run.resolve import resolve
from pipeline.run.roster import Roster
from pipeline.run.shutdown import grace_after_halt, install_signals, remove_signals
from pipeline.spec import JobSpec

__all__ = ["RunOptions", "RunSummary", "run_lock", "run_manifest", "summary_text"]

log = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class RunOptions:
    """Per-invocation choices (not tunables): what to do with failed and unknown jobs, how to show progress."""

    retry_failed: bool = False
    resubmit_unknown: bool = False
    download_strays: bool = False  # save the outputs of stray server jobs (a body made twice) under videos/strays
    progress: str = "log"  # "live" | "log" | "off"
    manifest_path: str = ""
    on_finish: Callable[[Path], Any] | None = None  # e.g. write the HTML report
    freeze_long_lived: bool = False  # the process's own run: keep start-up objects out of GC (see gcpause)
    limit: Limit | None = None  # run --limit: send only the jobs it picks (the rest stay pending)
    lock_held: bool = False  # the caller holds run_lock(run_dir) already (the CLI, before the emulator starts)


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """One process per run folder: a second concurrent run would pay twice. The CLI takes it before it starts
    anything (the emulator), so a refusal is all a second run prints; it then says so (`RunOptions.lock_held`)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = (run_dir / ".lock").open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise InputError(f"another ltx-batch process is running in {run_dir}") from None
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


async def run_manifest(manifest: RunnableManifest, settings: Settings, credentials: Credentials,
                       run_dir: Path, options: RunOptions) -> RunSummary:
    """Run (or resume) every job of the manifest into `run_dir`; never raises for one job's failure."""
    with nullcontext() if options.lock_held else run_lock(run_dir):
        journal = Journal(run_dir / JOURNAL_NAME, keep_specs=False, snapshot=True)
        if options.freeze_long_lived:
            log.debug("%d start-up objects (modules, the replayed journal) kept out of GC", freeze_long_lived())
        try:
            return await _run(manifest, settings, credentials, run_dir, options, journal)
        except BaseExceptionGroup as group:  # a stage stopped on one of our errors: that error, not a traceback
            raise _our_error(group) from None
        finally:
            journal.close()


def _our_error(group: BaseExceptionGroup) -> BaseException:
    """The first PipelineError of a TaskGroup's errors when all of them are ours; else the group itself."""
    ours, other = group.split(PipelineError)
    if ours is None or other is not None:
        return group
    error: BaseException = ours
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


async def _run(manifest: RunnableManifest, settings: Settings, credentials: Credentials, run_dir: Path,
               options: RunOptions, journal: Journal) -> RunSummary:
    started = time.monotonic()
    roster = Roster(manifest)  # every job's key by index, noted by the run's one walk over the manifest: this one
    opening = standing(roster.keyed(), journal.state, retry_failed=options.retry_failed,
                       resubmit_unknown=options.resubmit_unknown, chosen=options.limit)
    roster.complete()  # (standing walked every job; from here on the roster holds them all)
    for text in opening_lines(opening, run_dir=run_dir, resuming=bool(journal.state.runs), limit=options.limit):
        log.info("%s", text)
    await journal.write("run", manifest=options.manifest_path, name=manifest.name, model=manifest.model,
                        api_base_url=settings.api_base_url, job_count=manifest.job_count,
                        tool_version=__version__, pid=os.getpid(),
                        options={"retry_failed": options.retry_failed,
                                 "resubmit_unknown": options.resubmit_unknown,
                                 **({"limit": options.limit.to_json()} if options.limit else {})})
    stop = StopFlags()
    journal.on_disk_full = lambda message: stop.halt("storage", message)
    budget = RequestBudget(settings.max_requests_per_s, halted=stop.halted)
    in_flight = InFlight(settings.max_in_flight_jobs)
    stop.on_stop_submitting.append(in_flight.close)
    connector = aiohttp.TCPConnector(limit=max(32, settings.download_workers + 2 * SUBMIT_WORKERS + 8))
    async with aiohttp.ClientSession(connector=connector, raise_for_status=False) as session:
        api = ApiClient(session, settings, credentials, budget)
        ctx = RunContext(settings, journal, api, session, run_dir, in_flight, stop)
        progress = Progress(ctx, opening.scope, mode=options.progress)
        try:
            await _supervise(ctx, manifest, roster, options, progress)
        finally:
            try:
                journal.write_now("requests", **_request_figures(ctx))
                journal.write_now("end", reason=stop.reason)
            except JournalError as exc:  # what it holds is valid; the error itself surfaces from the stages
                log.error("%s", exc)
            ending = tally(roster, journal.state, options.limit)
            save_results(run_dir, run_record(manifest, journal.state, settings, started, api, stop, ending),
                         records(roster.jobs(), journal.state, journal=journal.path),
                         mark=jobs_mark(manifest.fingerprint, journal.records_mark))
            journal.save_snapshot()
    if options.on_finish is not None and stop.reason != "interrupted":
        await asyncio.to_thread(options.on_finish, run_dir)  # posters take seconds: keep the loop free
    return summarize(run_dir, manifest, settings, started, api, stop, ending)


async def _supervise(ctx: RunContext, manifest: RunnableManifest, roster: Roster, options: RunOptions,
                     progress: Progress) -> None:
    """Own every task in one TaskGroup; wire the signals to a staged shutdown."""
    loop = asyncio.get_running_loop()
    async with asyncio.TaskGroup() as group:
        stages = group.create_task(_stages(ctx, manifest, roster, options))
        reporter = group.create_task(progress.run())
        snapshots = group.create_task(_record_requests(ctx))
        prober = group.create_task(_probe_while_down(ctx))
        deadline = group.create_task(grace_after_halt(ctx, stages))
        signals = install_signals(loop, ctx, stages)
        try:
            await _wait(stages)
        finally:
            remove_signals(loop, signals)
            for task in (reporter, snapshots, prober, deadline):
                task.cancel()


async def _wait(task: asyncio.Task[None]) -> None:
    try:
        await task
    except asyncio.CancelledError:
        if task.cancelled() and not _current_cancelling():
            return  # the stages were cancelled by the shutdown, not us
        raise


def _current_cancelling() -> int:
    current = asyncio.current_task()
    return current.cancelling() if current is not None else 0


async def _record_requests(ctx: RunContext) -> None:
    """Note the request count and what the run waits for in the journal now and then, so `status` can show
    them mid-run (a cooldown sends nothing for minutes: its countdown is noted all the same)."""
    last: tuple[int, tuple[str, ...]] = (-1, ())
    while True:
        try:  # every 5 s, and at once when the API stops or starts answering
            await asyncio.wait_for(ctx.api.connectivity.changed(), timeout=5.0)
        except TimeoutError:
            pass
        if (ctx.api.requests, ctx.waits()) != last:
            last = (ctx.api.requests, ctx.waits())
            await ctx.journal.write("requests", **_request_figures(ctx))


async def _probe_while_down(ctx: RunContext) -> None:
    """While the API cannot be reached, send one cheap request now and then (backing off to
    poll_max_interval_s), so the run notices it is back even when no poll or download would ask."""
    connectivity = ctx.api.connectivity
    while not ctx.stop.halted.is_set():
        while not connectivity.down:
            await connectivity.changed()
        attempt = 0
        while connectivity.down and not ctx.stop.halted.is_set():
            attempt += 1
            await asyncio.sleep(backoff_s(attempt, base_s=ctx.settings.poll_min_interval_s,
                                          max_s=ctx.settings.poll_max_interval_s))
            if connectivity.down:
                await ctx.api.probe()


def _request_figures(ctx: RunContext) -> dict[str, Any]:
    """The session's running totals for a "requests" event: requests, 429s, the sending rate, current waits."""
    api = ctx.api
    return {"count": api.requests, "throttled": api.throttled, "rate_cuts": api.pacing.cuts,
            "sending_per_s": round(api.pacing.current_per_s, 3),
            "lowest_sending_per_s": round(api.pacing.lowest_per_s, 3), "waits": list(ctx.waits())}


async def _stages(ctx: RunContext, manifest: RunnableManifest, roster: Roster, options: RunOptions) -> None:
    in_flight = ctx.settings.max_in_flight_jobs
    to_submit: asyncio.Queue[JobSpec | None] = asyncio.Queue(maxsize=SUBMIT_WORKERS * 2)
    submitted: asyncio.Queue[Submission | None] = asyncio.Queue(maxsize=in_flight + SUBMIT_WORKERS)
    # `finished` is bounded by the jobs of the run, not by a batch: a job enters it at most once a session (the
    # producer's resumed downloads, or the poller's settle), so a put never waits. The poller must not wait for
    # the downloads: one listing frees the in-flight place of every finished job and notices every failure, and
    # a full queue stalled it (seconds at 300 jobs, R=10, while every in-flight place stayed taken). Bounded
    # smaller, downloads slower than generation would throttle paid generation through the listing; unbounded
    # in this way, they only leave a backlog, which loses nothing (URLs are resolved when taken; a halt leaves
    # the jobs succeeded in the journal, and the resume fetches them). The backlog costs ~180 bytes a job (a
    # Completion and its tuple of ids; the strings are the journal's): 18 MB if 100,000 jobs all finished
    # before one download, beside the journal state of every job that the run holds anyway.
    jobs = manifest.job_count + len(ctx.journal.state.jobs)
    finished: asyncio.Queue[Completion | None] = asyncio.Queue(maxsize=jobs + 1)  # and the closing None
    to_download: asyncio.Queue[Completion | None] = asyncio.Queue(maxsize=ctx.settings.download_workers * 2)
    async with asyncio.TaskGroup() as group:
        group.create_task(feed(ctx, manifest, roster, to_submit, submitted, finished,
                               retry_failed=options.retry_failed, resubmit_unknown=options.resubmit_unknown,
                               download_strays=options.download_strays, chosen=options.limit))
        group.create_task(poll(ctx, submitted, finished, downloaders=1))
        group.create_task(resolve(ctx, finished, to_download, downloaders=ctx.settings.download_workers))
        for _ in range(ctx.settings.download_workers):
            group.create_task(download(ctx, to_download))
