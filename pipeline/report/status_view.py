"""How `ltx-batch status` shows a `RunStatus`: a few lines of text (long lists cut, with a count of the rest),
the resume plan in words, and plain JSON (everything listed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from pipeline.ledger.costs import spend_text
from pipeline.ledger.replay import DOWNLOADED, FAILED, FINISHED, PENDING, SUBMITTED, SUCCEEDED, UNKNOWN, count_in
from pipeline.report.status import SUBMITTING, JobRef, ResumePlan, RunStatus

SHOWN_PER_GROUP = 10
SHOWN_GROUPS = 20
SHOWN_UNKNOWN = 50


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
        f"jobs: {total} — " + ", ".join(f"{c[s]} {s}" for s in (DOWNLOADED, FAILED, UNKNOWN, SUBMITTING,
                                                                  SUBMITTED, SUCCEEDED, PENDING)
                                          if s != SUBMITTING or c[s]),
        f"elapsed: {duration_text(status.elapsed_s)} running, in {status.sessions} session{_s(status.sessions)}"
        + (f" (first event {status.started_at}, last {status.updated_at})" if status.started_at else ""),
        f"API requests: {status.api_requests}" + _per_job(status),
        f"cost: {spend_text(status.cost)}",
    ]
    if status.limit is not None:
        limit = status.limit
        lines.append(f"limited: the last session ran with --limit {limit.get('limit')}"
                     f"{' --spread' if limit.get('spread') else ''} ({limit.get('chosen')} of {limit.get('of')} jobs); "
                     "the same command without --limit sends the rest")
    pacing = status.pacing
    if pacing is not None and (pacing.throttled or pacing.rate_cuts):
        lowered = (f"; 429s lowered the sending rate {pacing.rate_cuts} time{_s(pacing.rate_cuts)}, to as low as "
                   f"{pacing.lowest_sending_per_s or 0:.1f}/s (last recorded {pacing.sending_per_s or 0:.1f}/s)"
                   if pacing.rate_cuts else "")
        lines.append(f"429s in the last session: {pacing.throttled}{lowered}")
    if pacing is not None and pacing.waits and status.activity == "running":
        lines += [f"waiting: {wait}" for wait in pacing.waits]
    if status.poll_fallback and not (pacing is not None and status.activity == "running"
                                     and any(status.poll_fallback in wait for wait in pacing.waits)):
        lines.append(f"polling: each job on its own in the last session: {status.poll_fallback}")
    if status.strays:
        saved = (f"{status.strays_saved} saved under videos/strays" if status.strays_saved == len(status.strays)
                 else f"{status.strays_saved} saved; save the rest with: ltx-batch run MANIFEST --download-strays")
        lines.append(f"strays: {len(status.strays)} more job{_s(len(status.strays))} on the server made for a job "
                     f"that already has one (paid twice before it was reconciled; {saved}): "
                     + ", ".join(f"{job_id} (job {key[:12]})" for job_id, key in status.strays[:SHOWN_PER_GROUP])
                     + (f", ... {len(status.strays) - SHOWN_PER_GROUP} more" if len(status.strays) > SHOWN_PER_GROUP
                        else ""))
    if status.failures:
        failed = sum(len(g.jobs) for g in status.failures)
        lines.append(f"failures: {failed} job{_s(failed)} in {len(status.failures)} group{_s(len(status.failures))}")
        for group in status.failures[:SHOWN_GROUPS]:
            jobs = ", ".join(_with_trace(j, group.trace_ids) for j in group.jobs[:SHOWN_PER_GROUP])
            more = f", ... {len(group.jobs) - SHOWN_PER_GROUP} more" if len(group.jobs) > SHOWN_PER_GROUP else ""
            hint = f" (hint: {_one_line(group.hint)})" if group.hint else ""
            lines.append(f"  [{group.kind or 'failed'}] {_one_line(group.error)}{hint} — {len(group.jobs)} job"
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
        lines.append(f"polling gave up (job_timeout_s, or 404 from the server) on {len(status.stalled)} submitted "
                     f"job{_s(len(status.stalled))}, on the server when it stopped (paid; a resume "
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


def _per_job(status: RunStatus) -> str:
    finished = count_in(status.counts, FINISHED)
    return f" ({status.api_requests / finished:.2f} per finished job)" if finished else ""


def _with_trace(job: JobRef, trace_ids: Mapping[str, str]) -> str:
    """`#3 (0123456789ab)`, with `trace id T` inside the brackets when the job's error answer had one."""
    trace = trace_ids.get(job.key)
    return str(job)[:-1] + f", trace id {trace})" if trace else str(job)


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _s(n: int) -> str:
    return "" if n == 1 else "s"
