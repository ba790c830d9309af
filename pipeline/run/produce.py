"""The producer side of a run: what the journal says to resume, the input uploads, and the manifest's new jobs.

`feed` sends submitted jobs to the poller and paid ones to the downloaders, uploads each distinct input once
(`inputs`: remembered asset ids are checked with the server before their first use in a session), goes
through the run's `Roster` for the jobs that need a POST (building only those) and runs the submit workers;
then it closes `submitted`.
"""

from __future__ import annotations

import asyncio
import logging
import time

from pipeline.api.budget import sleep_unless
from pipeline.ledger.replay import DOWNLOADED, PENDING, SUBMITTED, SUCCEEDED, UNKNOWN
from pipeline.ledger.rundir import lost_files
from pipeline.run.adopt import reconcile
from pipeline.run.context import Completion, RunContext, RunnableManifest, Submission
from pipeline.run.inputs import InputAssets
from pipeline.run.limit import Limit
from pipeline.run.roster import Roster
from pipeline.run.strays import download_strays as fetch_strays
from pipeline.run.submit import send_job, submit
from pipeline.spec import InputRef, JobSpec

log = logging.getLogger(__name__)

SUBMIT_WORKERS = 4
RECONCILE_PASSES = 10  # lost POSTs reconciled again after a pass that resent some (and may have lost more)


async def feed(ctx: RunContext, manifest: RunnableManifest, roster: Roster,
               to_submit: asyncio.Queue[JobSpec | None], submitted: asyncio.Queue[Submission | None],
               finished: asyncio.Queue[Completion | None], *,
               retry_failed: bool, resubmit_unknown: bool, download_strays: bool = False,
               chosen: Limit | None = None) -> None:
    """Reconcile unknown jobs, resume what the journal knows, upload the manifest's inputs, produce the jobs
    that need a POST (from the roster) and submit them, reconcile the POSTs this run lost; then close
    `submitted`."""
    session_started = time.time()
    unknown = [key for key, job in ctx.journal.state.jobs.items() if job.state == UNKNOWN]
    if unknown:  # lost answers of earlier sessions: adopt what the server made, send again what it did not
        await reconcile(ctx.api, ctx.journal, unknown, settle_s=ctx.settings.reconcile_settle_s)
    # what to resume is decided now, before any submit can change a job's state
    resumable = [(key, job.state) for key, job in ctx.journal.state.jobs.items()
                 if job.state in (SUBMITTED, SUCCEEDED, DOWNLOADED) or job.download_failed]
    async with asyncio.TaskGroup() as group:
        group.create_task(_resume(ctx, resumable, submitted, finished))
        group.create_task(_produce(ctx, roster, to_submit, retry_failed=retry_failed,
                                   resubmit_unknown=resubmit_unknown, chosen=chosen))
        inputs = InputAssets(ctx)
        await inputs.upload_all(_inputs_to_upload(manifest, roster, chosen))
        for _ in range(SUBMIT_WORKERS):
            group.create_task(submit(ctx, to_submit, submitted, inputs))
    await _settle_lost_posts(ctx, roster, submitted, inputs, since=session_started)
    if download_strays:
        await fetch_strays(ctx)
    await submitted.put(None)  # close the poller's inbound stream (not on error: the group cancels all)


async def _settle_lost_posts(ctx: RunContext, roster: Roster, submitted: asyncio.Queue[Submission | None],
                             inputs: InputAssets, *, since: float) -> None:
    """The POSTs whose answers were lost (in this run, or too recently for the reconciling at its start): once
    the API answers and they are old enough to be sure, adopt the jobs the server made (polled and downloaded
    in this run) and send again the ones it did not make; what cannot be decided stays unknown, with the
    reason. Passes repeat while they resend jobs (a resent POST may lose its answer too)."""
    loop = asyncio.get_running_loop()
    for _ in range(RECONCILE_PASSES):
        lost = {key: job.intent_at or since for key, job in ctx.journal.state.jobs.items() if job.state == UNKNOWN}
        if not lost or ctx.stop.no_more_submits.is_set():
            return
        if not await ctx.api.connectivity.wait_up(ctx.stop.no_more_submits):
            return
        wait_s = max(lost.values()) + ctx.settings.reconcile_settle_s - time.time()
        if wait_s > 0:
            ctx.reconciling = (f"{len(lost)} POST(s) lost their answers: the server is asked which jobs it made "
                               f"once they are {ctx.settings.reconcile_settle_s:.0f}s old (reconcile_settle_s)")
            log.info("%d POST(s) lost their answers: asking the server about them in %.0fs", len(lost), wait_s)
            try:
                if await sleep_unless(ctx.stop.no_more_submits, wait_s):
                    return
            finally:
                ctx.reconciling = None
        found = await reconcile(ctx.api, ctx.journal, lost, settle_s=ctx.settings.reconcile_settle_s)
        for key in found.adopted:
            ctx.in_flight.force()
            await submitted.put(Submission(key, str(ctx.journal.state.jobs[key].job_id), loop.time()))
        if found.not_created:
            for spec in roster.specs_of(set(found.not_created)):
                await send_job(ctx, spec, submitted, inputs)
        if not found.adopted and not found.not_created:
            return  # the listing failed, or nothing could be decided: they stay unknown, with the reason


def _inputs_to_upload(manifest: RunnableManifest, roster: Roster, chosen: Limit | None) -> list[InputRef]:
    """The manifest's local inputs, each once; a limited run (`chosen`): only those of the jobs it picks."""
    needed = None if chosen is None else {ref.sha256 for spec in chosen.jobs(roster) for ref in spec.inputs}
    return [ref for ref in manifest.input_files() if needed is None or ref.sha256 in needed]


async def _resume(ctx: RunContext, resumable: list[tuple[str, str]], submitted: asyncio.Queue[Submission | None],
                  finished: asyncio.Queue[Completion | None]) -> None:
    """Send the journal's unfinished jobs on: submitted ones to the poller, paid ones to the downloaders.

    `resumable` is the (key, state) list taken at start; the submit stage never touches these jobs.
    """
    loop = asyncio.get_running_loop()
    jobs = ctx.journal.state.jobs
    recorded = [((key, asset_id), record.path, record.bytes, record.mtime_ns, record.sha256)
                for key, state in resumable if state in (SUCCEEDED, DOWNLOADED)
                for asset_id, record in jobs[key].files.items()]
    lost = await asyncio.to_thread(lost_files, ctx.run_dir, recorded)
    for key, _ in resumable:
        job = jobs[key]
        if job.to_poll:
            ctx.in_flight.force()
            await submitted.put(Submission(key, str(job.job_id), loop.time()))
        elif job.download_failed:
            await ctx.journal.write("retry-download", key=key)
            await finished.put(Completion(key, tuple(job.asset_ids)))
        elif job.state in (SUCCEEDED, DOWNLOADED):
            for asset_id, record in list(job.files.items()):
                if (key, asset_id) in lost:
                    log.warning("job %s: %s is missing or changed on disk; fetching it again", key[:12], record.path)
                    await ctx.journal.write("file-lost", key=key, asset_id=asset_id)
            if job.to_download:
                await finished.put(Completion(key, tuple(job.asset_ids)))


async def _produce(ctx: RunContext, roster: Roster, to_submit: asyncio.Queue[JobSpec | None], *,
                   retry_failed: bool, resubmit_unknown: bool, chosen: Limit | None = None) -> None:
    """Queue every job that needs a POST, in index order (a limited run: of the jobs it picks); then close the
    queue. Each is judged by its key (the roster's) and built only when it is sent (decoded, not hashed)."""
    state = ctx.journal.state
    picked = enumerate(roster) if chosen is None else ((index, roster[index]) for index in chosen.indices)
    for index, key in picked:
        if ctx.stop.no_more_submits.is_set():
            break
        job = state.jobs.get(key)
        if job is not None and job.state != PENDING:
            if job.state == UNKNOWN and resubmit_unknown:
                await ctx.journal.write("reset", key=key, why="resubmit-unknown")
            elif job.upload_failed:  # never sent, so never paid: try again
                await ctx.journal.write("reset", key=key, why="retry-upload")
            elif job.generation_failed and retry_failed:
                await ctx.journal.write("reset", key=key, why="retry-failed")
            else:
                continue
        await to_submit.put(roster.spec(index))
    for _ in range(SUBMIT_WORKERS):
        await to_submit.put(None)
