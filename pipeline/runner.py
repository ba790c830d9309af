"""One run: build the budget, queues and stages inside one TaskGroup, resume from the journal, shut down in order.

Flow: uploads → producer → submit workers → poller → downloaders; every queue is
bounded; each stage closes the next by sending None. The first SIGINT/SIGTERM stops
submitting and polling and gives running downloads `shutdown_grace_s`; a second one
cancels at once. The journal is valid at every instant; results.json is rewritten at
the end whatever happened.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from pipeline import __version__
from pipeline.api import ApiClient
from pipeline.budget import RequestBudget
from pipeline.gcpause import freeze_long_lived
from pipeline.config import Credentials, Settings
from pipeline.context import Completion, InFlight, RunContext, RunnableManifest, StopFlags, Submission
from pipeline.download import download
from pipeline.errors import AuthError, InputError, PipelineError
from pipeline.journal import Journal, JournalError
from pipeline.ledger import (
    DOWNLOADED,
    FAILED,
    JOURNAL_NAME,
    PENDING,
    SUBMITTED,
    SUCCEEDED,
    UNKNOWN,
)
from pipeline.outcome import RunSummary, save_results, summarize, summary_text, tally
from pipeline.poll import poll
from pipeline.progress import Progress
from pipeline.shutdown import install_signals, remove_signals
from pipeline.spec import JobSpec
from pipeline.rundir import lost_files
from pipeline.submit import submit

__all__ = ["RunOptions", "RunSummary", "run_manifest", "summary_text"]

log = logging.getLogger(__name__)

SUBMIT_WORKERS = 4


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Per-invocation choices (not tunables): what to do with failed and unknown jobs, how to show progress."""

    retry_failed: bool = False
    resubmit_unknown: bool = False
    progress: str = "log"  # "live" | "log" | "off"
    manifest_path: str = ""
    on_finish: Callable[[Path], Any] | None = None  # e.g. write the HTML report
    freeze_long_lived: bool = False  # the process's own run: keep start-up objects out of GC (see gcpause)


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """One process per run folder: a second concurrent run would pay twice."""
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
    with run_lock(run_dir):
        journal = Journal(run_dir / JOURNAL_NAME, keep_specs=False)
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
    await journal.write("run", manifest=options.manifest_path, name=manifest.name, model=manifest.model,
                        api_base_url=settings.api_base_url, job_count=manifest.job_count,
                        tool_version=__version__, pid=os.getpid(),
                        options={"retry_failed": options.retry_failed,
                                 "resubmit_unknown": options.resubmit_unknown})
    stop = StopFlags()
    journal.on_disk_full = lambda message: stop.halt("storage", message)
    budget = RequestBudget(settings.max_requests_per_s)
    connector = aiohttp.TCPConnector(limit=max(32, settings.download_workers + 2 * SUBMIT_WORKERS + 8))
    async with aiohttp.ClientSession(connector=connector, raise_for_status=False) as session:
        api = ApiClient(session, settings, credentials, budget)
        ctx = RunContext(settings, journal, api, session, run_dir, InFlight(settings.max_in_flight_jobs), stop)
        progress = Progress(ctx, manifest.job_count, mode=options.progress)
        try:
            await _supervise(ctx, manifest, options, progress)
        finally:
            try:
                journal.write_now("requests", count=api.requests)
                journal.write_now("end", reason=stop.reason)
            except JournalError as exc:  # what it holds is valid; the error itself surfaces from the stages
                log.error("%s", exc)
            ending = tally(manifest, journal)
            save_results(run_dir, manifest, journal, settings, started, api, stop, ending)
    if options.on_finish is not None and stop.reason != "interrupted":
        await asyncio.to_thread(options.on_finish, run_dir)  # posters take seconds: keep the loop free
    return summarize(run_dir, manifest, started, api, stop, ending)


async def _supervise(ctx: RunContext, manifest: RunnableManifest, options: RunOptions,
                     progress: Progress) -> None:
    """Own every task in one TaskGroup; wire the signals to a staged shutdown."""
    loop = asyncio.get_running_loop()
    async with asyncio.TaskGroup() as group:
        stages = group.create_task(_stages(ctx, manifest, options))
        reporter = group.create_task(progress.run())
        snapshots = group.create_task(_record_requests(ctx))
        signals = install_signals(loop, ctx, stages, group)
        try:
            await _wait(stages)
        finally:
            remove_signals(loop, signals)
            reporter.cancel()
            snapshots.cancel()


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
    """Note the request count in the journal now and then, so `status` can show it mid-run."""
    last = -1
    while True:
        await asyncio.sleep(5.0)
        if ctx.api.requests != last:
            last = ctx.api.requests
            await ctx.journal.write("requests", count=last)


async def _stages(ctx: RunContext, manifest: RunnableManifest, options: RunOptions) -> None:
    in_flight = ctx.settings.max_in_flight_jobs
    to_submit: asyncio.Queue[JobSpec | None] = asyncio.Queue(maxsize=SUBMIT_WORKERS * 2)
    submitted: asyncio.Queue[Submission | None] = asyncio.Queue(maxsize=in_flight + SUBMIT_WORKERS)
    finished: asyncio.Queue[Completion | None] = asyncio.Queue(maxsize=ctx.settings.download_workers * 2)
    async with asyncio.TaskGroup() as group:
        group.create_task(_submit_side(ctx, manifest, options, to_submit, submitted, finished))
        group.create_task(poll(ctx, submitted, finished, downloaders=ctx.settings.download_workers))
        for _ in range(ctx.settings.download_workers):
            group.create_task(download(ctx, finished))


async def _submit_side(ctx: RunContext, manifest: RunnableManifest, options: RunOptions,
                       to_submit: asyncio.Queue[JobSpec | None], submitted: asyncio.Queue[Submission | None],
                       finished: asyncio.Queue[Completion | None]) -> None:
    """Resume what the journal knows, upload inputs, produce and submit; then close `submitted`."""
    # what to resume is decided now, before any submit can change a job's state
    resumable = [(key, job.state) for key, job in ctx.journal.state.jobs.items()
                 if job.state in (SUBMITTED, SUCCEEDED, DOWNLOADED)
                 or (job.state == FAILED and job.error_kind == "download")]
    async with asyncio.TaskGroup() as group:
        group.create_task(_resume(ctx, resumable, submitted, finished))
        group.create_task(_produce(ctx, manifest, options, to_submit))
        try:
            asset_ids = await _upload_inputs(ctx, manifest)
        except AuthError as exc:
            ctx.stop.halt("auth", f"the API refused the credentials ({exc.message})")
            asset_ids = {}
        for _ in range(SUBMIT_WORKERS):
            group.create_task(submit(ctx, to_submit, submitted, asset_ids))
    await submitted.put(None)  # close the poller's inbound stream (not on error: the group cancels all)


async def _upload_inputs(ctx: RunContext, manifest: RunnableManifest) -> dict[str, str]:
    """Upload each distinct local input once (by content hash); reuse ids the journal remembers."""
    uploads = ctx.journal.state.uploads
    for ref in manifest.input_files():
        if ref.sha256 in uploads or ref.sha256 is None or ref.path is None:
            continue
        if ctx.stop.no_more_submits.is_set():
            break
        asset_id = await ctx.api.upload(Path(ref.path), param=ref.param)
        await ctx.journal.write("upload", sha256=ref.sha256, asset_id=asset_id, path=ref.path, param=ref.param)
        log.info("uploaded %s as %s", Path(ref.path).name, asset_id)
    return uploads


async def _resume(ctx: RunContext, resumable: list[tuple[str, str]], submitted: asyncio.Queue[Submission | None],
                  finished: asyncio.Queue[Completion | None]) -> None:
    """Send the journal's unfinished jobs on: submitted ones to the poller, paid ones to the downloaders.

    `resumable` is the (key, state) list taken at start; the submit stage never touches these jobs.
    """
    loop = asyncio.get_running_loop()
    jobs = ctx.journal.state.jobs
    recorded = [((key, asset_id), record.path, record.bytes) for key, state in resumable
                if state in (SUCCEEDED, DOWNLOADED) for asset_id, record in jobs[key].files.items()]
    lost = await asyncio.to_thread(lost_files, ctx.run_dir, recorded)
    for key, _ in resumable:
        job = jobs[key]
        if job.state == SUBMITTED and job.job_id:
            ctx.in_flight.force()
            await submitted.put(Submission(key, job.job_id, loop.time()))
        elif job.state == FAILED and job.error_kind == "download" and job.asset_ids:
            await ctx.journal.write("retry-download", key=key)
            await finished.put(Completion(key, tuple(job.asset_ids)))
        elif job.state in (SUCCEEDED, DOWNLOADED):
            for asset_id, record in list(job.files.items()):
                if (key, asset_id) in lost:
                    log.warning("job %s: %s is missing or changed on disk; fetching it again", key[:12], record.path)
                    await ctx.journal.write("file-lost", key=key, asset_id=asset_id)
            if job.state == SUCCEEDED and job.asset_ids:
                await finished.put(Completion(key, tuple(job.asset_ids)))


async def _produce(ctx: RunContext, manifest: RunnableManifest, options: RunOptions,
                   to_submit: asyncio.Queue[JobSpec | None]) -> None:
    """Walk the manifest lazily and queue every job that needs a POST; then close the queue."""
    state = ctx.journal.state
    for spec in manifest.jobs():
        if ctx.stop.no_more_submits.is_set():
            break
        job = state.jobs.get(spec.key)
        if job is not None and job.state != PENDING:
            if job.state == UNKNOWN and options.resubmit_unknown:
                await ctx.journal.write("reset", key=spec.key, why="resubmit-unknown")
            elif job.state == FAILED and options.retry_failed and job.error_kind != "download":
                await ctx.journal.write("reset", key=spec.key, why="retry-failed")
            else:
                continue
        await to_submit.put(spec)
    for _ in range(SUBMIT_WORKERS):
        await to_submit.put(None)
