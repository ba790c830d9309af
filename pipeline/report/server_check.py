"""`status --server`: the journal held against the account's job listing, changing nothing.

It lists the account's jobs created since a little before the run's first event (`GET /v1/jobs`,
`createdAfter`, every page; rows without `metadata.input` fetched by id) and tells: which *unknown* jobs do
exist on the server (a run would adopt them), which the server never made (a run would send them again once
they are older than `reconcile_settle_s`), and which server jobs the journal does not know although their
input matches a job of the manifest (made by another tool, or by a run whose journal was lost).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from pipeline.api.budget import RequestBudget
from pipeline.api.client import ApiClient
from pipeline.config import Credentials, Settings
from pipeline.ledger.replay import JOURNAL_NAME, UNKNOWN, LedgerState, intents_of, replay
from pipeline.run.adopt import unknown_to_journal
from pipeline.run.reconcile import assign, listing_start, matches, settled


@dataclass(frozen=True, slots=True)
class ServerCheck:
    """What the server holds that the journal does not say."""

    listed: int  # custom jobs listed in the window that the journal does not know
    requests: int  # API requests this check made
    unknown_found: tuple[tuple[str, str], ...]  # (key, server job id): unknown here, made there
    unknown_absent: tuple[str, ...]  # keys of unknown jobs the server never made (settled)
    unknown_undecided: tuple[str, ...]  # too recent to tell
    untracked: tuple[tuple[str, str], ...]  # (server job id, key): a manifest job the journal does not know
    manifest_checked: bool  # whether the manifest could be read to look for untracked jobs


async def check_server(run_dir: Path, settings: Settings, credentials: Credentials,
                       bodies: Mapping[str, tuple[str, dict[str, Any]]] | None) -> ServerCheck:
    """Compare the run folder's journal with the server. `bodies`: key -> (model, body) of the manifest's jobs
    (None when the manifest cannot be read: untracked jobs are then not looked for)."""
    state = replay(run_dir / JOURNAL_NAME, keep_specs=False)
    unknown = sorted(k for k, j in state.jobs.items() if j.state == UNKNOWN)
    intents = intents_of(run_dir / JOURNAL_NAME, set(unknown))
    listed_at = time.time()
    async with aiohttp.ClientSession() as session:
        api = ApiClient(session, settings, credentials, RequestBudget(settings.max_requests_per_s))
        candidates = await unknown_to_journal(api, state, listing_start([state.first_at or listed_at]))
        requests = api.requests
    made = assign(intents, candidates)  # the same rule as reconciling: what a run would adopt
    found, absent, undecided = [], [], []
    for key in unknown:
        if key in made:
            found.append((key, made[key][0].job_id))
        elif settled(float(intents.get(key, {}).get("t", listed_at)), listed_at,
                     settle_s=settings.reconcile_settle_s):
            absent.append(key)
        else:
            undecided.append(key)
    taken = {c.job_id for jobs in made.values() for c in jobs}
    candidates = [c for c in candidates if c.job_id not in taken]
    return ServerCheck(len(candidates) + len(taken), requests, tuple(found), tuple(absent), tuple(undecided),
                       _untracked(state, candidates, bodies), bodies is not None)


def _untracked(state: LedgerState, candidates: list[Any],
               bodies: Mapping[str, tuple[str, dict[str, Any]]] | None) -> tuple[tuple[str, str], ...]:
    """Server jobs whose input is a manifest job's body, for jobs the journal has no job id for."""
    if not bodies:
        return ()
    by_prompt: dict[tuple[Any, Any], list[str]] = {}
    for key, (_, body) in bodies.items():
        by_prompt.setdefault((body.get("prompt"), body.get("seed")), []).append(key)
    out = []
    for row in candidates:
        if row.input is None:
            continue
        for key in by_prompt.get((row.input.get("prompt"), row.input.get("seed")), []):
            model, body = bodies[key]
            if not (state.jobs.get(key) and state.jobs[key].job_id) and matches(model, body, row.input):
                out.append((row.job_id, key))
                break
    return tuple(out)


def check_text(check: ServerCheck) -> str:
    """The lines `status --server` adds."""
    lines = [f"server: {check.listed} job(s) of this account since the run began that the journal does not "
             f"hold ({check.requests} request(s)); nothing was changed"]
    if check.unknown_found:
        lines.append(f"  {len(check.unknown_found)} unknown job(s) exist on the server (the next run adopts them): "
                     + ", ".join(f"{key[:12]} = {job_id}" for key, job_id in check.unknown_found[:10]))
    if check.unknown_absent:
        lines.append(f"  {len(check.unknown_absent)} unknown job(s) were never made (the next run sends them): "
                     + ", ".join(key[:12] for key in check.unknown_absent[:10]))
    if check.unknown_undecided:
        lines.append(f"  {len(check.unknown_undecided)} unknown job(s) too recent to tell (reconcile_settle_s)")
    if check.untracked:
        lines.append(f"  {len(check.untracked)} server job(s) match jobs of the manifest the journal has no job "
                     f"for (another tool, or a lost journal): "
                     + ", ".join(f"{job_id} (job {key[:12]})" for job_id, key in check.untracked[:10]))
    if not check.manifest_checked:
        lines.append("  (the manifest could not be read: server jobs were not matched against it)")
    if len(lines) == 1:
        lines.append("  the journal and the server agree")
    return "\n".join(lines)
