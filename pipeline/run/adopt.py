"""Reconciling unknown jobs with the server: adopt the job a lost POST made, or learn it made none.

For the jobs left *unknown* (a POST sent, its answer lost), list the account's jobs created since a little
before the earliest of their intents (`GET /v1/jobs?createdAfter=...&hideResults=false`, every page), keep
the `custom` ones the journal does not know yet (`api.listing`), fetch by id the rows that lack `metadata.input`, and match
(`reconcile.matches`). One match: the job is adopted (journaled `submitted` with `adopted`), then polled and
downloaded like any other. More than one (it was paid twice before): one is adopted, the others are
journaled as `stray` with their ids, never lost. None, with the whole window listed and the POST older than
the settle time: the server made no job, so the job is journaled `not-sent` (pending) and sent again
without paying twice. A listing that fails or cannot be finished leaves the jobs unknown, with the reason.
Listing and lookups spend the shared request budget (a few requests a run, not a few a job).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.api.budget import LOOKUP
from pipeline.api.client import ApiClient
from pipeline.api.listing import list_jobs
from pipeline.errors import ApiError, BadResponse, RunHalted
from pipeline.ledger.journal import Journal
from pipeline.ledger.replay import UNKNOWN, LedgerState, intents_of
from pipeline.run.reconcile import ListedJob, assign, is_custom, listed_job, listing_start, settled

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Reconciled:
    """What one pass found: keys adopted, keys found never created, keys still unknown, stray job ids."""

    adopted: list[str] = field(default_factory=list)
    not_created: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)
    requests: int = 0


async def reconcile(api: ApiClient, journal: Journal, keys: Iterable[str], *, settle_s: float) -> Reconciled:
    """One reconciling pass over the unknown `keys` (see the module docstring); journals every outcome."""
    found = Reconciled()
    wanted = sorted(k for k in set(keys) if journal.state.job(k).state == UNKNOWN)
    if not wanted:
        return found
    intents = await asyncio.to_thread(intents_of, journal.path, set(wanted))
    wanted = [k for k in wanted if isinstance(intents.get(k, {}).get("request"), dict)]
    if not wanted:
        return found
    listed_at = time.time()
    before = api.requests
    try:
        candidates = await unknown_to_journal(api, journal.state,
                                              listing_start(float(intents[k].get("t", listed_at)) for k in wanted))
    except (ApiError, RunHalted) as exc:
        found.requests = api.requests - before
        api.reconcile_requests += found.requests
        why = f"could not ask the server which jobs exist ({exc}); left unknown"
        for key in wanted:
            await journal.write("unresolved", key=key, error=why)
        found.unresolved = wanted
        log.warning("%d unknown job(s): %s", len(wanted), why)
        return found
    found.requests = api.requests - before
    api.reconcile_requests += found.requests
    made = assign({k: intents[k] for k in wanted}, candidates)
    for key in wanted:
        intent = intents[key]
        if key in made:
            adopted, *extra = made[key]
            await journal.write("submitted", key=key, job_id=adopted.job_id, status="queued", adopted=True)
            for stray in extra:
                await journal.write("stray", key=key, job_id=stray.job_id)
            found.adopted.append(key)
            found.strays += [s.job_id for s in extra]
        elif settled(float(intent.get("t", listed_at)), listed_at, settle_s=settle_s):
            await journal.write("not-sent", key=key, error="reconciled: the server made no job for this POST")
            found.not_created.append(key)
        else:
            found.unresolved.append(key)  # too recent to be sure: a later pass decides
    log.info("reconciled %d unknown job(s) with the server in %d request(s): %d adopted, %d never created "
             "(sent again), %d undecided%s", len(wanted), found.requests, len(found.adopted),
             len(found.not_created), len(found.unresolved),
             f", {len(found.strays)} paid twice before (strays, kept in the journal)" if found.strays else "")
    return found


async def unknown_to_journal(api: ApiClient, state: LedgerState, created_after: str) -> list[ListedJob]:
    """The account's `custom` jobs created since `created_after` whose ids the journal does not hold (adopted,
    or strays), each with its `metadata.input` (fetched by id when the row lacks it)."""
    rows = await list_since(api, created_after)
    known = {j.job_id for j in state.jobs.values() if j.job_id} | set(state.strays)
    return [await with_input(api, row) for row in rows if is_custom(row) and row.job_id not in known]


async def list_since(api: ApiClient, created_after: str) -> list[ListedJob]:
    """Every job created since `created_after`, all pages; ApiError when a page is refused or malformed."""
    rows = await list_jobs(api, {"createdAfter": created_after, "hideResults": "false"}, priority=LOOKUP,
                           retries=api.max_retries)
    return [job for row in rows if (job := listed_job(row)) is not None]


async def with_input(api: ApiClient, row: ListedJob) -> ListedJob:
    """The row itself, or (when it lacks `metadata.input`) the job fetched by id, asked again while the answer
    is of the wrong shape. BadResponse when it never carries its input: a job whose input is not known may be
    the one a lost POST made, so no lost POST may be taken for never made (it would be sent and paid twice)."""
    if row.input is not None:
        return row
    for _ in range(api.max_retries + 1):
        data = await api.call("GET", f"/v1/jobs/{row.job_id}", LOOKUP)
        fetched = listed_job(data.get("job")) if isinstance(data, dict) else None
        if fetched is not None and fetched.input is not None:
            return fetched
    raise BadResponse(200, f"job {row.job_id}, fetched by id, does not show its input (metadata.input)")
