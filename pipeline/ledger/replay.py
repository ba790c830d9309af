"""The run's journal (`ledger.jsonl`) read back: its events, their replay into per-job state.

Every state change of a run is an event, written (and flushed) before the run acts
on it; the state the runner consults is the replay of those events, so a resumed
run sees exactly what the interrupted one knew. `apply` is pure; `journal.Journal`
writes the file. A torn last line (a crash mid-write) is skipped here and cut off there.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import ChainMap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

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
FINISHED = (DOWNLOADED, FAILED)  # nothing more happens to these (but with --retry-failed)
UNFINISHED = (PENDING, SUBMITTED, SUCCEEDED)  # a resume carries these on (unknown ones wait for --resubmit-unknown)

# why a session stopped polling a submitted job (its error_kind; it stays submitted, polled again next run)
POLL_TIMEOUT = "poll-timeout"  # still running after job_timeout_s
POLL_NOT_FOUND = "poll-not-found"  # the server answered 404 for a job it created for us
UPLOAD_FAILED = "upload"  # error_kind of a job never sent because an input of it could not be uploaded
DOWNLOAD_FAILED = "download"  # error_kind of a rendered (paid) job whose outputs could not be downloaded

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
    batch: str | None = None  # the job's batch in its manifest (from its intent)
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
    cost_cu: float | None = None  # this attempt's best-known cost: the polled billing.cuCost, else creativeUnitsCost
    cost_earlier_cu: float = 0.0  # what earlier attempts of this job were recorded costing (--retry-failed and co.)
    estimate_cu: float | None = None  # the --max-cost gate's estimate when it let the job go ("priced" event)
    price_class: str | None = None  # the gate's kind of job: jobs of a kind cost the same (costcap.price_class)
    hint: str | None = None  # metadata.hint of a failure: what to do about it
    trace_id: str | None = None  # the error answer's trace id (support asks for it)

    @property
    def upload_failed(self) -> bool:
        """Failed without being sent (an input of it could not be uploaded): never paid, so a run tries again."""
        return self.state == FAILED and self.error_kind == UPLOAD_FAILED

    @property
    def download_failed(self) -> bool:
        """Rendered (so paid) with its outputs known, but their download gave up: never sent again; a resume
        fetches them again."""
        return self.state == FAILED and self.error_kind == DOWNLOAD_FAILED and bool(self.asset_ids)

    @property
    def generation_failed(self) -> bool:
        """Failed at the generation itself (refused when sent, or failed on the server), not at an upload or a
        download of ours: only --retry-failed sends it again."""
        return self.state == FAILED and self.error_kind not in (UPLOAD_FAILED, DOWNLOAD_FAILED)

    @property
    def to_poll(self) -> bool:
        """On the server (a job id) with no outcome yet: a resume polls it."""
        return self.state == SUBMITTED and bool(self.job_id)

    @property
    def to_download(self) -> bool:
        """Rendered with its outputs known and not all on disk: a resume downloads them."""
        return self.state == SUCCEEDED and bool(self.asset_ids)

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
    waits: tuple[str, ...] = ()  # what the session was waiting for then (an outage, a cooldown, a lowered cap)


@dataclass(slots=True)
class Spend:
    """The run's cost so far in Creative Units, over every job and attempt the journal knows.

    `recorded_cu` sums the costs the server gave (generate answers, polled jobs); `estimated_cu` the --max-cost
    gate's estimates of jobs sent whose cost is not recorded (answer lost, or not given); `unpriced` counts
    sent jobs with neither. `failed_cu` is the recorded cost of jobs that failed on the server (Scenario's
    SDK says failed generations are refunded unless the model says otherwise: unconfirmed, so counted).
    """

    recorded_cu: float = 0.0
    estimated_cu: float = 0.0
    unpriced: int = 0
    failed_cu: float = 0.0
    highest_cu: float = 0.0  # the highest cost recorded for one job

    def add(self, part: tuple[float, float, int, float], sign: int) -> None:
        self.recorded_cu += sign * part[0]
        self.estimated_cu += sign * part[1]
        self.unpriced += sign * part[2]
        self.failed_cu += sign * part[3]


@dataclass(slots=True)
class LedgerState:
    """The replay of a whole journal: jobs by key, uploads by sha256, run-level facts."""

    jobs: dict[str, JobState] = field(default_factory=dict)
    uploads: dict[str, str] = field(default_factory=dict)  # input sha256 -> asset id
    # input sha256 -> its earlier asset ids, each with the time it was replaced (uploaded again: the server no
    # longer knew it): the jobs sent before that time were sent with it
    earlier_uploads: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    upload_ids: dict[str, str] = field(default_factory=dict)  # input sha256 -> its upload begun, not yet imported
    paths: dict[str, str] = field(default_factory=dict)  # each output path recorded -> the first key recording it
    strays: dict[str, str] = field(default_factory=dict)  # server job id -> key: a second job for one body (adopt)
    stray_files: dict[str, list[str]] = field(default_factory=dict)  # stray job id -> its saved outputs' paths
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
    spend: Spend = field(default_factory=Spend)  # the run's cost so far, kept current event by event
    prices: dict[str, float] = field(default_factory=dict)  # price class -> the last known cost of a job of it
    poll_mode: str | None = None  # how the last session noticed finished jobs: "feed" or "per-job"
    poll_mode_why: str | None = None  # why it fell back from the job listing to polling each job, if it did

    def job(self, key: str) -> JobState:
        found = self.jobs.get(key)
        if found is None:
            found = self.jobs[key] = JobState(key)
            self.by_state[PENDING] += 1
        return found

    def counts(self) -> dict[str, int]:
        """Jobs the journal knows, by state (kept current event by event)."""
        return dict(self.by_state)


def uploads_when_sent(state: LedgerState, job: JobState | None) -> Mapping[str, str]:
    """Each input's asset id as it was when `job` was last sent: `uploads`, but for an input uploaded again
    since (in a later session), the id it had then."""
    if not state.earlier_uploads or job is None or job.intent_at is None:
        return state.uploads
    sent_at = job.intent_at
    then = {sha: next(asset_id for asset_id, until in history if sent_at < until)
            for sha, history in state.earlier_uploads.items() if sent_at < history[-1][1]}
    return ChainMap(then, state.uploads) if then else state.uploads


def count_in(counts: Mapping[str, int], states: tuple[str, ...]) -> int:
    """How many of the jobs counted by state (`counts`) are in one of `states` (FINISHED, UNFINISHED)."""
    return sum(counts.get(state, 0) for state in states)


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
        state.poll_mode = state.poll_mode_why = None
        return
    if kind == "poll-mode":  # the job listing followed, or each job polled (and why the run fell back to it)
        state.poll_mode = str(event.get("mode"))[:20]
        state.poll_mode_why = _words(event.get("why"))
        return
    if kind == "requests":  # running totals of this session: API requests, 429s, the sending rate
        session_total = _count(event.get("count"))
        state.api_requests += max(0, session_total - state.session_requests)
        state.session_requests = session_total
        state.session_pacing = SessionPacing(_count(event.get("throttled")), _count(event.get("rate_cuts")),
                                             _number(event.get("sending_per_s")),
                                             _number(event.get("lowest_sending_per_s")),
                                             _texts(event.get("waits")))
        return
    if kind == "end":
        state.ended = True
        state.stopped = event.get("reason")
        return
    if kind == "upload-started":  # a multipart upload exists (its asset id comes with "upload")
        if isinstance(event.get("sha256"), str) and isinstance(event.get("upload_id"), str):
            state.upload_ids[event["sha256"]] = event["upload_id"]
        return
    if kind == "stray":  # a server job made for a key that already has one (it was paid twice): kept, listed
        state.strays[str(event.get("job_id"))] = str(event.get("key"))
        return
    if kind == "stray-downloaded":  # run --download-strays saved one of its outputs
        state.stray_files.setdefault(str(event.get("job_id")), []).append(str(event.get("path")))
        return
    if kind == "upload":
        sha, asset_id = str(event["sha256"]), str(event["asset_id"])
        earlier = state.uploads.get(sha)
        if earlier is not None and earlier != asset_id:
            state.earlier_uploads.setdefault(sha, []).append((earlier, now))
        state.uploads[sha] = asset_id
        state.upload_ids.pop(sha, None)
        return
    key = event.get("key")
    if not isinstance(key, str):
        return
    job = state.job(key)
    before = job.state
    spent = _spend_of(job)
    _apply_job(job, kind, event, now)
    _account(state, job, kind, spent)
    path = job.file if kind == "intent" else event.get("path") if kind == "downloaded" else None
    if isinstance(path, str):
        state.paths.setdefault(path, job.key)  # never given to another key (storage.claim_output_path)
    if not state.keep_specs:
        job.spec = job.request = None
    if job.state != before:
        state.by_state[before] -= 1
        state.by_state[job.state] += 1


def _spend_of(job: JobState) -> tuple[float, float, int, float]:
    """The job's share of `Spend`: (recorded, estimated, unpriced, failed).

    A job counts as sent (it may exist on the server, so be paid) when it has a job id or its POST's answer
    was lost (unknown); its cost is the recorded one, else the gate's estimate, else it is `unpriced`."""
    recorded = job.cost_earlier_cu + (job.cost_cu or 0.0)
    failed = (job.cost_cu or 0.0) if job.state == FAILED and job.error_kind == "job-failed" else 0.0
    if job.cost_cu is not None or (job.job_id is None and job.state != UNKNOWN):
        return recorded, 0.0, 0, failed
    return (recorded, job.estimate_cu, 0, failed) if job.estimate_cu is not None else (recorded, 0.0, 1, failed)


def _account(state: LedgerState, job: JobState, kind: Any, before: tuple[float, float, int, float]) -> None:
    """Move the job's share of the run's cost from `before` to now; learn the price of its kind of job."""
    after = _spend_of(job)
    if after != before:
        state.spend.add(before, -1)
        state.spend.add(after, +1)
    if job.cost_cu is not None:
        state.spend.highest_cu = max(state.spend.highest_cu, job.cost_cu)
    if job.price_class is None:
        return
    if kind == "priced" and job.estimate_cu is not None:
        state.prices[job.price_class] = job.estimate_cu
    elif kind in ("submitted", "succeeded", "failed") and job.cost_cu is not None:
        state.prices[job.price_class] = job.cost_cu  # what the server charged outranks a dry run


def _texts(value: Any) -> tuple[str, ...]:
    """A list of short texts from the journal (junk left out)."""
    return tuple(str(v)[:300] for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _cost(value: Any) -> float | None:
    """A cost as journaled: a finite number >= 0, else None."""
    try:
        number = _number(value)
    except OverflowError:  # an integer too large for a float
        return None
    return number if number is not None and 0 <= number < float("inf") else None


def _words(value: Any) -> str | None:
    """A hint or trace id as journaled: bounded text, else None."""
    return value[:500] if isinstance(value, str) and value else None


def _apply_job(job: JobState, kind: Any, event: Mapping[str, Any], now: float) -> None:
    if kind == "intent":
        spec = event.get("spec")
        if isinstance(spec, dict):
            job.spec = spec
            job.index = spec.get("index") if isinstance(spec.get("index"), int) else job.index
            job.batch = sys.intern(spec["batch"]) if isinstance(spec.get("batch"), str) else job.batch
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
        if job.cost_cu is not None:  # an earlier attempt's cost stays spent (no new float per job otherwise)
            job.cost_earlier_cu += job.cost_cu
        job.cost_cu = job.hint = job.trace_id = None
    elif kind == "not-sent":  # the POST surely did not create a job (the server answered an error)
        job.state = PENDING
        job.error = event.get("error")
    elif kind in ("unresolved", "answer-lost"):  # still unknown, and why: reconciling could not decide, or the
        job.error = event.get("error")          # POST's answer was lost (until then a live run is submitting it)
    elif kind == "submitted":
        job.state = SUBMITTED
        job.job_id = str(event["job_id"])
        job.submitted_at = now
        job.server_status = event.get("status")
        job.cost_cu = _cost(event.get("cost_cu"))
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
        job.cost_cu = _cost(event.get("cost_cu")) if _cost(event.get("cost_cu")) is not None else job.cost_cu
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
        job.hint, job.trace_id = _words(event.get("hint")), _words(event.get("trace_id"))
        job.cost_cu = _cost(event.get("cost_cu")) if _cost(event.get("cost_cu")) is not None else job.cost_cu
    elif kind == "reset":  # --retry-failed / --resubmit-unknown: make the job submittable again
        job.state = PENDING
        job.error = job.error_kind = job.hint = job.trace_id = None
    elif kind == "priced":  # the --max-cost gate let the job go at this estimate (costcap, pricing)
        job.estimate_cu = _cost(event.get("cost_cu"))
        kind_of_job = event.get("price_class")
        job.price_class = sys.intern(kind_of_job) if isinstance(kind_of_job, str) else None
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
        for _, event in journal_lines(handle, path, warn_torn=warn_torn):
            if event is not None:
                yield event


def journal_lines(handle: BinaryIO, path: Path, *, lines_before: int = 0,
                  warn_torn: bool = True) -> Iterator[tuple[bytes, dict[str, Any] | None]]:
    """Each complete line of a journal from where `handle` is (after `lines_before` lines), with its event (None
    for a line that is not a JSON object: one that is not JSON is warned about); stops at a torn last line."""
    for number, raw in enumerate(handle, start=lines_before + 1):
        if not raw.endswith(b"\n"):
            if warn_torn:
                log.warning("%s:%d: ignoring a torn last line (a crash mid-write)", path, number)
            return
        try:
            event = json.loads(raw)
        except ValueError:
            log.warning("%s:%d: ignoring a line that is not JSON", path, number)
            event = None
        yield raw, event if isinstance(event, dict) else None


def replay(path: Path, *, keep_specs: bool = True) -> LedgerState:
    """The state a journal describes (empty when it does not exist)."""
    state = LedgerState(keep_specs=keep_specs)
    for event in read_events(path):
        apply(state, event)
    return state
