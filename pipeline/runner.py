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
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from pipeline import __version__
from pipeline.api import ApiClient
from pipeline.budget import RequestBudget
from pipeline.config import Credentials, Settings
from pipeline.context import Completion, InFlight, RunContext, StopFlags, Submission
from pipeline.download import download
from pipeline.errors import AuthError, InputError, PipelineError
from pipeline.ledger import (
    DOWNLOADED,
    FAILED,
    JOURNAL_NAME,
    PENDING,
    STATES,
    SUBMITTED,
    SUCCEEDED,
    UNKNOWN,
    Journal,
)
from pipeline.poll import poll
from pipeline.progress import Progress, line
from pipeline.results import iso, records, write_results
from pipeline.spec import InputRef, JobSpec
from pipeline.storage import file_matches, safe_path
from pipeline.submit import submit

log = logging.getLogger(__name__)

SUBMIT_WORKERS = 4
EXIT_OK, EXIT_FAILED, EXIT_STOPPED, EXIT_INTERRUPTED = 0, 1, 3, 130


class RunnableManifest(Protocol):
    name: str
    model: str
    job_count: int

    def jobs(self) -> Iterator[JobSpec]: ...

    def input_files(self) -> list[InputRef]: ...


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Per-invocation choices (not tunables): what to do with failed and unknown jobs, how to show progress."""

    retry_failed: bool = False
    resubmit_unknown: bool = False
    progress: str = "log"  # "live" | "log" | "off"
    manifest_path: str = ""
    on_finish: Callable[[Path], Any] | None = None  # e.g. write the HTML report


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What the run achieved, for the final lines and the exit status."""

    run_dir: Path
    exit_status: int
    counts: dict[str, int]
    total: int
    wall_s: float
    api_requests: int
    throttled: int
    stopped: str | None
    message: str | None
    failures: list[tuple[int | None, str, str]] = field(default_factory=list)  # (index, key, error)
    unknown: list[tuple[int | None, str]] = field(default_factory=list)

    @property
    def requests_per_job(self) -> float:
        finished = self.counts.get(DOWNLOADED, 0) + self.counts.get(FAILED, 0)
        return self.api_requests / finished if finished else 0.0


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
        try:
            return await _run(manifest, settings, credentials, run_dir, options, journal)
        finally:
            journal.close()


async def _run(manifest: RunnableManifest, settings: Settings, credentials: Credentials, run_dir: Path,
               options: RunOptions, journal: Journal) -> RunSummary:
    started = time.monotonic()
    await journal.write("run", manifest=options.manifest_path, name=manifest.name, model=manifest.model,
                        api_base_url=settings.api_base_url, job_count=manifest.job_count,
                        tool_version=__version__, pid=os.getpid(),
                        options={"retry_failed": options.retry_failed,
                                 "resubmit_unknown": options.resubmit_unknown})
    stop = StopFlags()
    budget = RequestBudget(settings.max_requests_per_s)
    connector = aiohttp.TCPConnector(limit=max(32, settings.download_workers + 2 * SUBMIT_WORKERS + 8))
    async with aiohttp.ClientSession(connector=connector, raise_for_status=False) as session:
        api = ApiClient(session, settings, credentials, budget)
        ctx = RunContext(settings, journal, api, session, run_dir, InFlight(settings.max_in_flight_jobs), stop)
        progress = Progress(ctx, manifest.job_count, mode=options.progress)
        try:
            await _supervise(ctx, manifest, options, progress)
        finally:
            journal.write_now("requests", count=api.requests)
            journal.write_now("end", reason=stop.reason)
            tally = _tally(manifest, journal)
            _write_results(run_dir, manifest, journal, settings, started, api, stop, tally)
    if options.on_finish is not None and stop.reason != "interrupted":
        await asyncio.to_thread(options.on_finish, run_dir)  # posters take seconds: keep the loop free
    return _summary(run_dir, manifest, started, api, stop, tally)


async def _supervise(ctx: RunContext, manifest: RunnableManifest, options: RunOptions,
                     progress: Progress) -> None:
    """Own every task in one TaskGroup; wire the signals to a staged shutdown."""
    loop = asyncio.get_running_loop()
    async with asyncio.TaskGroup() as group:
        stages = group.create_task(_stages(ctx, manifest, options))
        reporter = group.create_task(progress.run())
        snapshots = group.create_task(_record_requests(ctx))
        signals = _install_signals(loop, ctx, stages, group)
        try:
            await _wait(stages)
        finally:
            _remove_signals(loop, signals)
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


def _install_signals(loop: asyncio.AbstractEventLoop, ctx: RunContext, stages: asyncio.Task[None],
                     group: asyncio.TaskGroup) -> list[int]:
    received = 0

    def on_signal(signum: int) -> None:
        nonlocal received
        received += 1
        if received == 1:
            log.warning("%s: stopping (no new submissions; running downloads get %.0fs); press again to quit now",
                        signal.Signals(signum).name, ctx.settings.shutdown_grace_s)
            ctx.stop.halt("interrupted", "interrupted")
            group.create_task(_grace_then_cancel(ctx, stages))
        else:
            log.warning("second signal: quitting now")
            stages.cancel()

    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            pass
    return installed


def _remove_signals(loop: asyncio.AbstractEventLoop, installed: list[int]) -> None:
    for signum in installed:
        loop.remove_signal_handler(signum)


async def _grace_then_cancel(ctx: RunContext, stages: asyncio.Task[None]) -> None:
    """After a halt the stages wind down by themselves (requests under way finish); cut them off at the deadline."""
    try:
        await asyncio.wait_for(asyncio.shield(stages), timeout=ctx.settings.shutdown_grace_s)
    except (TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001 - the stages' own errors surface elsewhere
        stages.cancel()


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
    for key, _ in resumable:
        job = ctx.journal.state.jobs[key]
        if job.state == SUBMITTED and job.job_id:
            ctx.in_flight.force()
            await submitted.put(Submission(key, job.job_id, loop.time()))
        elif job.state == FAILED and job.error_kind == "download" and job.asset_ids:
            await ctx.journal.write("retry-download", key=key)
            await finished.put(Completion(key, tuple(job.asset_ids)))
        elif job.state in (SUCCEEDED, DOWNLOADED):
            for asset_id, record in list(job.files.items()):
                if not await file_matches(safe_path(ctx.run_dir, record.path), record.bytes):
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


@dataclass(frozen=True, slots=True)
class Tally:
    """The manifest's jobs by state (one pass over the manifest), and the ones that need a word."""

    counts: dict[str, int]
    failures: list[tuple[int | None, str, str]]
    unknown: list[tuple[int | None, str]]
    journal_only: int  # jobs the journal knows that the current manifest no longer has


def _tally(manifest: RunnableManifest, journal: Journal) -> Tally:
    counts = dict.fromkeys(STATES, 0)
    failures: list[tuple[int | None, str, str]] = []
    unknown: list[tuple[int | None, str]] = []
    jobs = journal.state.jobs
    seen = 0
    for spec in manifest.jobs():
        job = jobs.get(spec.key)
        seen += job is not None
        state = job.state if job is not None else PENDING
        counts[state] += 1
        if state == FAILED:
            failures.append((spec.index, spec.key, (job.error if job else None) or "unknown error"))
        elif state == UNKNOWN:
            unknown.append((spec.index, spec.key))
    return Tally(counts, failures, unknown, len(jobs) - seen)


def _run_record(manifest: RunnableManifest, journal: Journal, settings: Settings, started: float,
                api: ApiClient, stop: StopFlags, tally: Tally) -> dict[str, Any]:
    state = journal.state
    finished = tally.counts[DOWNLOADED] + tally.counts[FAILED]
    return {
        "name": manifest.name,
        "manifest": state.runs[-1].get("manifest") if state.runs else None,
        "model": manifest.model,
        "api_base_url": settings.api_base_url,
        "tool_version": __version__,
        "sessions": len(state.runs),
        "first_started_at": iso(state.first_at),
        "updated_at": iso(time.time()),
        "session_wall_s": round(time.monotonic() - started, 3),
        "job_count": manifest.job_count,
        "counts": tally.counts,
        "jobs_no_longer_in_manifest": tally.journal_only,
        "api_requests": state.api_requests,
        "api_requests_per_finished_job": round(state.api_requests / finished, 3) if finished else None,
        "throttled_429": api.throttled,
        "stopped": stop.reason,
        "stop_message": stop.message,
    }


def _write_results(run_dir: Path, manifest: RunnableManifest, journal: Journal, settings: Settings,
                   started: float, api: ApiClient, stop: StopFlags, tally: Tally) -> None:
    try:
        write_results(run_dir, _run_record(manifest, journal, settings, started, api, stop, tally),
                      records(manifest.jobs(), journal.state, journal=journal.path))
    except OSError as exc:  # the journal still holds everything; `status` and the next run rebuild it
        log.error("could not write results.json: %s (the journal %s is intact)", exc, JOURNAL_NAME)


def _summary(run_dir: Path, manifest: RunnableManifest, started: float, api: ApiClient, stop: StopFlags,
             tally: Tally) -> RunSummary:
    if stop.reason == "interrupted":
        status = EXIT_INTERRUPTED
    elif stop.reason in ("auth", "credits"):
        status = EXIT_STOPPED
    elif tally.counts[DOWNLOADED] == manifest.job_count:
        status = EXIT_OK
    else:
        status = EXIT_FAILED
    return RunSummary(run_dir, status, tally.counts, manifest.job_count, time.monotonic() - started,
                      api.requests, api.throttled, stop.reason, stop.message, tally.failures, tally.unknown)


def summary_text(summary: RunSummary, *, resume_command: str) -> str:
    """The final lines printed after a run."""
    c = summary.counts
    lines = [f"{c[DOWNLOADED]}/{summary.total} downloaded, {c[FAILED]} failed, {c[UNKNOWN]} unknown, "
             f"{c[PENDING] + c[SUBMITTED] + c[SUCCEEDED]} unfinished; wall {summary.wall_s:.1f}s; "
             f"{summary.api_requests} API requests ({summary.requests_per_job:.2f} per finished job), "
             f"{summary.throttled} throttled (429)",
             f"output: {summary.run_dir}"]
    for index, key, error in summary.failures[:20]:
        lines.append(f"  failed job {index if index is not None else '?'} ({key[:12]}): {error}")
    if len(summary.failures) > 20:
        lines.append(f"  ... and {len(summary.failures) - 20} more failures (see results.json)")
    if summary.unknown:
        lines.append(f"{len(summary.unknown)} job(s) were sent but their answer was lost; they may exist on the "
                     f"server (paid). Check your Scenario account, then rerun with --resubmit-unknown to send "
                     f"them again:")
        lines += [f"  job {i if i is not None else '?'} ({k[:12]})" for i, k in summary.unknown[:20]]
    if summary.message and summary.stopped != "interrupted":
        lines.append(f"stopped: {summary.message}")
    if summary.exit_status in (EXIT_INTERRUPTED, EXIT_STOPPED) or c[PENDING] + c[SUBMITTED] + c[SUCCEEDED]:
        lines.append(f"to resume: {resume_command}")
    return "\n".join(lines)
