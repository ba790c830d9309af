"""A snapshot of a journal's replayed state, so a resume parses only the events written since (`Journal`).

The journal stays the source of truth: a snapshot names the prefix it is the replay of (its length in bytes and
its sha256) and is used only when the journal still begins with exactly those bytes; then the events after them
are replayed on top. A missing, unreadable, foreign (another layout of the state) or stale snapshot is ignored:
the whole journal is replayed, as without one. It holds the runner's state (no specs, no request bodies).

File: one line of JSON naming the prefix and the state's bytes (their length and sha256: checked before the
state is decoded), then the state as `marshal` data (plain lists, dicts, strings and numbers; about three times
faster to read than JSON, and never code that runs: the decoded values are only copied into the dataclasses).
"""

from __future__ import annotations

import hashlib
import json
import logging
import marshal
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pipeline.ledger.replay import FileRecord, JobState, LedgerState, SessionPacing, Spend

log = logging.getLogger(__name__)

SNAPSHOT_SUFFIX = ".snapshot"  # beside the journal: .ledger.jsonl.snapshot
FORMAT = 2
MARSHAL_VERSION = 4
JOB_FIELDS = tuple(f.name for f in fields(JobState))
STATE_FIELDS = tuple(f.name for f in fields(LedgerState))
# the snapshot's layout: a state saved by code whose dataclasses differ is not read back
LAYOUT = "|".join((str(FORMAT), f"{sys.implementation.name}{sys.version_info[0]}.{sys.version_info[1]}",
                   str(MARSHAL_VERSION), ",".join(JOB_FIELDS), ",".join(STATE_FIELDS),
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


@dataclass(frozen=True, slots=True)
class Sealed:
    """A snapshot file open after its first line, and the length and sha256 its state must have."""

    handle: Any
    state_bytes: Any
    state_sha256: Any

    def close(self) -> None:
        self.handle.close()


def snapshot_path(journal: Path) -> Path:
    return journal.with_name(f".{journal.name}{SNAPSHOT_SUFFIX}")


def save_snapshot(journal: Path, prefix: Prefix, state: LedgerState) -> None:
    """Write the snapshot of `state` (the replay of `prefix`) atomically; OSError and TypeError (a value the
    state should not hold) are the caller's to ignore. Not fsynced: a snapshot lost or torn is only ignored."""
    target = snapshot_path(journal)
    temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    payload = marshal.dumps(state_to_json(state), MARSHAL_VERSION)
    head = {"layout": LAYOUT, **{f.name: getattr(prefix, f.name) for f in fields(Prefix)},
            "state_bytes": len(payload), "state_sha256": hashlib.sha256(payload).hexdigest()}
    try:
        with temporary.open("wb") as handle:
            handle.write(json.dumps(head, separators=(",", ":")).encode() + b"\n")
            handle.write(payload)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def read_prefix(journal: Path) -> tuple[Prefix, Sealed] | None:
    """The snapshot's prefix and its open file (positioned at the state), or None when there is no usable one."""
    try:
        handle = snapshot_path(journal).open("rb")
    except OSError:
        return None
    try:
        head = json.loads(handle.readline())
        if not isinstance(head, dict) or head.pop("layout", None) != LAYOUT:
            raise ValueError("another layout")
        sealed = head.pop("state_bytes", None), head.pop("state_sha256", None)
        prefix = Prefix(**head)
        if not all(isinstance(getattr(prefix, f.name), int if f.type in ("int", int) else str)
                   for f in fields(Prefix)):
            raise ValueError("bad fields")
    except (ValueError, TypeError) as exc:
        handle.close()
        log.debug("ignoring the snapshot of %s: %s", journal, exc)
        return None
    return prefix, Sealed(handle, *sealed)


def read_state(opened: Sealed, journal: Path) -> LedgerState | None:
    """The state of a snapshot whose prefix was checked (None, and a full replay, when it cannot be read): its
    bytes are checked against the length and sha256 its first line gives before they are decoded."""
    try:
        with opened.handle as handle:
            payload = handle.read()
        if len(payload) != opened.state_bytes or hashlib.sha256(payload).hexdigest() != opened.state_sha256:
            raise ValueError("its state is not the one it was written with")
        return state_from_json(marshal.loads(payload))
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, EOFError) as exc:
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
