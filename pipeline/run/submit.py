"""The submit stage: take jobs to send, record the intent, POST, record the jobId, hand it to the poller.

The intent reaches the disk before the POST and the jobId the moment it returns, so
a crash can never make us forget a paid job or send the same job twice silently.
"""

from __future__ import annotations

import asyncio
import logging

from pipeline.api.client import PostState
from pipeline.api.retry import backoff_s
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
from pipeline.run.context import RunContext, Submission
from pipeline.run.inputs import InputAssets
from pipeline.run.pricing import within_budget
from pipeline.run.storage import claim_output_path
from pipeline.spec import JobSpec

log = logging.getLogger(__name__)

DONE, AGAIN, RENEWED = "done", "again", "renewed"  # what became of one POST of a job (`_send`)


async def submit(ctx: RunContext, to_submit: asyncio.Queue[JobSpec | None],
                 submitted: asyncio.Queue[Submission | None], inputs: InputAssets) -> None:
    """One submit worker: until the queue closes (None) or submitting must stop.

    `inputs` gives each local input's asset id (checked with the server before its first use in the session),
    or why it has none: a job that needs such an input fails with that message, unsent."""
    while True:
        spec = await to_submit.get()
        if spec is None:
            return
        if ctx.stop.no_more_submits.is_set():
            continue  # drain: the producer stops soon; these jobs stay pending in the journal
        await send_job(ctx, spec, submitted, inputs)


async def send_job(ctx: RunContext, spec: JobSpec, submitted: asyncio.Queue[Submission | None],
                   inputs: InputAssets) -> None:
    """Send one job until it is submitted, refused for good, unknown, or submitting stops. A refusal naming an
    input asset the server no longer knows sends it once more, with the file uploaded again."""
    loop = asyncio.get_running_loop()
    refusals = 0
    renewable: InputAssets | None = inputs
    await inputs.ready(spec)
    while True:
        if ctx.stop.no_more_submits.is_set():
            return  # stopped while its inputs were checked: it stays pending
        if missing := inputs.missing(spec):
            await ctx.journal.write("failed", key=spec.key, reason=UPLOAD_FAILED, error=missing)
            return
        outcome = await _send(ctx, spec, spec.body(inputs.ids), submitted, loop, renewable)
        if outcome == DONE:
            return
        if outcome == RENEWED:
            renewable = None  # once: a second refusal of the same kind fails the job
            continue
        refusals += 1  # the running-jobs cap, or no connection: wait for what would let it through
        await _wait_before_sending_again(ctx, refusals)


async def _send(ctx: RunContext, spec: JobSpec, body: dict[str, object], submitted: asyncio.Queue[Submission | None],
                loop: asyncio.AbstractEventLoop, inputs: InputAssets | None) -> str:
    """Take an in-flight place, journal the intent, POST, journal the outcome: DONE, AGAIN (try the job again)
    or RENEWED (refused for an input asset now uploaded again: `inputs`, None once that was tried)."""
    if not await ctx.in_flight.acquire():
        return DONE  # submitting stopped while we waited for a place
    if not await ctx.api.connectivity.wait_up(ctx.stop.no_more_submits):  # no POST into an outage
        await ctx.in_flight.release()
        return DONE
    if ctx.settings.max_cost_cu and not await within_budget(ctx, spec, body):  # --max-cost: see pricing.py
        await ctx.in_flight.release()
        return DONE
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
        return DONE
    except RunHalted as exc:  # every attempt so far was refused, and the run stops before the next one
        await _not_sent(ctx, spec, str(exc))
        return DONE
    except ConcurrencyLimited as exc:  # no job was made: send it again once one of ours has finished
        await _not_sent(ctx, spec, exc.message)
        if ctx.in_flight.limit(exc.limit):
            log.warning("the API refused job %d: too many jobs running on the account (429%s); at most %d jobs "
                        "in flight from now on, the next one sent when one finishes", spec.index,
                        f", cap {exc.limit}" if exc.limit else "", ctx.in_flight.cap)
            await ctx.journal.write("in-flight-cap", cap=ctx.in_flight.cap, why=ctx.in_flight.limited_by)
        return AGAIN
    except ModelAccessRestricted as exc:
        await _not_sent(ctx, spec, exc.message)
        plan = f" (it requires the {exc.required_plan!r} plan)" if exc.required_plan else ""
        ctx.stop.stop_submitting("access", f"the account may not use {exc.model_id or spec.model}{plan}: "
                                           f"submitting stopped; what was sent is still polled and downloaded")
        return DONE
    except AuthError as exc:
        await _not_sent(ctx, spec, exc.message)
        ctx.stop.halt("auth", f"the API refused the credentials ({exc.message})")
        return DONE
    except CreditsError as exc:
        await _not_sent(ctx, spec, exc.message)
        ctx.stop.stop_submitting("credits", f"out of credits ({exc.message}): submitting stopped")
        log.error("out of credits: no more submissions; polling and downloading what was sent")
        return DONE
    except RequestRejected as exc:
        if inputs is not None and (outcome := await _refused_for_an_input(ctx, spec, body, exc, inputs, "rejected")):
            return outcome
        await ctx.journal.write("failed", key=spec.key, reason="rejected", error=exc.message, trace_id=exc.trace_id)
        await ctx.in_flight.release()
        log.warning("job %d rejected by the server: %s", spec.index, exc.message)
        return DONE
    except ApiError as exc:  # transient errors that outlived every retry, or another status
        if exc.status == 404 and inputs is not None and (
                outcome := await _refused_for_an_input(ctx, spec, body, exc, inputs, "submit")):
            return outcome
        await _not_sent(ctx, spec, exc.message)
        if exc.status == 0:  # no connection, so no job: send it again once the API answers
            return AGAIN
        await ctx.journal.write("failed", key=spec.key, reason="submit", error=str(exc), trace_id=exc.trace_id)
        log.warning("job %d could not be submitted: %s", spec.index, exc)
        return DONE
    except BaseException:  # cancelled (second Ctrl-C, the grace time) or the journal failed
        if not post.on_the_wire:
            _record_not_sent(ctx, spec.key)
        await ctx.in_flight.release()
        raise
    await ctx.journal.write("submitted", key=spec.key, job_id=job.job_id, status=job.status, cost_cu=job.cost_cu)
    await submitted.put(Submission(spec.key, job.job_id, loop.time()))
    return DONE


async def _refused_for_an_input(ctx: RunContext, spec: JobSpec, body: dict[str, object], exc: ApiError,
                                inputs: InputAssets, reason: str) -> str | None:
    """A generate refused (400/404: no job was made) naming an input asset of the job: the job is pending again
    while the asset is checked, its file uploaded again if the server no longer knows it. RENEWED: send the job
    once more (new asset id); DONE: it failed (the asset is there, so the refusal stands; or the upload failed:
    never sent). None when the refusal names no input asset of the job (nothing done: the caller fails it)."""
    if not inputs.named_in(spec, body, exc.message):
        return None
    await _not_sent(ctx, spec, exc.message)
    if await inputs.renew(spec, body, exc.message):
        log.info("job %d: refused for an input asset the server no longer knows; sending it again with the file "
                 "uploaded again", spec.index)
        return RENEWED
    if ctx.stop.no_more_submits.is_set():
        return DONE  # stopped while the input was checked: the job stays pending
    if missing := inputs.missing(spec):
        await ctx.journal.write("failed", key=spec.key, reason=UPLOAD_FAILED, error=missing)
        return DONE
    error = exc.message if reason == "rejected" else str(exc)
    await ctx.journal.write("failed", key=spec.key, reason=reason, error=error, trace_id=exc.trace_id)
    log.warning("job %d refused by the server: %s", spec.index, error)
    return DONE


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


def _record_not_sent(ctx: RunContext, key: str) -> None:
    """A submit cut off with no attempt on the server: the job is pending again, not unknown."""
    if ctx.journal.state.job(key).state != UNKNOWN:
        return  # the intent never reached the journal
    try:
        ctx.journal.write_now("not-sent", key=key, error="the run stopped before the request was sent")
    except JournalError as exc:  # it stays unknown; the journal's own error is what the user sees
        log.error("%s", exc)
