"""How a run ended: the tally of the manifest's jobs, the results.json record, the exit status and the summary.

Each is made from what the run already holds (the roster's keys, the journal's state): none expands the
manifest again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.api.client import ApiClient
from pipeline.config import Settings
from pipeline.ledger.costs import spend_text
from pipeline.ledger.replay import (
    DOWNLOADED,
    FAILED,
    FINISHED,
    JOURNAL_NAME,
    PENDING,
    POLL_NOT_FOUND,
    STATES,
    UNFINISHED,
    UNKNOWN,
    LedgerState,
    Spend,
    count_in,
)
from pipeline.ledger.results import iso, write_results
from pipeline.run.context import RunnableManifest, StopFlags
from pipeline.run.limit import Limit

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_STOPPED, EXIT_INTERRUPTED = 0, 1, 3, 130


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
    stalled: list[tuple[int | None, str, str]] = field(default_factory=list)  # (index, key, job id): timed out
    not_found: list[tuple[int | None, str, str]] = field(default_factory=list)  # (index, key, job id): 404 on poll
    rate_cuts: int = 0  # times a 429 lowered the sending rate
    lowest_sending_per_s: float | None = None  # the lowest it went, when it was lowered
    configured_per_s: float | None = None  # --rate
    spend: Spend = field(default_factory=Spend)  # the run's cost so far (every session, every attempt)
    failure_notes: dict[str, str] = field(default_factory=dict)  # key -> "hint: ...; trace id ..." of a failure
    reconcile_requests: int = 0  # of api_requests, those spent asking the server about lost POSTs
    retryable: int = 0  # failed jobs only --retry-failed sends again (not those whose download or upload failed)
    limit: Limit | None = None  # run --limit: the jobs it picked
    chosen_counts: dict[str, int] | None = None  # with a limit: the picked jobs by state

    @property
    def requests_per_job(self) -> float:
        finished = count_in(self.counts, FINISHED)
        return self.api_requests / finished if finished else 0.0


@dataclass(frozen=True, slots=True)
class Tally:
    """The manifest's jobs by state, and the ones that need a word."""

    counts: dict[str, int]
    failures: list[tuple[int | None, str, str]]
    unknown: list[tuple[int | None, str]]
    stalled: list[tuple[int | None, str, str]]  # still running when polling gave up (job_timeout_s)
    not_found: list[tuple[int | None, str, str]]  # polling gave up on a 404: created for us, so paid
    journal_only: int  # jobs the journal knows that the current manifest no longer has
    failure_notes: dict[str, str] = field(default_factory=dict)  # key -> the failure's hint and trace id, if any
    spend: Spend = field(default_factory=Spend)  # the run's cost (the journal's, every session and attempt)
    retryable: int = 0  # failed jobs --retry-failed would send again (a failed download or upload is retried anyway)
    limit: Limit | None = None  # run --limit: the jobs it picked
    chosen_counts: dict[str, int] | None = None  # with a limit: the picked jobs by state


def tally(keys: Iterable[str], ledger: LedgerState, limit: Limit | None = None) -> Tally:
    """The manifest's jobs (`keys`, every job's key by index: the run's roster) by their state in `ledger`;
    with a limit, also the jobs it picked."""
    counts = dict.fromkeys(STATES, 0)
    chosen = dict.fromkeys(STATES, 0) if limit is not None else None
    failures: list[tuple[int | None, str, str]] = []
    unknown: list[tuple[int | None, str]] = []
    stalled: list[tuple[int | None, str, str]] = []
    not_found: list[tuple[int | None, str, str]] = []
    notes: dict[str, str] = {}
    jobs = ledger.jobs
    seen = retryable = 0
    for index, key in enumerate(keys):
        job = jobs.get(key)
        seen += job is not None
        state = job.state if job is not None else PENDING
        counts[state] += 1
        if limit is not None and chosen is not None and limit(index):
            chosen[state] += 1
        if state == FAILED:
            failures.append((index, key, (job.error if job else None) or "unknown error"))
            if job is not None and (note := failure_note(job.hint, job.trace_id)):
                notes[key] = note
            retryable += job is not None and job.generation_failed
        elif state == UNKNOWN:
            unknown.append((index, key))
        elif job is not None and job.polling_gave_up:
            (not_found if job.error_kind == POLL_NOT_FOUND else stalled).append((index, key, job.job_id or "?"))
    return Tally(counts, failures, unknown, stalled, not_found, len(jobs) - seen, notes, replace(ledger.spend),
                 retryable, limit, chosen)


def failure_note(hint: str | None, trace_id: str | None) -> str:
    """What to add to a failure's message: the server's hint and the error's trace id (support asks for it)."""
    parts = ([f"hint: {' '.join(hint.split())}"] if hint else []) + ([f"trace id {trace_id}"] if trace_id else [])
    return "; ".join(parts)


def run_record(manifest: RunnableManifest, state: LedgerState, settings: Settings, started: float,
               api: ApiClient, stop: StopFlags, ending: Tally) -> dict[str, Any]:
    """The "run" part of results.json: what was run, where, its counts, requests and cost."""
    finished = count_in(ending.counts, FINISHED)
    return {
        "name": manifest.name,
        "manifest": state.runs[-1].get("manifest") if state.runs else None,
        "model": manifest.model,
        "parameters": {"values": list(manifest.parameters[0]),  # its models' inputs: results.csv's columns
                       "files": list(manifest.parameters[1])},
        "api_base_url": settings.api_base_url,
        "tool_version": __version__,
        "sessions": len(state.runs),
        "first_started_at": iso(state.first_at),
        "updated_at": iso(time.time()),
        "session_wall_s": round(time.monotonic() - started, 3),
        "job_count": manifest.job_count,
        "counts": ending.counts,
        "jobs_no_longer_in_manifest": ending.journal_only,
        "api_requests": state.api_requests,
        "api_requests_per_finished_job": round(state.api_requests / finished, 3) if finished else None,
        "throttled_429": api.throttled,
        "reconcile_requests": api.reconcile_requests,  # this session's requests asking about lost POSTs
        "sending_rate_cuts": api.pacing.cuts,
        "lowest_sending_rate_per_s": round(api.pacing.lowest_per_s, 3),
        "stopped": stop.reason,
        "stop_message": stop.message,
        "cost_cu": round(state.spend.recorded_cu, 6),  # recorded (generate answers, polled jobs), every attempt
        "cost_cu_estimated": round(state.spend.estimated_cu, 6),  # --max-cost estimates of jobs whose answer was lost
        "jobs_without_cost": state.spend.unpriced,  # sent, no cost recorded (nor estimated)
        "cost_cu_failed_jobs": round(state.spend.failed_cu, 6),  # part of cost_cu: jobs that failed on the server
        "max_cost_cu": settings.max_cost_cu or None,
        "limit": None if ending.limit is None else {**ending.limit.to_json(), "chosen_counts": ending.chosen_counts},
        "poll_mode": state.poll_mode,  # feed (the job listing) or per-job, at the end of this session
        "poll_mode_why": state.poll_mode_why,  # why this session fell back to polling each job, if it did
    }


def save_results(run_dir: Path, run: Mapping[str, Any], jobs: Iterable[Mapping[str, Any]], *,
                 mark: str | None = None) -> None:
    """Write results.json and results.csv (see `write_results` for `mark`); a failure is logged, not raised (the
    journal holds everything)."""
    try:
        write_results(run_dir, run, jobs, mark=mark)
    except OSError as exc:  # the journal still holds everything; `status` and the next run rebuild it
        log.error("could not write results.json: %s (the journal %s is intact)", exc, JOURNAL_NAME)


def summarize(run_dir: Path, manifest: RunnableManifest, settings: Settings, started: float, api: ApiClient,
              stop: StopFlags, ending: Tally) -> RunSummary:
    """What the run achieved and its exit status."""
    if stop.reason == "interrupted":
        status = EXIT_INTERRUPTED
    elif stop.reason in ("auth", "credits", "access", "budget"):
        status = EXIT_STOPPED
    elif ending.counts[DOWNLOADED] == manifest.job_count or (
            ending.chosen_counts is not None and ending.chosen_counts[DOWNLOADED] == sum(ending.chosen_counts.values())):
        status = EXIT_OK  # with --limit: every job it picked
    else:
        status = EXIT_FAILED
    return RunSummary(run_dir, status, ending.counts, manifest.job_count, time.monotonic() - started,
                      api.requests, api.throttled, stop.reason, stop.message, ending.failures, ending.unknown,
                      ending.stalled, ending.not_found,
                      api.pacing.cuts, api.pacing.lowest_per_s if api.pacing.cuts else None,
                      settings.max_requests_per_s, ending.spend, ending.failure_notes, api.reconcile_requests,
                      ending.retryable, ending.limit, ending.chosen_counts)


def summary_text(summary: RunSummary, *, resume_command: str, full_command: str | None = None) -> str:
    """The final lines printed after a run; `full_command` is the command without --limit (the rest of a
    limited run)."""
    c = summary.counts
    lines = [f"{c[DOWNLOADED]}/{summary.total} downloaded, {c[FAILED]} failed, {c[UNKNOWN]} unknown, "
             f"{count_in(c, UNFINISHED)} unfinished; wall {summary.wall_s:.1f}s; "
             f"{summary.api_requests} API requests ({summary.requests_per_job:.2f} per finished job"
             + (f"; {summary.reconcile_requests} to reconcile lost POSTs" if summary.reconcile_requests else "")
             + f"), {summary.throttled} throttled (429)",
             f"cost: {spend_text(summary.spend)}",
             f"output: {summary.run_dir}"]
    if summary.rate_cuts and summary.lowest_sending_per_s is not None:
        lowest, configured = summary.lowest_sending_per_s, summary.configured_per_s
        hint = (f": the account's limit looks lower than --rate {configured:g}; a lower --rate avoids the pauses"
                if configured and lowest < configured / 2 else "")
        lines.append(f"429s lowered the sending rate {summary.rate_cuts} time(s), to as low as {lowest:.1f} "
                     f"requests/s{hint}")
    for index, key, error in summary.failures[:20]:
        note = summary.failure_notes.get(key)
        lines.append(f"  failed job {index if index is not None else '?'} ({key[:12]}): {error}"
                     + (f" ({note})" if note else ""))
    if len(summary.failures) > 20:
        lines.append(f"  ... and {len(summary.failures) - 20} more failures (see results.json)")
    if summary.retryable:
        retry = resume_command if " --retry-failed" in f"{resume_command} " else f"{resume_command} --retry-failed"
        lines.append(f"to send the {summary.retryable} failed job(s) again (each job made is paid): {retry}")
    if summary.unknown:
        lines.append(f"{len(summary.unknown)} job(s) were sent but their answer was lost; they may exist on the "
                     f"server (paid). Check your Scenario account, then rerun with --resubmit-unknown to send "
                     f"them again:")
        lines += [f"  job {i if i is not None else '?'} ({k[:12]})" for i, k in summary.unknown[:20]]
    if summary.stalled:
        lines.append(f"{len(summary.stalled)} job(s) were still running on the server when polling stopped "
                     f"(job_timeout_s); they are paid and may still finish: the same command polls them again:")
        lines += [f"  job {i if i is not None else '?'} ({k[:12]}): {job_id}" for i, k, job_id in summary.stalled[:20]]
    if summary.not_found:
        lines.append(f"{len(summary.not_found)} job(s) created for this run answered 404 (not found) when polled; "
                     f"they are left submitted and never resent (they are paid): the same command polls them "
                     f"again. If this persists, check that the API key belongs to the project that made them:")
        lines += [f"  job {i if i is not None else '?'} ({k[:12]}): {job_id}"
                  for i, k, job_id in summary.not_found[:20]]
    if summary.message and summary.stopped != "interrupted":
        lines.append(f"stopped: {summary.message}")
    picked = summary.chosen_counts
    if summary.limit is not None and picked is not None:
        lines.append(f"limited run ({summary.limit.describe()}): {picked[DOWNLOADED]:,}/{sum(picked.values()):,} "
                     f"of them downloaded")
    unfinished = count_in(c, UNFINISHED)
    if picked is not None and summary.exit_status not in (EXIT_INTERRUPTED, EXIT_STOPPED) \
            and not count_in(picked, UNFINISHED):
        if unfinished:
            lines.append(f"to run the rest ({unfinished:,} job{'' if unfinished == 1 else 's'}; nothing is sent "
                         f"twice): {full_command or resume_command}")
    elif summary.exit_status in (EXIT_INTERRUPTED, EXIT_STOPPED) or unfinished:
        lines.append(f"to resume: {resume_command}")
    return "\n".join(lines)
