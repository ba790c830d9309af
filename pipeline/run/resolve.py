"""Download URLs resolved in batches, between the poller and the downloaders.

The outputs of finished jobs are looked up with `POST /v1/assets/get-bulk` (of the originals), up to 200
asset ids a request: a batch leaves as soon as 200 ids wait, a few seconds after its first one arrived
(`gather_s`: never waiting long to fill it; half a second while the budget has room to spare), or at once
when no more can come (the poller is done, the run halts). Gathered so, lookups cost about one request in
fifty of the budget, so they go with the submissions (`SUBMIT` priority): downloads keep pace with a run
whose budget is full of POSTs instead of waiting for its end. The downloaders then take the jobs with their
URLs. An id the answer leaves out, a batch that failed, and a URL that answers 403 (expired) when downloaded
are resolved again one by one (`GET /v1/assets/{id}`, in `download`). URLs last at least 24 h (api-notes
"Outputs").
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from pipeline.api.budget import SUBMIT
from pipeline.api.client import MAX_BULK_ASSETS
from pipeline.errors import ApiError, AuthError, RunHalted
from pipeline.run.context import Completion, RunContext

log = logging.getLogger(__name__)

GATHER_MIN_S, GATHER_MAX_S = 1.0, 5.0  # a batch waits this long for more ids after its first (see `gather_s`)
GATHER_IDLE_S = 0.5  # ... but only this long while the budget has room to spare: a lookup then costs nothing
IDLE_SHARE = 0.5  # "room to spare": the last few seconds used less than this share of the budget
BUDGET_REQUESTS = 50  # ... so that lookups take about one request in this many of the budget


async def resolve(ctx: RunContext, finished: asyncio.Queue[Completion | None],
                  to_download: asyncio.Queue[Completion | None], *, downloaders: int) -> None:
    """Until `finished` closes (None): gather jobs into batches, resolve their URLs, pass them on; then close
    `to_download` (`downloaders` Nones)."""
    carry: Completion | None = None
    closed = False
    while not closed:
        first = carry if carry is not None else await finished.get()
        if first is None:
            break
        batch, carry, closed = await _gather(ctx, finished, first)
        urls = await _urls(ctx, [asset_id for item in batch for asset_id in _wanted(ctx, item)])
        for item in batch:
            await to_download.put(dataclasses.replace(item, urls={a: urls[a] for a in item.asset_ids if a in urls}))
    for _ in range(downloaders):
        await to_download.put(None)


async def _gather(ctx: RunContext, finished: asyncio.Queue[Completion | None],
                  first: Completion) -> tuple[list[Completion], Completion | None, bool]:
    """A batch: `first` and the jobs that arrive within `gather_s`, up to 200 ids. Returns the batch, the job
    that did not fit (the next batch's first) and whether the queue closed meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + gather_s(ctx.api.pacing.current_per_s, ctx.api.used_share())
    batch, count = [first], len(_wanted(ctx, first))
    while count < MAX_BULK_ASSETS and not ctx.stop.halted.is_set():
        try:
            item = finished.get_nowait()
        except asyncio.QueueEmpty:
            left_s = deadline - loop.time()
            if left_s <= 0:
                break
            try:
                item = await asyncio.wait_for(finished.get(), timeout=left_s)
            except TimeoutError:
                break
        if item is None:
            return batch, None, True
        more = len(_wanted(ctx, item))
        if count + more > MAX_BULK_ASSETS:
            return batch, item, False
        batch.append(item)
        count += more
    return batch, None, False


def gather_s(requests_per_s: float, used_share: float = 1.0) -> float:
    """How long a batch waits for more ids after its first: while the budget is busy (`used_share`, of the last
    few seconds, at least IDLE_SHARE), one request of it in BUDGET_REQUESTS (when jobs finish as fast as they
    are sent), from GATHER_MIN_S to GATHER_MAX_S; while it has room to spare (a run held by its running-jobs
    cap, the end of a run), GATHER_IDLE_S: the jobs a listing reports together still go in one request, and
    finished jobs are not kept from their downloads to save requests nobody needs."""
    if used_share < IDLE_SHARE:
        return GATHER_IDLE_S
    if requests_per_s <= 0:
        return GATHER_MAX_S
    return min(GATHER_MAX_S, max(GATHER_MIN_S, BUDGET_REQUESTS / requests_per_s))


def _wanted(ctx: RunContext, item: Completion) -> list[str]:
    """The job's outputs not on disk yet."""
    files = ctx.journal.state.job(item.key).files
    return [asset_id for asset_id in item.asset_ids if asset_id not in files]


async def _urls(ctx: RunContext, ids: list[str]) -> dict[str, str]:
    """The URLs get-bulk gives for `ids` (200 a request); whatever it cannot give is resolved one by one later."""
    urls: dict[str, str] = {}
    try:
        for start in range(0, len(ids), MAX_BULK_ASSETS):  # one batch, unless one job has more outputs
            if not ctx.stop.halted.is_set():
                urls |= await ctx.api.asset_urls(ids[start:start + MAX_BULK_ASSETS], priority=SUBMIT)
    except AuthError as exc:
        ctx.stop.halt("auth", f"the API refused the credentials ({exc.message})")
    except RunHalted:
        pass
    except ApiError as exc:  # retries exhausted, a refusal, a malformed answer: each is looked up on its own
        log.info("get-bulk of %d asset(s) failed (%s); each is resolved on its own", len(ids), exc)
    return urls
