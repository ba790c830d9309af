"""The run's journal (`ledger.jsonl`) read back: its events, their replay into per-job state.

Every state change of a run is an event, written (and flushed) before the run acts
on it; the state the runner consults is the replay of those events, so a resumed
run sees exactly what the interrupted one knew. `apply` is pure; `journal.Journal`
writes the file. A torn last line (a crash mid-write) is skipped here and cut off there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

# why a session stopped polling a submitted job (its error_kind; it stays submitted, polled again next run)
POLL_TIMEOUT = "poll-timeout"  # still running after job_timeout_s
POLL_NOT_FOUND = "poll-not-found"  # the server answered 404 for a job it created for us

@dataclass(frozen=True, slots=True)
class FileRecord:
    """One downloaded output: path relative to the run folder, size, sha256 and mtime once in place.

    `mtime_ns` is None in journals written before it was recorded (their files are checked by size).
    """

    asset_id: str
    path: str
    bytes: int
    sha256: str
    mtime_ns: int | None = None


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
    error_kind: str | None = None  # rejected | job-failed | download | unknown-post | poll-timeout | poll-not-found
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

    @property
    def polling_gave_up(self) -> bool:
        """Still submitted, but a session stopped polling it (job_timeout_s, or a 404): it is on the server, paid."""
        return self.state == SUBMITTED and self.error_kind in (POLL_TIMEOUT, POLL_NOT_FOUND)


@dataclass(frozen=True, slots=True)
class SessionPacing:
    """A session's 429s and sending rate, as its last "requests" event recorded them."""

    throttled: int  # 429 answers received
    rate_cuts: int  # times they lowered the sending rate
    sending_per_s: float | None  # the sending rate then
    lowest_sending_per_s: float | None


@dataclass(slots=True)
class LedgerState:
    """The replay of a whole journal: jobs by key, uploads by sha256, run-level facts."""

    jobs: dict[str, JobState] = field(default_factory=dict)
    uploads: dict[str, str] = field(default_factory=dict)  # input sha256 -> asset id
    paths: dict[str, str] = field(default_factory=dict)  # each output path recorded -> the first key recording it
    runs: list[dict[str, Any]] = field(default_factory=list)  # one per session ("run" events)
    api_requests: int = 0  # over all sessions
    session_requests: int = 0  # the current session's running total, as last recorded
    session_pacing: SessionPacing | None = None  # the current session's 429s and sending rate, as last recorded
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
        state.session_pacing = None
        return
    if kind == "requests":  # running totals of this session: API requests, 429s, the sending rate
        session_total = _count(event.get("count"))
        state.api_requests += max(0, session_total - state.session_requests)
        state.session_requests = session_total
        state.session_pacing = SessionPacing(_count(event.get("throttled")), _count(event.get("rate_cuts")),
                                             _number(event.get("sending_per_s")),
                                             _number(event.get("lowest_sending_per_s")))
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
    path = job.file if kind == "intent" else event.get("path") if kind == "downloaded" else None
    if isinstance(path, str):
        state.paths.setdefault(path, job.key)  # never given to another key (storage.claim_output_path)
    if not state.keep_specs:
        job.spec = job.request = None
    if job.state != before:
        state.by_state[before] -= 1
        state.by_state[job.state] += 1


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


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
        job.error_kind = POLL_NOT_FOUND if event.get("reason") == "not-found" else POLL_TIMEOUT
    elif kind == "succeeded":
        job.state = SUCCEEDED
        job.error = job.error_kind = None  # a job that had timed out (gave-up) in an earlier session
        job.server_status = "success"
        job.asset_ids = [str(a) for a in event.get("asset_ids", [])]
        job.finished_at = now
        job.server_duration_s = event.get("server_duration_s")
    elif kind == "downloaded":
        mtime_ns = event.get("mtime_ns")
        record = FileRecord(str(event["asset_id"]), str(event["path"]), int(event["bytes"]), str(event["sha256"]),
                            mtime_ns if isinstance(mtime_ns, int) and not isinstance(mtime_ns, bool) else None)
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
