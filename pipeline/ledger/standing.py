"""How a manifest's jobs stand in a run folder's journal, and what a run would do with them (pure).

`standing(specs, state)` walks the manifest's jobs once against a replayed journal: how many are downloaded,
failed, unknown, on the server, never sent; how many a run would POST (paid); what the journal holds that
the manifest no longer has. `plan` shows it for an existing run folder; `run` opens with it (its banner)
and counts its progress from it. `chosen` (run --limit) leaves out the never-sent jobs a run does not pick.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from pipeline.ledger.replay import (
    DOWNLOADED,
    FAILED,
    PENDING,
    STATES,
    SUBMITTED,
    SUCCEEDED,
    UNKNOWN,
    JobState,
    LedgerState,
)


class Keyed(Protocol):
    """What `standing` reads of a job: its index and key (a `JobSpec`, or the run roster's pair)."""

    @property
    def index(self) -> int: ...

    @property
    def key(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Standing:
    """The manifest's jobs by journal state, and what a run would do with them."""

    counts: dict[str, int]  # the manifest's jobs by state (never sent: pending)
    new: int  # jobs a run would POST: never sent, or never paid (an input's upload failed); with retry_failed and
    # resubmit_unknown, the failed and unknown ones too (each may be paid a second time)
    resent: int  # of `new`, jobs sent before (--retry-failed, --resubmit-unknown): paid again
    poll: int  # submitted: polled (never sent again)
    download: int  # paid, outputs not all on disk (succeeded, or their download gave up)
    left_failed: int  # failed and not sent again (the run would need --retry-failed)
    journal_only: int  # jobs the journal knows that the manifest no longer has
    journal_only_active: dict[str, int]  # of those, the ones a run still polls or downloads, by state
    total: int  # the manifest's jobs
    chosen: int | None = None  # with a limit: the jobs it picks
    not_chosen: int = 0  # with a limit: never-sent jobs it leaves for a later run

    @property
    def sent_before(self) -> int:
        """Jobs of the manifest the journal has sent (whatever became of them)."""
        return self.total - self.counts[PENDING]

    @property
    def scope(self) -> dict[str, int]:
        """What a run covers, by state: the manifest's jobs but the never-sent ones a limit leaves out, and the
        jobs no longer in the manifest that it still polls or downloads."""
        scope = dict(self.counts)
        scope[PENDING] -= self.not_chosen
        for state, count in self.journal_only_active.items():
            scope[state] += count
        return scope


def standing(specs: Iterable[Keyed], state: LedgerState, *, retry_failed: bool = False,
             resubmit_unknown: bool = False, chosen: Callable[[int], bool] | None = None) -> Standing:
    """One pass over the manifest's jobs (`specs`) against the replayed journal (`state`), changing nothing."""
    counts = dict.fromkeys(STATES, 0)
    new = resent = poll = download = left_failed = picked = not_chosen = total = 0
    seen: set[str] = set()
    for spec in specs:
        total += 1
        job = state.jobs.get(spec.key)
        current = job.state if job is not None else PENDING
        counts[current] += 1
        if job is not None:
            seen.add(job.key)  # the journal's own key string: the set holds no copies
        sends = chosen is None or chosen(spec.index)  # a limited run sends only the jobs it picks
        picked += sends
        if current == SUBMITTED:
            poll += 1
        elif job is not None and _paid_not_on_disk(job):
            download += 1
        elif current == PENDING and not sends:
            not_chosen += 1
        elif current == PENDING or (job is not None and job.upload_failed and sends):
            new += 1
        elif sends and ((current == UNKNOWN and resubmit_unknown) or (job is not None and job.generation_failed
                                                                     and retry_failed)):
            new += 1
            resent += 1
        elif current == FAILED:
            left_failed += 1
    journal_only = 0
    by_state = dict.fromkeys(STATES, 0)
    if len(seen) < len(state.jobs):
        for key, job in state.jobs.items():
            if key in seen:
                continue
            journal_only += 1
            if _active(job):
                by_state[job.state] += 1
                poll += job.state == SUBMITTED
                download += job.state != SUBMITTED and _paid_not_on_disk(job)
    return Standing(counts, new, resent, poll, download, left_failed, journal_only,
                    {s: n for s, n in by_state.items() if n}, total,
                    picked if chosen is not None else None, not_chosen)


def _paid_not_on_disk(job: JobState) -> bool:
    """Rendered (paid) but its outputs are not all on disk: a run downloads it, never sends it again."""
    return job.state == SUCCEEDED or job.download_failed


def _active(job: JobState | None) -> bool:
    """A job a run still polls or downloads whether or not its manifest has it (or asks the server about)."""
    return job is not None and (job.state in (UNKNOWN, SUBMITTED) or _paid_not_on_disk(job))


def standing_text(s: Standing) -> str:
    """`36 downloaded, 2 failed, 1 unknown, 3 on the server; 18 new (paid); 3 no longer in the manifest`."""
    held = [f"{s.counts[DOWNLOADED]:,} downloaded"]
    held += [f"{s.counts[state]:,} {word}" for state, word in ((FAILED, "failed"), (UNKNOWN, "unknown"),
                                                                (SUBMITTED, "on the server"),
                                                                (SUCCEEDED, "to download"))
             if s.counts[state]]
    parts = [", ".join(held), f"{s.new:,} new (paid)"]
    if s.journal_only:
        parts.append(f"{s.journal_only:,} no longer in the manifest")
    return "; ".join(parts)
