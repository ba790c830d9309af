"""The submit stage: take jobs to send, record the intent, POST, record the jobId, hand it to the poller.

The intent reaches the disk before the POST and the jobId the moment it returns, so
a crash can never make us forget a paid job or send the same job twice silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from pipeline.api.client import PostState
from pipeline.run.context import RunContext, Submission
from pipeline.errors import (
    ApiError,
    AuthError,
    ConcurrencyLimited,
    CreditsError,
    ModelAccessRestricted,
    RequestRejected,
    RunHalted,
    SubmitOutcomeUnknown,
)
from pipeline.ledger.journal import JournalError
from pipeline.ledger.replay import UNKNOWN, UPLOAD_FAILED
from pipeline.run.pricing import within_budget
from pipeline.api.retry import backoff_s
from pipeline.spec import JobSpec
from pipeline.run.storage import claim_output_path

log = logging.getLogger(__name__)


async def submit(ctx: RunContext, to_submit: asyncio.Queue[JobSpec | None],
                 submitted: asyncio.Queue[Submission | None], asset_ids: Mapping[str, str],
                 not_uploaded: Mapping[str, str]) -> None:
    """One submit worker: until the queue closes (None) or submitting must stop.

    `asset_ids` maps each uploaded input's sha256 to its asset id; `not_uploaded` says why an input could not
    be uploaded: a job that needs it fails with that message, unsent."""
    while True:
        spec = await to_submit.get()
        if spec is None:
            return
        if ctx.stop.no_more_submits.is_set():
            continue  # drain: the producer stops soon; these jobs stay pending in the journal
        if missing := _missing_input(spec, asset_ids, not_uploaded):
            await ctx.journal.write("failed", key=spec.key, reason=UPLOAD_FAILED, error=missing)
            continue
        await send_job(ctx, spec, spec.body(asset_ids), submitted)


async def send_job(ctx: RunContext, spec: JobSpec, body: dict[str, object],
                   submitted: asyncio.Queue[Submission | None]) -> None:
    """Send one job until it is submitted, refused for good, unknown, or submitting stops."""
    loop = asyncio.get_running_loop()
    refusals = 0
    while await _send(ctx, spec, body, submitted, loop):
        refusals += 1  # the running-jobs cap, or no connection: wait for what would let it through
        await _wait_before_sending_again(ctx, refusals)


async def _send(ctx: RunContext, spec: JobSpec, body: dict[str, object], submitted: asyncio.Queue[Submission | None],
                loop: asyncio.AbstractEventLoop) -> bool:
    """Take an in-flight place, journal the intent, POST, journal the outcome; True to try the job again."""
    if not await ctx.in_flight.acquire():
        return False  # submitting stopped while we waited for a place
    if not await ctx.api.connectivity.wait_up(ctx.stop.no_more_submits):  # no POST into an outage
        await ctx.in_flight.release()
        return False
    if ctx.settings.max_cost_cu and not await within_budget(ctx, spec, body):  # --max-cost: see pricing.py
        await ctx.in_flight.release()
        return False
    attempt = ctx.journal.state.job(spec.key).submit_attempts + 1
    post = PostState()
    try:
        ctx.posting.add(spec.key)  # journaled unknown from the intent on, but shown as submitting until answered
        try:
            await ctx.journal.write("intent", key=spec.key, attempt=attempt, spec=spec.to_json(), request=body,
                                    file=claim_output_path(spec, ctx.journal.state.paths))
            job = await ctx.api.submit(spec.model, body, post=post)
        finally:
            ctx.posting.discard(spec.key)
    except SubmitOutcomeUnknown as exc:
        log.warning("job %d (%s): %s; it may exist on the server: not resent (see --resubmit-unknown)",
                    spec.index, spec.key[:12], exc)
        await ctx.journal.write("answer-lost", key=spec.key, error=str(exc))  # unknown, not submitting (status)
        await ctx.in_flight.release()
        return False
    except RunHalted as exc:  # every attempt so far was refused, and the run stops before the next one
        await _not_sent(ctx, spec, str(exc))
        return False
    except ConcurrencyLimited as exc:  # no job was made: send it again once one of ours has finished
        await _not_sent(ctx, spec, exc.message)
        if ctx.in_flight.limit(exc.limit):
            log.warning("the API refused job %d: too many jobs running on the account (429%s); at most %d jobs "
                        "in flight from now on, the next one sent when one finishes", spec.index,
                        f", cap {exc.limit}" if exc.limit else "", ctx.in_flight.cap)
            await ctx.journal.write("in-flight-cap", cap=ctx.in_flight.cap, why=ctx.in_flight.limited_by)
        return True
    except ModelAccessRestricted as exc:
        await _not_sent(ctx, spec, exc.message)
        plan = f" (it requires the {exc.required_plan!r} plan)" if exc.required_plan else ""
        ctx.stop.stop_submitting("access", f"the account may not use {exc.model_id or spec.model}{plan}: "
                                           f"submitting stopped; what was sent is still polled and downloaded")
        return False
    except AuthError as exc:
        await _not_sent(ctx, spec, exc.message)
        ctx.stop.halt("auth", f"the API refused the credentials ({exc.message})")
        return False
    except CreditsError as exc:
        await _not_sent(ctx, spec, exc.message)
        ctx.stop.stop_submitting("credits", f"out of credits ({exc.message}): submitting stopped")
        log.error("out of credits: no more submissions; polling and downloading what was sent")
        return False
    except RequestRejected as exc:
        await ctx.journal.write("failed", key=spec.key, reason="rejected", error=exc.message, trace_id=exc.trace_id)
        await ctx.in_flight.release()
        log.warning("job %d rejected by the server: %s", spec.index, exc.message)
        return False
    except ApiError as exc:  # transient errors that outlived every retry, or another status
        await _not_sent(ctx, spec, exc.message)
        if exc.status == 0:  # no connection, so no job: send it again once the API answers
            return True
        await ctx.journal.write("failed", key=spec.key, reason="submit", error=str(exc), trace_id=exc.trace_id)
        log.warning("job %d could not be submitted: %s", spec.index, exc)
        return False
    except BaseException:  # cancelled (second Ctrl-C, the grace time) or the journal failed
        if not post.on_the_wire:
            _record_not_sent(ctx, spec.key)
        await ctx.in_flight.release()
        raise
    await ctx.journal.write("submitted", key=spec.key, job_id=job.job_id, status=job.status, cost_cu=job.cost_cu)
    await submitted.put(Submission(spec.key, job.job_id, loop.time()))
    return False


async def _not_sent(ctx: RunContext, spec: JobSpec, error: str) -> None:
    """The server refused the POST (no job was made): the job is pending again; its place is free."""
    await ctx.journal.write("not-sent", key=spec.key, error=error)
    await ctx.in_flight.release()


async def _wait_before_sending_again(ctx: RunContext, refusals: int) -> None:
    """After a POST that made no job for want of a connection or of a running-jobs place: wait until the API
    answers again; or, while our jobs fill the running-jobs cap, let the next `acquire` wait for one to finish;
    or, when other tools' jobs fill it (we have fewer than the cap), wait for a finish or a backoff at most."""
    if ctx.api.connectivity.down:
        await ctx.api.connectivity.wait_up(ctx.stop.no_more_submits)
    elif ctx.in_flight.count < ctx.in_flight.cap:
        await ctx.in_flight.wait_for_release(backoff_s(refusals, base_s=ctx.settings.backoff_base_s,
                                                       max_s=ctx.settings.backoff_max_s))


def _missing_input(spec: JobSpec, asset_ids: Mapping[str, str], not_uploaded: Mapping[str, str]) -> str | None:
    """Why the job cannot be sent (an input of it was not uploaded), or None when every input has an asset id."""
    for ref in spec.inputs:
        if ref.kind == "file" and (ref.sha256 or "") not in asset_ids:
            return not_uploaded.get(ref.sha256 or "", f"input {ref.param} {ref.path} was not uploaded")
    return None


def _record_not_sent(ctx: RunContext, key: str) -> None:
    """A submit cut off with no attempt on the server: the job is pending again, not unknown."""
    if ctx.journal.state.job(key).state != UNKNOWN:
        return  # the intent never reached the journal
    try:
        ctx.journal.write_now("not-sent", key=key, error="the run stopped before the request was sent")
    except JournalError as exc:  # it stays unknown; the journal's own error is what the user sees
        log.error("%s", exc)
