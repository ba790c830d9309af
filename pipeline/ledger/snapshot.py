"""A snapshot of a journal's replayed state, so a resume parses only the events written since (`Journal`).

The journal stays the source of truth: a snapshot names the prefix it is the replay of (its length in bytes and
its sha256) and is used only when the journal still begins with exactly those bytes; then the events after them
are replayed on top. A missing, unreadable, foreign (another layout of the state) or stale snapshot is ignored:
the whole journal is replayed, as without one. It holds the runner's state (no specs, no request bodies).

File: one line of JSON naming the prefix (checked before the state is parsed), then one line with the state.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pipeline.ledger.replay import FileRecord, JobState, LedgerState, SessionPacing, Spend

log = logging.getLogger(__name__)

SNAPSHOT_SUFFIX = ".snapshot"  # beside the journal: .ledger.jsonl.snapshot
FORMAT = 1
JOB_FIELDS = tuple(f.name for f in fields(JobState))
STATE_FIELDS = tuple(f.name for f in fields(LedgerState))
# the snapshot's layout: a state saved by code whose dataclasses differ is not read back
LAYOUT = "|".join((str(FORMAT), ",".join(JOB_FIELDS), ",".join(STATE_FIELDS),
                   ",".join(f.name for f in fields(FileRecord)), ",".join(f.name for f in fields(Spend)),
                   ",".join(f.name for f in fields(SessionPacing))))
_SPECIAL = ("jobs", "spend", "session_pacing", "torn_lines", "keep_specs")


@dataclass(frozen=True, slots=True)
class Prefix:
    """What a snapshot is the replay of: the journal's first `bytes` bytes (their sha256, `lines` lines), and
    where in them the last event that changes a job's record ends (`records_at`, the sha256 up to there)."""

    bytes: int
    sha256: str
    lines: int
    records_at: int
    records_sha256: str


def snapshot_path(journal: Path) -> Path:
    return journal.with_name(f".{journal.name}{SNAPSHOT_SUFFIX}")


def save_snapshot(journal: Path, prefix: Prefix, state: LedgerState) -> None:
    """Write the snapshot of `state` (the replay of `prefix`) atomically; OSError and TypeError (a value the
    state should not hold) are the caller's to ignore. Not fsynced: a snapshot lost or torn is only ignored."""
    target = snapshot_path(journal)
    temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    head = {"layout": LAYOUT, **{f.name: getattr(prefix, f.name) for f in fields(Prefix)}}
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(json.dumps(head, separators=(",", ":")) + "\n")
            handle.write(json.dumps(state_to_json(state), separators=(",", ":"), ensure_ascii=False) + "\n")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def read_prefix(journal: Path) -> tuple[Prefix, Any] | None:
    """The snapshot's prefix and its open file (positioned at the state), or None when there is no usable one."""
    try:
        handle = snapshot_path(journal).open("rb")
    except OSError:
        return None
    try:
        head = json.loads(handle.readline())
        if not isinstance(head, dict) or head.pop("layout", None) != LAYOUT:
            raise ValueError("another layout")
        prefix = Prefix(**head)
        if not all(isinstance(getattr(prefix, f.name), int if f.type in ("int", int) else str)
                   for f in fields(Prefix)):
            raise ValueError("bad fields")
    except (ValueError, TypeError) as exc:
        handle.close()
        log.debug("ignoring the snapshot of %s: %s", journal, exc)
        return None
    return prefix, handle


def read_state(handle: Any, journal: Path) -> LedgerState | None:
    """The state of a snapshot whose prefix was checked (None, and a full replay, when it cannot be read)."""
    try:
        with handle:
            return state_from_json(json.loads(handle.readline()))
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        log.debug("ignoring the snapshot of %s: %s", journal, exc)
        return None


def state_to_json(state: LedgerState) -> dict[str, Any]:
    """The state as JSON values: each job a list of its fields (files as lists; no spec or request body)."""
    out: dict[str, Any] = {name: getattr(state, name) for name in STATE_FIELDS if name not in _SPECIAL}
    out["jobs"] = [_job_to_json(job) for job in state.jobs.values()]
    out["spend"] = [getattr(state.spend, f.name) for f in fields(Spend)]
    pacing = state.session_pacing
    out["session_pacing"] = None if pacing is None else [getattr(pacing, f.name) for f in fields(SessionPacing)]
    return out


def _job_to_json(job: JobState) -> list[Any]:
    values = [getattr(job, name) for name in JOB_FIELDS]
    values[JOB_FIELDS.index("spec")] = values[JOB_FIELDS.index("request")] = None
    values[JOB_FIELDS.index("files")] = [[getattr(record, f.name) for f in fields(FileRecord)]
                                         for record in job.files.values()]
    return values


_FILES, _BATCH, _PRICE_CLASS = JOB_FIELDS.index("files"), JOB_FIELDS.index("batch"), JOB_FIELDS.index("price_class")


def state_from_json(data: dict[str, Any]) -> LedgerState:
    """The state `state_to_json` gave (a runner's: keep_specs False)."""
    state = LedgerState(keep_specs=False, **{name: data[name] for name in STATE_FIELDS if name not in _SPECIAL})
    jobs = state.jobs
    for values in data["jobs"]:
        values[_FILES] = {record[0]: FileRecord(*record) for record in values[_FILES]}
        for at in (_BATCH, _PRICE_CLASS):  # one string per batch and kind of job, as the replay keeps them
            if isinstance(values[at], str):
                values[at] = sys.intern(values[at])
        job = JobState(*values)
        jobs[job.key] = job
    state.spend = Spend(*data["spend"])
    pacing = data["session_pacing"]
    if pacing is not None:
        state.session_pacing = SessionPacing(*pacing[:-1], tuple(pacing[-1]))
    return state
