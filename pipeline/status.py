"""`ltx-batch status`: what a run folder's journal says, during a run (another process appending) or after.

`run_status(run_dir)` replays the journal as `ledger.replay` does (a torn last line, normal while a run
writes, is ignored), noting each session's span, into a frozen `RunStatus`: counts by state, failures
grouped by reason, unknown-POST jobs, time spent running, API requests, and what a resume would do.
`status_text` and `status_json` present it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import InputError
from pipeline.ledger import (
    DOWNLOADED,
    FAILED,
    JOURNAL_NAME,
    PENDING,
    STATES,
    SUBMITTED,
    SUCCEEDED,
    UNKNOWN,
    JobState,
    LedgerState,
    apply,
    read_events,
)
from pipeline.liveness import run_activity
from pipeline.results import iso
from pipeline.rundir import lost_files

SHOWN_PER_GROUP = 10
SHOWN_GROUPS = 20
SHOWN_UNKNOWN = 50
KEY_PREFIX_CHARS = 12


@dataclass(frozen=True, slots=True)
class JobRef:
    """A job as status lists it: its index (None when the journal never saw its spec) and key."""

    index: int | None
    key: str

    def __str__(self) -> str:
        return f"#{self.index if self.index is not None else '?'} ({self.key[:KEY_PREFIX_CHARS]})"


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """Failed jobs that share a reason (error_kind) and message."""

    kind: str | None
    error: str
    jobs: tuple[JobRef, ...]


@dataclass(frozen=True, slots=True)
class ResumePlan:
    """What `ltx-batch run` on the same manifest would do next (without --retry-failed/--resubmit-unknown)."""

    poll: int  # submitted: polled until they finish
    download: int  # rendered (paid), outputs not all on disk
    redownload_failed: int  # failed in download: fetched again automatically, never resubmitted
    refetch_lost: int  # downloaded, but a file is missing or changed on disk: fetched again
    submit: int  # pending: needs the manifest
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
    unknown: tuple[JobRef, ...]
    stalled: tuple[JobRef, ...]  # submitted jobs whose polling gave up (job_timeout_s): still on the server
    resume: ResumePlan
    torn_tail: bool  # the journal ends mid-line (being written now, or a crash)


def run_status(run_dir: str | Path, *, now: float | None = None) -> RunStatus:
    """Replay the run folder's journal into a RunStatus; InputError (exit 2) when there is no journal."""
    path = Path(run_dir).expanduser()
    journal = path / JOURNAL_NAME
    if not journal.is_file():
        what = "does not exist" if not path.exists() else "has no " + JOURNAL_NAME
        raise InputError(f"{path}: {what}, so it is not a run folder "
                         "(give the folder `ltx-batch run` wrote, e.g. out/<manifest name>)")
    state, sessions = replay_sessions(journal)
    return summarize(path, state, now=time.time() if now is None else now, sessions=sessions,
                     torn_tail=_ends_mid_line(journal))


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
    plan = ResumePlan(
        poll=sum(1 for j in jobs if j.state == SUBMITTED and j.job_id),
        download=sum(1 for j in jobs if j.state == SUCCEEDED and j.asset_ids),
        redownload_failed=sum(1 for j in jobs if _download_failed(j)),
        refetch_lost=len(lost_files(run_dir, ((j.key, r.path, r.bytes) for j in jobs if j.state == DOWNLOADED
                                            for r in j.files.values()))),
        submit=counts[PENDING],
        leave_unknown=counts[UNKNOWN],
        leave_failed=sum(1 for j in jobs if j.state == FAILED and not _download_failed(j)),
        job_count=job_count,
    )
    return RunStatus(
        run_dir=str(run_dir), name=str(last.get("name") or run_dir.name), manifest=last.get("manifest"),
        activity=activity, pid=pid, stop_reason=state.stopped, sessions=len(state.runs), job_count=job_count,
        known=known, counts={s: counts[s] for s in STATES}, started_at=iso(state.first_at),
        updated_at=iso(state.last_at),
        elapsed_s=round(elapsed_s, 3),
        api_requests=state.api_requests, failures=_failures(jobs),
        unknown=tuple(_ref(j) for j in jobs if j.state == UNKNOWN),
        stalled=tuple(_ref(j) for j in jobs if j.state == SUBMITTED and j.error_kind == "poll-timeout"),
        resume=plan, torn_tail=torn_tail)


def resume_text(plan: ResumePlan) -> str:
    """`resume would: poll 3 submitted jobs, download 2, submit 40 pending (...), leave 1 unknown (...)`."""
    parts = []
    if plan.poll:
        parts.append(f"poll {plan.poll} submitted job{_s(plan.poll)}")
    if plan.download:
        parts.append(f"download {plan.download}")
    if plan.submit:
        total = f"{plan.job_count} total from the last run event's job_count" if plan.job_count is not None \
            else "the journal does not record the total"
        parts.append(f"submit {plan.submit} pending (needs the manifest: {total})")
    if plan.leave_unknown:
        parts.append(f"leave {plan.leave_unknown} unknown (use --resubmit-unknown)")
    if plan.leave_failed:
        parts.append(f"leave {plan.leave_failed} failed (use --retry-failed)")
    text = "resume would: " + (", ".join(parts) if parts else "nothing (every job is finished)")
    extra = []
    if plan.redownload_failed:
        n = plan.redownload_failed
        extra.append(f"{n} download-failed job{_s(n)} {'is' if n == 1 else 'are'} re-downloaded automatically")
    if plan.refetch_lost:
        n = plan.refetch_lost
        extra.append(f"{n} downloaded job{_s(n)} with a missing or changed file {'is' if n == 1 else 'are'} "
                     "fetched again")
    return text + ("; " + "; ".join(extra) if extra else "")


def status_text(status: RunStatus) -> str:
    """The human-readable status (a few lines, long lists cut with a count of the rest)."""
    c = status.counts
    activity = status.activity + (f" (pid {status.pid})" if status.activity == "running" else "") + (
        f" ({status.stop_reason})" if status.stop_reason else "")
    total = sum(c.values())
    lines = [
        f"run {status.name}: {activity}" + (f"; manifest {status.manifest}" if status.manifest else ""),
        f"jobs: {total} — " + ", ".join(f"{c[s]} {s}" for s in (DOWNLOADED, FAILED, UNKNOWN, SUBMITTED,
                                                                  SUCCEEDED, PENDING)),
        f"elapsed: {duration_text(status.elapsed_s)} running, in {status.sessions} session{_s(status.sessions)}"
        + (f" (first event {status.started_at}, last {status.updated_at})" if status.started_at else ""),
        f"API requests: {status.api_requests}" + _per_job(status),
    ]
    if status.failures:
        failed = sum(len(g.jobs) for g in status.failures)
        lines.append(f"failures: {failed} job{_s(failed)} in {len(status.failures)} group{_s(len(status.failures))}")
        for group in status.failures[:SHOWN_GROUPS]:
            jobs = ", ".join(str(j) for j in group.jobs[:SHOWN_PER_GROUP])
            more = f", ... {len(group.jobs) - SHOWN_PER_GROUP} more" if len(group.jobs) > SHOWN_PER_GROUP else ""
            lines.append(f"  [{group.kind or 'failed'}] {_one_line(group.error)} — {len(group.jobs)} job"
                         f"{_s(len(group.jobs))}: {jobs}{more}")
        if len(status.failures) > SHOWN_GROUPS:
            lines.append(f"  ... {len(status.failures) - SHOWN_GROUPS} more groups (see --json)")
    if status.unknown:
        lines.append(f"unknown POST (sent, answer lost; the job may exist on the server and be paid): "
                     f"{len(status.unknown)} job{_s(len(status.unknown))}")
        lines += [f"  {j}" for j in status.unknown[:SHOWN_UNKNOWN]]
        if len(status.unknown) > SHOWN_UNKNOWN:
            lines.append(f"  ... {len(status.unknown) - SHOWN_UNKNOWN} more (see --json)")
    if status.stalled:
        lines.append(f"polling gave up (job_timeout_s) on {len(status.stalled)} submitted job"
                     f"{_s(len(status.stalled))}, still running on the server when it stopped (paid; a resume "
                     f"polls {'it' if len(status.stalled) == 1 else 'them'} again)")
        lines += [f"  {j}" for j in status.stalled[:SHOWN_UNKNOWN]]
        if len(status.stalled) > SHOWN_UNKNOWN:
            lines.append(f"  ... {len(status.stalled) - SHOWN_UNKNOWN} more (see --json)")
    lines.append(resume_text(status.resume))
    return "\n".join(lines)


def status_json(status: RunStatus) -> dict[str, Any]:
    """The status as plain JSON data (every job listed, nothing cut)."""
    data = asdict(status)
    data["schema"] = 1
    data["resume"]["text"] = resume_text(status.resume)
    return data


def duration_text(seconds: float) -> str:
    """`2h 03m 09s`, `4m 05s`, `12.3s`."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _download_failed(job: JobState) -> bool:
    return job.state == FAILED and job.error_kind == "download" and bool(job.asset_ids)


def _ref(job: JobState) -> JobRef:
    return JobRef(job.index, job.key)


def _failures(jobs: list[JobState]) -> tuple[FailureGroup, ...]:
    groups: dict[tuple[str | None, str], list[JobRef]] = {}
    for job in jobs:
        if job.state == FAILED:
            groups.setdefault((job.error_kind, job.error or "no message"), []).append(_ref(job))
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), str(item[0][0]), item[0][1]))
    return tuple(FailureGroup(kind, error, tuple(refs)) for (kind, error), refs in ordered)


def _per_job(status: RunStatus) -> str:
    finished = status.counts[DOWNLOADED] + status.counts[FAILED]
    return f" ({status.api_requests / finished:.2f} per finished job)" if finished else ""


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _s(n: int) -> str:
    return "" if n == 1 else "s"


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
