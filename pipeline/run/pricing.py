"""Prices from the API: dry runs (`?dryRun=true`: no job, no charge), for `plan --cost` and the `--max-cost` gate.

A dry run sends the same body as the real generate and reads `creativeUnitsCost` from the answer (any 2xx:
Scenario's own tests answer 269). The notes say a dry run does not validate the parameters, so `plan --cost`
may stand in a placeholder asset id for an input the account has not been sent yet. The arithmetic lives in
`costcap`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pipeline.api.budget import SUBMIT
from pipeline.api.client import ApiClient
from pipeline.errors import ApiError, AuthError, CreditsError, ModelAccessRestricted, PipelineError, RunHalted
from pipeline.ledger.costs import cu, parse_price, price_class, verdict
from pipeline.ledger.replay import JOURNAL_NAME, replay
from pipeline.run.context import RunContext
from pipeline.spec import InputRef, JobSpec

log = logging.getLogger(__name__)

DRY_RUN_QUERY = {"dryRun": "true"}
DRY_RUN_WORKERS = 4  # dry runs in flight at once (all within the request budget)
PLACEHOLDER_PREFIX = "asset_ltxbatchplan_"  # + the input's sha256 prefix: an id the account never had
PROGRESS_EVERY_S = 5.0  # a long pricing logs how far it got this often


class PricingError(PipelineError):
    """A dry run could not price a job: says which job and why; exits with the API error's status."""

    def __init__(self, message: str, *, exit_status: int = 1) -> None:
        super().__init__(message)
        self.exit_status = exit_status


async def dry_run(api: ApiClient, model: str, body: Mapping[str, Any]) -> float:
    """What one generate request would cost, in CU. ApiError for an error answer (after the client's retries
    of what is transient); PricingError for a 2xx answer without a usable `creativeUnitsCost`."""
    path = f"/v1/generate/custom/{model}"
    data = await api.call("POST", path, SUBMIT, body=dict(body), params=DRY_RUN_QUERY, idempotent=True)
    try:
        return parse_price(data)
    except ValueError as exc:
        raise PricingError(f"the answer to POST {api.base_url}{path}?dryRun=true cannot be used: {exc}") from None


def where(spec: JobSpec) -> str:
    """A job as error messages locate it."""
    return f"batch {spec.batch!r}, job {spec.index} ({spec.key[:12]})"


async def within_budget(ctx: RunContext, spec: JobSpec, body: Mapping[str, Any]) -> bool:
    """The `--max-cost` gate, called by the submit stage with an in-flight place taken, right before the intent.

    The job's estimate is the last known cost of its price class (a charge recorded in the journal, or an
    earlier dry run), else one dry run now. True: the job fits, and a "priced" event records its estimate (so
    an answer lost for it still counts). A dry run that cannot reach the API waits for it, as a POST would.
    False: submitting has stopped (budget reached, the job could not be priced, or the run stopped meanwhile);
    the job stays pending. No await between the check and the caller's
    intent, so concurrent submit workers never both take the last of the budget."""
    state = ctx.journal.state
    kind = price_class(spec)
    while (estimate := state.prices.get(kind)) is None:
        try:
            estimate = await dry_run(ctx.api, spec.model, body)
        except RunHalted:
            return False
        except PipelineError as exc:
            if isinstance(exc, ApiError) and exc.status == 0:  # no connection: wait for the API as a POST would
                if await ctx.api.connectivity.wait_up(ctx.stop.no_more_submits):
                    continue
                return False  # submitting stopped while the API was away
            if not ctx.stop.no_more_submits.is_set():  # the first reason to stop is the one told
                _refused(ctx, spec, exc)
            return False
        log.info("%s: a dry run prices jobs like it at %s", where(spec), cu(estimate))
        break
    if ctx.stop.no_more_submits.is_set():
        return False  # stopped while we priced
    answer = verdict(state.spend, state.prices, estimate_cu=estimate, max_cost_cu=ctx.settings.max_cost_cu)
    if not answer.admits:
        ctx.stop.stop_submitting("budget", answer.reason(spec.index))
        log.warning("%s", answer.reason(spec.index))
        return False
    await ctx.journal.write("priced", key=spec.key, price_class=kind, cost_cu=estimate)
    return True


def _refused(ctx: RunContext, spec: JobSpec, exc: PipelineError) -> None:
    """The gate's dry run failed: stop as the generate itself would have (credentials, plan, credits), or, for
    anything else, stop submitting: a job that cannot be priced cannot be kept within the budget."""
    if isinstance(exc, ModelAccessRestricted):
        plan = f" (it requires the {exc.required_plan!r} plan)" if exc.required_plan else ""
        ctx.stop.stop_submitting("access", f"the account may not use {exc.model_id or spec.model}{plan}: "
                                           f"submitting stopped; what was sent is still polled and downloaded")
    elif isinstance(exc, AuthError):
        ctx.stop.halt("auth", f"the API refused the credentials ({exc.message})")
    elif isinstance(exc, CreditsError):
        ctx.stop.stop_submitting("credits", f"out of credits ({exc.message}): submitting stopped")
    else:
        ctx.stop.stop_submitting("budget", f"--max-cost: {where(spec)} could not be priced by a dry run ({exc}): "
                                           f"submitting stopped; the jobs not sent stay pending")
    log.error("%s", ctx.stop.message)


def plan_asset_ids(inputs: Iterable[InputRef], run_dir: Path) -> tuple[dict[str, str], list[InputRef]]:
    """Asset ids to price with: those the run folder's journal recorded for these files, else a placeholder
    (a dry run does not validate parameters). Returns the ids by sha256 and the inputs given a placeholder."""
    known = replay(run_dir / JOURNAL_NAME, keep_specs=False).uploads if (run_dir / JOURNAL_NAME).is_file() else {}
    ids: dict[str, str] = {}
    placeholders: list[InputRef] = []
    for ref in inputs:
        sha256 = ref.sha256 or ""
        if sha256 in ids:
            continue
        if sha256 in known:
            ids[sha256] = known[sha256]
        else:
            ids[sha256] = PLACEHOLDER_PREFIX + sha256[:16]
            placeholders.append(ref)
    return ids, placeholders


async def price_jobs(api: ApiClient, jobs: Iterable[JobSpec], asset_ids: Mapping[str, str], *, each: bool,
                     workers: int = DRY_RUN_WORKERS) -> dict[str, float]:
    """Dry-run one job of each price class (`each`: every job); the prices by class (`each`: by job key).

    Walks `jobs` once, lazily (memory grows with the classes, not the jobs). PricingError names the first job
    that could not be priced."""
    prices: dict[str, float] = {}
    todo: asyncio.Queue[JobSpec | None] = asyncio.Queue(maxsize=2 * workers)

    async def produce() -> None:
        seen: set[str] = set()
        for spec in jobs:
            name = spec.key if each else price_class(spec)
            if name not in seen:
                seen.add(name)
                await todo.put(spec)
        for _ in range(workers):
            await todo.put(None)

    loop = asyncio.get_running_loop()
    told_at = loop.time()

    async def work() -> None:
        nonlocal told_at
        while (spec := await todo.get()) is not None:
            try:
                cost = await dry_run(api, spec.model, spec.body(asset_ids))
            except PipelineError as exc:
                raise PricingError(f"{where(spec)}: {exc}", exit_status=exc.exit_status) from None
            prices[spec.key if each else price_class(spec)] = cost
            if loop.time() - told_at >= PROGRESS_EVERY_S:
                told_at = loop.time()
                log.info("%d dry run(s) so far (%d API requests)", len(prices), api.requests)

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(produce())
            for _ in range(workers):
                group.create_task(work())
    except BaseExceptionGroup as group:
        ours, other = group.split(PricingError)
        if ours is None or other is not None:
            raise
        first: BaseException = ours
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    return prices
