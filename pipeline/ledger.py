"""The run's append-only journal (`ledger.jsonl`) and its replay into per-job state.

Every state change of a run is an event, written (and flushed) before the run acts
on it; the state the runner consults is the replay of those events, so a resumed
run sees exactly what the interrupted one knew. `apply` is pure; `Journal` adds
the file. A torn last line (a crash mid-write) is tolerated and cut off.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.reserve import DISK_FULL, DiskReserve

log = logging.getLogger(__name__)

JOURNAL_NAME = "ledger.jsonl"

# job states, in the order a job moves through them
PENDING = "pending"  # known from the manifest, never sent
UNKNOWN = "unknown"  # a POST was sent and its outcome is unknown (the job may exist on the server)
SUBMITTED = "submitted"  # the server gave a jobId; not finished yet
SUCCEEDED = "succeeded"  # the server says success; outputs not all downloaded yet
DOWNLOADED = "downloaded"  # every output file is on disk, verified
FAILED = "failed"  # rejected, failed on the server, or its download gave up
STATES = (PENDING, UNKNOWN, SUBMITTED, SUCCEEDED, DOWNLOADED, FAILED)

# events that must reach the disk before the run acts on them (they guard against paying twice)
DURABLE_EVENTS = frozenset({"intent", "submitted", "downloaded"})


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One downloaded output: path relative to the run folder, size and sha256."""

    asset_id: str
    path: str
    bytes: int
    sha256: str


@dataclass(slots=True)
class JobState:
    """What the journal knows about one job (mutable: it is the replay's working state)."""

    key: str
    spec: dict[str, Any] | None = None  # JobSpec.to_json() of the last intent (kept only if keep_specs)
    index: int | None = None  # the job's index in its manifest
    file: str | None = None  # output path for its first asset, relative to the run folder
    state: str = PENDING
    job_id: str | None = None
    server_status: str | None = None
    progress: float | None = None
    error: str | None = None
    error_kind: str | None = None  # rejected | job-failed | download | unknown-post | poll-timeout
    asset_ids: list[str] = field(default_factory=list)
    files: dict[str, FileRecord] = field(default_factory=dict)
    request: dict[str, Any] | None = None  # the exact body sent (kept only if keep_specs)
    submit_attempts: int = 0
    download_attempts: int = 0
    intent_at: float | None = None
    submitted_at: float | None = None
    finished_at: float | None = None
    downloaded_at: float | None = None
    server_duration_s: float | None = None


@dataclass(slots=True)
class LedgerState:
    """The replay of a whole journal: jobs by key, uploads by sha256, run-level facts."""

    jobs: dict[str, JobState] = field(default_factory=dict)
    uploads: dict[str, str] = field(default_factory=dict)  # input sha256 -> asset id
    runs: list[dict[str, Any]] = field(default_factory=list)  # one per session ("run" events)
    api_requests: int = 0  # over all sessions
    session_requests: int = 0  # the current session's running total, as last recorded
    first_at: float | None = None
    last_at: float | None = None
    stopped: str | None = None  # last session's stop reason, if any
    ended: bool = False  # the last session wrote an "end" event
    torn_lines: int = 0
    keep_specs: bool = True  # the runner drops specs and bodies (the manifest has them): memory flat in N
    by_state: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))

    def job(self, key: str) -> JobState:
        found = self.jobs.get(key)
        if found is None:
            found = self.jobs[key] = JobState(key)
            self.by_state[PENDING] += 1
        return found

    def counts(self) -> dict[str, int]:
        """Jobs the journal knows, by state (kept current event by event)."""
        return dict(self.by_state)


def apply(state: LedgerState, event: Mapping[str, Any]) -> None:
    """Fold one journal event into the state (pure but for mutating `state`)."""
    kind = event.get("ev")
    now = float(event.get("t", 0.0))
    state.first_at = now if state.first_at is None else min(state.first_at, now)
    state.last_at = now if state.last_at is None else max(state.last_at, now)
    if kind == "run":
        state.runs.append(dict(event))
        state.ended = False
        state.stopped = None
        state.session_requests = 0
        return
    if kind == "requests":  # running total of API requests in this session
        session_total = int(event.get("count", 0))
        state.api_requests += max(0, session_total - state.session_requests)
        state.session_requests = session_total
        return
    if kind == "end":
        state.ended = True
        state.stopped = event.get("reason")
        return
    if kind == "upload":
        state.uploads[str(event["sha256"])] = str(event["asset_id"])
        return
    key = event.get("key")
    if not isinstance(key, str):
        return
    job = state.job(key)
    before = job.state
    _apply_job(job, kind, event, now)
    if not state.keep_specs:
        job.spec = job.request = None
    if job.state != before:
        state.by_state[before] -= 1
        state.by_state[job.state] += 1


def _apply_job(job: JobState, kind: Any, event: Mapping[str, Any], now: float) -> None:
    if kind == "intent":
        spec = event.get("spec")
        if isinstance(spec, dict):
            job.spec = spec
            job.index = spec.get("index") if isinstance(spec.get("index"), int) else job.index
        job.file = event.get("file", job.file)
        job.request = event.get("request")
        job.state = UNKNOWN
        job.submit_attempts = int(event.get("attempt", job.submit_attempts + 1))
        job.intent_at = now
        job.job_id = None
        job.error = job.error_kind = None
        job.asset_ids, job.files = [], {}
        job.server_status = job.progress = None
        job.finished_at = job.downloaded_at = None
    elif kind == "not-sent":  # the POST surely did not create a job (the server answered an error)
        job.state = PENDING
        job.error = event.get("error")
    elif kind == "submitted":
        job.state = SUBMITTED
        job.job_id = str(event["job_id"])
        job.submitted_at = now
        job.server_status = event.get("status")
    elif kind == "status":
        job.server_status = event.get("status")
        job.progress = event.get("progress")
    elif kind == "gave-up":  # polling stopped in that session; still submitted: the next run polls it
        job.error = event.get("error")
        job.error_kind = "poll-timeout"
    elif kind == "succeeded":
        job.state = SUCCEEDED
        job.error = job.error_kind = None  # a job that had timed out (gave-up) in an earlier session
        job.server_status = "success"
        job.asset_ids = [str(a) for a in event.get("asset_ids", [])]
        job.finished_at = now
        job.server_duration_s = event.get("server_duration_s")
    elif kind == "downloaded":
        record = FileRecord(str(event["asset_id"]), str(event["path"]), int(event["bytes"]), str(event["sha256"]))
        job.files[record.asset_id] = record
        job.download_attempts = int(event.get("attempts", job.download_attempts))
        if job.asset_ids and all(a in job.files for a in job.asset_ids):
            job.state = DOWNLOADED
            job.downloaded_at = now
    elif kind == "file-lost":  # a recorded file is missing or changed on disk: fetch it again
        job.files.pop(str(event["asset_id"]), None)
        if job.state == DOWNLOADED:
            job.state = SUCCEEDED
    elif kind == "failed":
        job.state = FAILED
        job.error = event.get("error")
        job.error_kind = event.get("reason")
        job.server_status = event.get("status", job.server_status)
        job.finished_at = now
    elif kind == "reset":  # --retry-failed / --resubmit-unknown: make the job submittable again
        job.state = PENDING
        job.error = job.error_kind = None
    elif kind == "retry-download":  # a paid render whose download gave up: fetch it again, never resubmit
        job.state = SUCCEEDED
        job.error = job.error_kind = None
    else:
        log.debug("ignoring unknown journal event %r", kind)


def intents_of(path: Path, keys: set[str]) -> dict[str, dict[str, Any]]:
    """The last intent event of each of `keys` (spec and request), read back from the journal."""
    found: dict[str, dict[str, Any]] = {}
    if keys:
        for event in read_events(path):
            if event.get("ev") == "intent" and event.get("key") in keys:
                found[event["key"]] = event
    return found


def read_events(path: Path, *, warn_torn: bool = True) -> Iterator[dict[str, Any]]:
    """Every complete event in the journal; a torn or corrupt line is skipped with a warning.

    `warn_torn=False` for readers of a journal another process is writing (a torn tail is normal there).
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                if warn_torn:
                    log.warning("%s:%d: ignoring a torn last line (a crash mid-write)", path, number)
                return
            try:
                event = json.loads(raw)
            except ValueError:
                log.warning("%s:%d: ignoring a line that is not JSON", path, number)
                continue
            if isinstance(event, dict):
                yield event


def replay(path: Path, *, keep_specs: bool = True) -> LedgerState:
    """The state a journal describes (empty when it does not exist)."""
    state = LedgerState(keep_specs=keep_specs)
    for event in read_events(path):
        apply(state, event)
    return state


def _cut_torn_tail(path: Path) -> int:
    """Truncate a last line with no newline; return how many bytes were cut."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size == 0:
        return 0
    with path.open("rb+") as handle:
        handle.seek(max(0, size - 65536))
        tail = handle.read()
        if tail.endswith(b"\n"):
            return 0
        cut = tail.rfind(b"\n")
        keep = size - len(tail) + cut + 1 if cut >= 0 else (0 if size <= 65536 else size)
        handle.truncate(keep)
        return size - keep


class JournalError(PipelineError):
    """The journal cannot be written (disk full, permissions): the run stops; what the journal holds stays valid."""


class Journal:
    """The open journal of one run: appends events, keeps the replayed state current.

    A failed write (disk full, I/O error) raises JournalError; a short write is cut off again, and the
    journal refuses every later write, so no torn or merged line is ever left inside it. The first time
    the disk is full, the journal frees its `DiskReserve`, calls `on_disk_full` (the run stops
    submitting) and writes on in the space freed, so the answers of the POSTs in flight are recorded.
    """

    def __init__(self, path: Path, *, fsync: bool = True, keep_specs: bool = True) -> None:
        self.path = path
        self._fsync = fsync
        cut = _cut_torn_tail(path)
        self.state = replay(path, keep_specs=keep_specs)
        self.state.torn_lines += 1 if cut else 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._reserve = DiskReserve(path.parent)
        self.on_disk_full: Callable[[str], None] | None = None
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._failed: JournalError | None = None
        self._appended = 0  # lines written by this Journal
        self._synced = 0  # of those, how many an fsync has covered (it began after they were written)
        self._syncing: asyncio.Future[None] | None = None  # done when the fsync under way ends

    async def write(self, kind: str, **fields_: Any) -> None:
        """Append one event, apply it, and (for events that guard money) fsync before returning.

        A durable event returns only after an fsync that began after its line was written. Writers that
        arrive while an fsync is under way share the next one (group commit): the same guarantee for
        each event, fewer fsyncs and thread hand-offs when several stages write at once.
        """
        event = self._append_event(kind, fields_)
        if self._fsync and kind in DURABLE_EVENTS:
            await self._sync(self._appended)
        apply(self.state, event)

    async def _sync(self, line: int) -> None:
        """Wait until the first `line` lines are on disk, starting an fsync or joining the next one."""
        while self._synced < line:
            if self._failed is not None:
                raise self._failed
            if self._syncing is not None:  # it may have begun before our line was written: wait, then look again
                await asyncio.shield(self._syncing)
                continue
            syncing = self._syncing = asyncio.get_running_loop().create_future()
            try:
                self._synced = max(self._synced, await asyncio.to_thread(self._fsync_written))
            except OSError as exc:
                raise self._fail(exc) from None
            finally:
                self._syncing = None
                syncing.set_result(None)

    def _fsync_written(self) -> int:
        """fsync (in a worker thread); returns how many lines it covers: those written before it began."""
        covered = self._appended  # counted after each os.write returns, so these lines are all in the file
        os.fsync(self._fd)
        return covered

    def write_now(self, kind: str, **fields_: Any) -> None:
        """Append an event synchronously (used on the way out, where no loop may be left)."""
        apply(self.state, self._append_event(kind, fields_))

    def _append_event(self, kind: str, fields_: dict[str, Any]) -> dict[str, Any]:
        """Stamp, encode and append one event (one line); return it for `apply`."""
        event = {"t": round(time.time(), 3), "ev": kind, **fields_}
        self._append((json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n").encode())
        return event

    def _append(self, line: bytes) -> None:
        """One small O_APPEND write (a line is never interleaved); a short one is truncated away."""
        if self._failed is not None:
            raise self._failed
        try:
            try:
                self._write_line(line)
            except OSError as exc:
                if exc.errno not in DISK_FULL or not self._reserve.release():
                    raise
                message = (f"the disk is full ({exc.strerror}): stopped submitting; the journal's reserve "
                           f"recorded what was in flight (free some space, then resume)")
                log.error("%s", message)
                if self.on_disk_full is not None:
                    self.on_disk_full(message)
                self._write_line(line)
        except OSError as exc:
            raise self._fail(exc) from None
        self._appended += 1

    def _write_line(self, line: bytes) -> None:
        written = os.write(self._fd, line)
        if written != len(line):  # the disk filled up mid-line
            os.ftruncate(self._fd, os.fstat(self._fd).st_size - written)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def _fail(self, exc: OSError) -> JournalError:
        self._failed = JournalError(f"cannot write the journal {self.path}: {exc.strerror or exc} "
                                    f"(free some space, then resume)")
        return self._failed

    def close(self) -> None:
        self._reserve.close()
        if self._fd >= 0:
            try:
                os.fsync(self._fd)
            except OSError as exc:  # every event written so far is in the file; the next run replays it
                log.error("could not sync the journal %s: %s", self.path, exc.strerror or exc)
            finally:
                os.close(self._fd)
                self._fd = -1
