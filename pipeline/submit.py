"""The submit stage: take jobs to send, record the intent, POST, record the jobId, hand it to the poller.

The intent reaches the disk before the POST and the jobId the moment it returns, so
a crash can never make us forget a paid job or send the same job twice silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from pipeline.context import RunContext, Submission
from pipeline.errors import (
    ApiError,
    AuthError,
    CreditsError,
    RequestRejected,
    SubmitOutcomeUnknown,
)
from pipeline.spec import JobSpec
from pipeline.storage import claim_output_path

log = logging.getLogger(__name__)


async def submit(ctx: RunContext, to_submit: asyncio.Queue[JobSpec | None],
                 submitted: asyncio.Queue[Submission | None], asset_ids: Mapping[str, str]) -> None:
    """One submit worker: until the queue closes (None) or submitting must stop."""
    loop = asyncio.get_running_loop()
    while True:
        spec = await to_submit.get()
        if spec is None:
            return
        if ctx.stop.no_more_submits.is_set():
            continue  # drain: the producer stops soon; these jobs stay pending in the journal
        await ctx.in_flight.acquire()
        if ctx.stop.no_more_submits.is_set():
            await ctx.in_flight.release()
            continue
        body = spec.body(asset_ids)
        attempt = ctx.journal.state.job(spec.key).submit_attempts + 1
        await ctx.journal.write("intent", key=spec.key, attempt=attempt, spec=spec.to_json(), request=body,
                                file=claim_output_path(spec, ctx.journal.state.paths))
        try:
            job = await ctx.api.submit(spec.model, body)
        except SubmitOutcomeUnknown as exc:
            log.warning("job %d (%s): %s; it may exist on the server: not resent (see --resubmit-unknown)",
                        spec.index, spec.key[:12], exc)
            await ctx.in_flight.release()
            continue
        except AuthError as exc:
            await ctx.journal.write("not-sent", key=spec.key, error=exc.message)
            await ctx.in_flight.release()
            ctx.stop.halt("auth", f"the API refused the credentials ({exc.message})")
            continue
        except CreditsError as exc:
            await ctx.journal.write("not-sent", key=spec.key, error=exc.message)
            await ctx.in_flight.release()
            ctx.stop.stop_submitting("credits", f"out of credits ({exc.message}): submitting stopped")
            log.error("out of credits: no more submissions; polling and downloading what was sent")
            continue
        except RequestRejected as exc:
            await ctx.journal.write("failed", key=spec.key, reason="rejected", error=exc.message)
            await ctx.in_flight.release()
            log.warning("job %d rejected by the server: %s", spec.index, exc.message)
            continue
        except ApiError as exc:  # transient errors that outlived every retry, or another status
            await ctx.journal.write("not-sent", key=spec.key, error=exc.message)
            await ctx.journal.write("failed", key=spec.key, reason="submit", error=str(exc))
            await ctx.in_flight.release()
            log.warning("job %d could not be submitted: %s", spec.index, exc)
            continue
        except BaseException:
            await ctx.in_flight.release()
            raise
        await ctx.journal.write("submitted", key=spec.key, job_id=job.job_id, status=job.status)
        await submitted.put(Submission(spec.key, job.job_id, loop.time()))
