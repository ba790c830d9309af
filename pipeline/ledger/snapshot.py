"""A snapshot of a journal's replayed state, so a resume parses only the events written since (`Journal`).

The journal stays the source of truth: a snapshot names the prefix it is the replay of (its length in bytes and
its sha256) and is used only when the journal still begins with exactly those bytes; then the events after them
are replayed on top. A missing, unreadable, foreign (another layout of the state) or stale snapshot is ignored:
the whole journal is replayed, as without one. It holds the runner's state (no specs, no request bodies).

File: one line of JSON naming the prefix, then the state in sealed chunks (each its length, its sha256 and
`marshal` data of plain lists, dicts, strings and numbers; checked before it is decoded, about three times faster
to read than JSON and never code that runs), the run-level facts first, then the jobs a thousand at a time, then
an empty chunk. Written and read a chunk at a time: memory flat in the number of jobs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import marshal
import os
import struct
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, BinaryIO

from pipeline.ledger.replay import FileRecord, JobState, LedgerState, SessionPacing, Spend

log = logging.getLogger(__name__)

SNAPSHOT_SUFFIX = ".snapshot"  # beside the journal: .ledger.jsonl.snapshot
FORMAT = 3
MARSHAL_VERSION = 4
CHUNK_JOBS = 1000
CHUNK_HEAD = struct.Struct(">Q32s")  # a chunk's length and sha256
MAX_CHUNK_BYTES = 1 << 30
JOB_FIELDS = tuple(f.name for f in fields(JobState))
STATE_FIELDS = tuple(f.name for f in fields(LedgerState))
# the snapshot's layout: a state saved by code whose dataclasses (or Python) differ is not read back
LAYOUT = "|".join((str(FORMAT), f"{sys.implementation.name}{sys.version_info[0]}.{sys.version_info[1]}",
                   str(MARSHAL_VERSION), ",".join(JOB_FIELDS), ",".join(STATE_FIELDS),
                   ",".join(f.name for f in fields(FileRecord)), ",".join(f.name for f in fields(Spend)),
                   ",".join(f.name for f in fields(SessionPacing))))
_SPECIAL = ("jobs", "spend", "session_pacing", "torn_lines", "keep_specs")
_SPEC, _REQUEST, _FILES = JOB_FIELDS.index("spec"), JOB_FIELDS.index("request"), JOB_FIELDS.index("files")
_BATCH, _PRICE_CLASS = JOB_FIELDS.index("batch"), JOB_FIELDS.index("price_class")


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
    """Write the snapshot of `state` (the replay of `prefix`) atomically; OSError, TypeError and ValueError (a
    value the state should not hold) are the caller's to ignore. Not fsynced: one lost or torn is only ignored."""
    target = snapshot_path(journal)
    temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    head = {"layout": LAYOUT, **{f.name: getattr(prefix, f.name) for f in fields(Prefix)}}
    try:
        with temporary.open("wb") as handle:
            handle.write(json.dumps(head, separators=(",", ":")).encode() + b"\n")
            write_chunks(handle, state_chunks(state))
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def read_prefix(journal: Path) -> tuple[Prefix, BinaryIO] | None:
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


def read_state(handle: BinaryIO, journal: Path) -> LedgerState | None:
    """The state of a snapshot whose prefix was checked (None, and a full replay, when it cannot be read)."""
    try:
        with handle:
            return state_of(read_chunks(handle))
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, EOFError) as exc:
        log.debug("ignoring the snapshot of %s: %s", journal, exc)
        return None


def write_chunks(handle: BinaryIO, chunks: Iterable[Any]) -> None:
    """Each value as a sealed chunk (length, sha256, marshal data), then the empty chunk that ends them."""
    for value in chunks:
        data = marshal.dumps(value, MARSHAL_VERSION)
        handle.write(CHUNK_HEAD.pack(len(data), hashlib.sha256(data).digest()))
        handle.write(data)
    handle.write(CHUNK_HEAD.pack(0, hashlib.sha256(b"").digest()))


def read_chunks(handle: BinaryIO) -> Iterator[Any]:
    """The values `write_chunks` wrote, each checked against its seal before it is decoded; ValueError for a
    chunk that does not match, a file that ends before the empty chunk, or bytes after it."""
    while True:
        head = handle.read(CHUNK_HEAD.size)
        if len(head) != CHUNK_HEAD.size:
            raise ValueError("the snapshot ends early")
        size, sha256 = CHUNK_HEAD.unpack(head)
        if size > MAX_CHUNK_BYTES:
            raise ValueError("a chunk too long")
        data = handle.read(size)
        if len(data) != size or hashlib.sha256(data).digest() != sha256:
            raise ValueError("a chunk is not the one written")
        if not size:
            if handle.read(1):
                raise ValueError("bytes after the last chunk")
            return
        yield marshal.loads(data)


def state_chunks(state: LedgerState) -> Iterator[Any]:
    """The state as plain values: the run-level facts, then lists of jobs (each a list of its fields; files as
    lists; no spec or request body)."""
    facts: dict[str, Any] = {name: getattr(state, name) for name in STATE_FIELDS if name not in _SPECIAL}
    facts["spend"] = [getattr(state.spend, f.name) for f in fields(Spend)]
    pacing = state.session_pacing
    facts["session_pacing"] = None if pacing is None else [getattr(pacing, f.name) for f in fields(SessionPacing)]
    yield facts
    chunk: list[list[Any]] = []
    for job in state.jobs.values():
        values = [getattr(job, name) for name in JOB_FIELDS]
        values[_SPEC] = values[_REQUEST] = None
        values[_FILES] = [[getattr(record, f.name) for f in fields(FileRecord)] for record in job.files.values()]
        chunk.append(values)
        if len(chunk) == CHUNK_JOBS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def state_of(chunks: Iterable[Any]) -> LedgerState:
    """The state `state_chunks` gave (a runner's: keep_specs False)."""
    values_of = iter(chunks)
    facts = next(values_of)
    state = LedgerState(keep_specs=False, **{name: facts[name] for name in STATE_FIELDS if name not in _SPECIAL})
    state.spend = Spend(*facts["spend"])
    pacing = facts["session_pacing"]
    if pacing is not None:
        state.session_pacing = SessionPacing(*pacing[:-1], tuple(pacing[-1]))
    jobs = state.jobs
    for chunk in values_of:
        for values in chunk:
            values[_FILES] = {record[0]: FileRecord(*record) for record in values[_FILES]}
            for at in (_BATCH, _PRICE_CLASS):  # one string per batch and kind of job, as the replay keeps them
                if isinstance(values[at], str):
                    values[at] = sys.intern(values[at])
            job = JobState(*values)
            jobs[job.key] = job
    return state
