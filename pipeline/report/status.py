"""`ltx-batch status`: what a run folder's journal says, during a run (another process appending) or after.

`run_status(run_dir)` replays the journal as `ledger.replay` does (a torn last line, normal while a run
writes, is ignored), noting each session's span, into a frozen `RunStatus`: counts by state, failures
grouped by reason, unknown-POST jobs, time spent running, API requests, and what a resume would do.
`status_view` presents it (text and JSON).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline.errors import InputError, PipelineError
from pipeline.ledger.replay import (
    DOWNLOADED,
    FAILED,
    JOURNAL_NAME,
    PENDING,
    STATES,
    UNKNOWN,
    JobState,
    LedgerState,
    SessionPacing,
    Spend,
    apply,
    read_events,
)
from pipeline.ledger.results import iso
from pipeline.ledger.rundir import lost_files
from pipeline.manifest.load import Manifest, load_manifest
from pipeline.report.liveness import run_activity

KEY_PREFIX_CHARS = 12
SUBMITTING = "submitting"  # a running session's POST awaiting its answer (the journal says unknown until it comes)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobRef:
    """A job as status lists it: its index (None when the journal never saw its spec) and key."""

    index: int | None
    key: str

    def __str__(self) -> str:
        return f"#{self.index if self.index is not None else '?'} ({self.key[:KEY_PREFIX_CHARS]})"


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """Failed jobs that share a reason (error_kind), message and hint (what to do about it); the trace ids of
    their error answers by job key (support asks for them)."""

    kind: str | None
    error: str
    jobs: tuple[JobRef, ...]
    hint: str | None = None
    trace_ids: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ResumePlan:
    """What `ltx-batch run` on the same manifest would do next (without --retry-failed/--resubmit-unknown)."""

    poll: int  # submitted: polled until they finish
    download: int  # rendered (paid), outputs not all on disk
    redownload_failed: int  # failed in download: fetched again automatically, never resubmitted
    refetch_lost: int  # downloaded, but a file is missing or changed on disk: fetched again
    submit: int  # pending (and failed for want of an input's upload): needs the manifest
    leave_unknown: int  # POST sent, answer lost: only with --resubmit-unknown
    leave_failed: int  # only with --retry-failed
    job_count: int | None  # from the last run event


@dataclass(frozen=True, slots=True)
class RunStatus:
    """Everything `status` shows about one run folder."""

    run_dir: str
    name: str
    manifest: str | None
    activity: str  # running | finished | stopped | interrupted | not started
    pid: int | None
    stop_reason: str | None
    sessions: int
    job_count: int | None
    known: int  # jobs the journal has an event for
    counts: dict[str, int]  # by state; pending includes the manifest's jobs never sent
    started_at: str | None
    updated_at: str | None
    elapsed_s: float
    api_requests: int
    failures: tuple[FailureGroup, ...]
    unknown: tuple[JobRef, ...]  # sent, answer lost (the job may exist on the server, paid)
    stalled: tuple[JobRef, ...]  # submitted jobs whose polling gave up (job_timeout_s): still on the server
    pacing: SessionPacing | None  # the last session's 429s and sending rate
    resume: ResumePlan
    torn_tail: bool  # the journal ends mid-line (being written now, or a crash)
    cost: Spend = field(default_factory=Spend)  # the run's cost so far, every session and attempt
    strays: tuple[tuple[str, str], ...] = ()  # (server job id, key): a second job made for one body, kept
    strays_saved: int = 0  # of the strays, those whose outputs run --download-strays saved
    submitting: tuple[JobRef, ...] = ()  # a running session's POSTs awaiting their answer (not unknown: not lost)
    limit: Mapping[str, Any] | None = None  # the last session was run --limit: what it picked (Limit.to_json)
    poll_fallback: str | None = None  # why the last session fell back from the job listing to polling each job


def run_status(run_dir: str | Path, *, now: float | None = None) -> RunStatus:
    """Replay the run folder's journal into a RunStatus; InputError (exit 2) when there is no journal."""
    return run_status_and_state(run_dir, now=now)[0]


def run_status_and_state(run_dir: str | Path, *, now: float | None = None) -> tuple[RunStatus, LedgerState]:
    """`run_status`, and the replayed journal it comes from (for `job_entries`)."""
    path = Path(run_dir).expanduser()
    journal = path / JOURNAL_NAME
    if not journal.is_file():
        what = "does not exist" if not path.exists() else "has no " + JOURNAL_NAME
        raise InputError(f"{path}: {what}, so it is not a run folder "
                         "(give the folder `ltx-batch run` wrote, e.g. out/<manifest name>)")
    state, sessions = replay_sessions(journal)
    return summarize(path, state, now=time.time() if now is None else now, sessions=sessions,
                     torn_tail=_ends_mid_line(journal)), state


def replay_sessions(path: Path) -> tuple[LedgerState, list[tuple[float, float]]]:
    """`ledger.replay`, also noting each session's (first, last) event time: the time spent running."""
    state = LedgerState(keep_specs=False)  # status never reads specs or bodies: 100,000 jobs 674 -> 176 MiB
    sessions: list[tuple[float, float]] = []
    for event in read_events(path, warn_torn=False):  # a torn tail is normal while a run writes
        apply(state, event)
        t = float(event.get("t", 0.0))
        if event.get("ev") == "run" or not sessions:
            sessions.append((t, t))
        else:
            sessions[-1] = (sessions[-1][0], max(sessions[-1][1], t))
    return state, sessions


def summarize(run_dir: Path, state: LedgerState, *, now: float, sessions: Sequence[tuple[float, float]] = (),
              torn_tail: bool = False) -> RunStatus:
    """The status a replayed journal describes (pure but for checking output files and the run's pid).

    Elapsed time is the sum of the sessions' spans (idle time between sessions is not counted); a session
    still running counts up to `now`.
    """
    last = state.runs[-1] if state.runs else {}
    job_count = last.get("job_count") if isinstance(last.get("job_count"), int) else None
    counts = state.counts()
    known = sum(counts.values())
    unseen = max(0, job_count - known) if job_count is not None else 0
    counts[PENDING] += unseen
    pid = last.get("pid") if isinstance(last.get("pid"), int) else None
    activity = run_activity(state, pid, float(last.get("t", 0.0)))
    spans = list(sessions) or ([(state.first_at, state.last_at)] if state.first_at is not None else [])
    if spans and activity == "running":
        spans[-1] = (spans[-1][0], max(spans[-1][1], now))
    elapsed_s = sum(max(0.0, end - start) for start, end in spans)
    jobs = list(state.jobs.values())
    session_t = float(last.get("t", 0.0))
    submitting = tuple(_ref(j) for j in jobs if activity == "running" and _submitting(j, session_t))
    counts[UNKNOWN] -= len(submitting)
    plan = ResumePlan(
        poll=sum(1 for j in jobs if j.to_poll),
        download=sum(1 for j in jobs if j.to_download),
        redownload_failed=sum(1 for j in jobs if j.download_failed),
        refetch_lost=len(lost_files(run_dir, ((j.key, r.path, r.bytes, r.mtime_ns, r.sha256) for j in jobs
                                            if j.state == DOWNLOADED for r in j.files.values()))),
        submit=counts[PENDING] + sum(1 for j in jobs if j.upload_failed),
        leave_unknown=counts[UNKNOWN],
        leave_failed=sum(1 for j in jobs if j.generation_failed),
        job_count=job_count,
    )
    return RunStatus(
        run_dir=str(run_dir), name=str(last.get("name") or run_dir.name), manifest=last.get("manifest"),
        activity=activity, pid=pid, stop_reason=state.stopped, sessions=len(state.runs), job_count=job_count,
        known=known, counts={**{s: counts[s] for s in STATES}, SUBMITTING: len(submitting)},
        started_at=iso(state.first_at),
        updated_at=iso(state.last_at),
        elapsed_s=round(elapsed_s, 3),
        api_requests=state.api_requests, failures=_failures(jobs),
        unknown=tuple(_ref(j) for j in jobs if j.state == UNKNOWN and not (activity == "running"
                                                                          and _submitting(j, session_t))),
        stalled=tuple(_ref(j) for j in jobs if j.polling_gave_up),
        pacing=state.session_pacing, resume=plan, torn_tail=torn_tail, cost=replace(state.spend),
        strays=tuple(sorted(state.strays.items())), strays_saved=sum(1 for j in state.strays if j in state.stray_files),
        submitting=submitting, limit=_limit_of(last), poll_fallback=state.poll_mode_why)


def _limit_of(run_event: Mapping[str, Any]) -> Mapping[str, Any] | None:
    options = run_event.get("options")
    limit = options.get("limit") if isinstance(options, dict) else None
    return limit if isinstance(limit, dict) else None


def _submitting(job: JobState, session_t: float) -> bool:
    """A POST the running session sent and still awaits: its intent is of this session and no answer came
    (a lost one is journaled, "answer-lost"); older intents without an answer are unknown."""
    return job.state == UNKNOWN and job.error is None and job.intent_at is not None and job.intent_at >= session_t


def job_entries(status: RunStatus, state: LedgerState) -> Iterator[dict[str, Any]]:
    """One plain record per job, lazily: the run's manifest's jobs in order when it can be read (the ones never
    sent as pending), then the jobs the journal knows that it does not have (`in_manifest` false); the
    journal's jobs alone when it cannot be read (`in_manifest` null)."""
    submitting = {ref.key for ref in status.submitting}
    manifest = _manifest(status.manifest)
    seen: set[str] = set()
    for spec in manifest.jobs() if manifest is not None else ():
        seen.add(spec.key)
        job = state.jobs.get(spec.key)
        yield _entry(spec.key, spec.index, spec.batch, job, in_manifest=True, submitting=spec.key in submitting)
    for key, job in state.jobs.items():
        if key not in seen:
            yield _entry(key, job.index, job.batch, job, in_manifest=False if manifest is not None else None,
                         submitting=key in submitting)


def _manifest(path: str | None) -> Manifest | None:
    """The run's manifest (as the last session's run event names it), or None when it cannot be read."""
    if not path:
        return None
    try:
        return load_manifest(path)
    except (PipelineError, OSError) as exc:
        log.warning("the run's manifest %s cannot be read (%s): jobs never sent are not listed", path, exc)
        return None


def _entry(key: str, index: int | None, batch: str | None, job: JobState | None, *, in_manifest: bool | None,
           submitting: bool) -> dict[str, Any]:
    return {
        "key": key, "index": index, "batch": batch, "in_manifest": in_manifest,
        "status": SUBMITTING if submitting else job.state if job is not None else PENDING,
        "job_id": job.job_id if job else None, "server_status": job.server_status if job else None,
        "error": job.error if job else None, "error_kind": job.error_kind if job else None,
        "hint": job.hint if job else None, "trace_id": job.trace_id if job else None,
        "cost_cu": job.cost_cu if job else None,
        "attempts": {"submit": job.submit_attempts if job else 0, "download": job.download_attempts if job else 0},
        "files": [{"path": f.path, "bytes": f.bytes, "sha256": f.sha256} for f in job.files.values()] if job else [],
    }


def _ref(job: JobState) -> JobRef:
    return JobRef(job.index, job.key)


def _failures(jobs: list[JobState]) -> tuple[FailureGroup, ...]:
    groups: dict[tuple[str | None, str, str | None], list[JobState]] = {}
    for job in jobs:
        if job.state == FAILED:
            groups.setdefault((job.error_kind, job.error or "no message", job.hint), []).append(job)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), str(item[0][0]), item[0][1], item[0][2] or ""))
    return tuple(FailureGroup(kind, error, tuple(_ref(j) for j in members), hint,
                              {j.key: j.trace_id for j in members if j.trace_id})
                 for (kind, error, hint), members in ordered)


def _ends_mid_line(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() == 0:
                return False
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"
    except OSError:
        return False
