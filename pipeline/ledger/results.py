"""`results.json`: the materialised view of a run (one record per job), rewritten atomically.

Built from the manifest's jobs (in index order) and the journal's state; jobs the
journal knows that the current manifest no longer has are kept at the end.
Written by streaming to a temporary file and renaming, so a reader never sees half.

A run names what its records are made of (`jobs_mark`: the manifest, the journal's job events, the code);
results.json ends with that mark and a digest of its jobs part and of results.csv. When a later session
(a resume with nothing to do) has the same mark and both files still hold what they held, only the `run`
part is new: the jobs part is copied as it is (and checked against its digest), results.csv left alone.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.ledger.replay import JobState, LedgerState, intents_of, uploads_when_sent
from pipeline.ledger.results_csv import CSV_NAME, csv_layout
from pipeline.spec import JobSpec

log = logging.getLogger(__name__)

RESULTS_NAME = "results.json"
SCHEMA_VERSION = 1
RECORDS_FORMAT = 1  # bump when job_record or the CSV rows change: older files are then rewritten, not reused
JOBS_OPEN = b',\n"jobs": ['
JOBS_CLOSE = b'],\n"jobs_mark": '
COPY_CHUNK_BYTES = 1024 * 1024
HEAD_LIMIT_BYTES = 16 * 1024 * 1024  # the run part is a few kB: a file whose jobs start later is rewritten


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_record(spec: JobSpec | None, job: JobState | None, uploads: Mapping[str, str],
               *, in_manifest: bool = True) -> dict[str, Any]:
    """One job's record: what was asked (spec), what was sent, and what happened."""
    spec_json = spec.to_json() if spec is not None else dict((job.spec if job else None) or {})
    inputs = []
    for ref in spec_json.get("inputs", []):
        entry = dict(ref)
        if entry.get("kind") == "file":
            entry["asset_id"] = uploads.get(entry.get("sha256", ""))
        inputs.append(entry)
    params = spec_json.get("params", {})
    return {
        "key": spec_json.get("key", job.key if job else None),
        "index": spec_json.get("index"),
        "batch": spec_json.get("batch"),
        "in_manifest": in_manifest,
        "model": spec_json.get("model"),
        "prompt": params.get("prompt"),
        "seed": params.get("seed"),
        "params": params,
        "swept": spec_json.get("swept", {}),
        "inputs": inputs,
        "request": _request(spec, job, uploads),
        "status": job.state if job else "pending",
        "job_id": job.job_id if job else None,
        "server_status": job.server_status if job else None,
        "progress": job.progress if job else None,
        "error": job.error if job else None,
        "error_kind": job.error_kind if job else None,
        "hint": job.hint if job else None,  # metadata.hint of a failure: what to do about it
        "trace_id": job.trace_id if job else None,  # the error answer's trace id (support asks for it)
        "cost_cu": job.cost_cu if job else None,  # this attempt: billing.cuCost if polled, else creativeUnitsCost
        "cost_cu_earlier_attempts": job.cost_earlier_cu if job else 0.0,  # recorded for attempts before this one
        "asset_ids": list(job.asset_ids) if job else [],
        "files": [{"asset_id": f.asset_id, "path": f.path, "bytes": f.bytes, "sha256": f.sha256}
                  for f in job.files.values()] if job else [],
        "attempts": {"submit": job.submit_attempts if job else 0,
                     "download": job.download_attempts if job else 0},
        "timings": {
            "intent_at": iso(job.intent_at if job else None),
            "submitted_at": iso(job.submitted_at if job else None),
            "finished_at": iso(job.finished_at if job else None),
            "downloaded_at": iso(job.downloaded_at if job else None),
            "server_duration_s": job.server_duration_s if job else None,
        },
    }


def _request(spec: JobSpec | None, job: JobState | None, uploads: Mapping[str, str]) -> dict[str, Any] | None:
    """The exact body sent: as journaled, or rebuilt from the spec and the uploads (the same bytes)."""
    if job is None or job.intent_at is None:
        return None
    if job.request is not None or spec is None:
        return job.request
    try:
        return spec.body(uploads)
    except KeyError:
        return None


def records(specs: Iterable[JobSpec], state: LedgerState, *, journal: Path | None = None) -> Iterable[dict[str, Any]]:
    """Every job's record: the manifest's jobs first, then journal-only jobs (specs read back from `journal`
    when the state did not keep them)."""
    seen: set[str] = set()  # of the journal's jobs, those in `specs` (the journal's own key strings: no copies)
    for spec in specs:
        job = state.jobs.get(spec.key)
        if job is not None:
            seen.add(job.key)
        yield job_record(spec, job, uploads_when_sent(state, job))
    missing = {k for k, j in state.jobs.items() if k not in seen and j.spec is None}
    intents = intents_of(journal, missing) if journal is not None else {}
    for key, job in state.jobs.items():
        if key in seen:
            continue
        if job.spec is None and key in intents:
            job.spec, job.request = intents[key].get("spec"), intents[key].get("request")
        if job.spec is not None:
            yield job_record(None, job, uploads_when_sent(state, job), in_manifest=False)


def jobs_mark(*parts: str) -> str:
    """What a run's records are made of, in one digest: `parts` (the manifest's fingerprint, the journal's
    `records_mark`) and the code that makes records from them."""
    return hashlib.sha256("\0".join((str(SCHEMA_VERSION), str(RECORDS_FORMAT), __version__, *parts)).encode()
                          ).hexdigest()


def write_results(run_dir: Path, run: Mapping[str, Any], jobs: Iterable[Mapping[str, Any]], *,
                  mark: str | None = None) -> Path:
    """Stream `{"run": ..., "jobs": [...]}` and results.csv in one pass over the records (memory flat in
    the number of jobs) to temporary files, fsync, and rename them into place (results.json last).

    The CSV's parameter columns are those `run` names (`parameters`), else LTX-2 19B's. With a `mark`
    (`jobs_mark`), results.json ends with it, and when the files on disk were written with the same mark and
    still hold what they held, only `run` is written anew (`jobs` is not even read)."""
    target = run_dir / RESULTS_NAME
    layout = csv_layout(run)
    if mark is not None:
        mark = hashlib.sha256(f"{mark}\0{json.dumps(layout.columns)}".encode()).hexdigest()
        if _rewrite_run(run_dir, run, mark):
            return target
    temporary = run_dir / f".{RESULTS_NAME}.{os.getpid()}.tmp"
    temporary_csv = run_dir / f".{CSV_NAME}.{os.getpid()}.tmp"
    try:
        with temporary.open("wb") as handle, \
                temporary_csv.open("w", encoding="utf-8", newline="") as csv_handle:
            table = csv.writer(csv_handle, quoting=csv.QUOTE_MINIMAL)
            table.writerow(layout.columns)
            handle.write(_head(run))
            jobs_digest, jobs_bytes = hashlib.sha256(), 0
            for number, record in enumerate(jobs):
                part = ((",\n" if number else "\n") + json.dumps(record, ensure_ascii=False, separators=(",", ":"))
                        ).encode()
                jobs_digest.update(part)
                jobs_bytes += len(part)
                handle.write(part)
                table.writerow(layout.row(record))
            csv_handle.flush()
            handle.write(b"\n")
            jobs_digest.update(b"\n")
            if mark is None:
                handle.write(b"]}\n")
            else:
                handle.write(_tail({"inputs": mark, "jobs_bytes": jobs_bytes + 1, "jobs_sha256": jobs_digest.hexdigest(),
                                    "csv_sha256": file_sha256(temporary_csv)}))
            for done in (handle, csv_handle):
                done.flush()
                os.fsync(done.fileno())
        os.replace(temporary_csv, run_dir / CSV_NAME)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
        temporary_csv.unlink(missing_ok=True)
    return target


def _head(run: Mapping[str, Any]) -> bytes:
    """results.json up to its jobs: the schema, the run part, and the opening of the jobs list."""
    return (('{"schema": %d, "run": ' % SCHEMA_VERSION) + json.dumps(run, ensure_ascii=False, indent=1)).encode() \
        + JOBS_OPEN


def _tail(mark: Mapping[str, Any]) -> bytes:
    """results.json after its jobs: the end of the list and the mark its jobs part and results.csv were written
    with (one line, the last)."""
    return JOBS_CLOSE + json.dumps(mark, separators=(",", ":")).encode() + b"}\n"


def _rewrite_run(run_dir: Path, run: Mapping[str, Any], mark: str) -> bool:
    """Write results.json with a new `run` and the jobs part it holds, when it ends with `mark` and its jobs part
    and results.csv are as that mark says (sha256); False (nothing written) when anything differs."""
    target = run_dir / RESULTS_NAME
    temporary = run_dir / f".{RESULTS_NAME}.{os.getpid()}.tmp"
    try:
        with target.open("rb") as old:
            found = _mark_of(old)
            if found is None or found[0].get("inputs") != mark:
                return False
            written, tail_at = found
            start = _jobs_start(old)
            size = written.get("jobs_bytes")
            if start is None or not isinstance(size, int) or start + size != tail_at:
                return False
            if file_sha256(run_dir / CSV_NAME) != written.get("csv_sha256"):
                return False
            digest = hashlib.sha256()
            with temporary.open("wb") as new:
                new.write(_head(run))
                old.seek(start)
                left = size
                while left > 0 and (chunk := old.read(min(left, COPY_CHUNK_BYTES))):
                    digest.update(chunk)
                    new.write(chunk)
                    left -= len(chunk)
                if left or digest.hexdigest() != written.get("jobs_sha256"):
                    return False
                new.write(_tail(written))
                new.flush()
                os.fsync(new.fileno())
        os.replace(temporary, target)
        return True
    except (OSError, ValueError) as exc:
        log.debug("rewriting %s whole: %s", target, exc)
        return False
    finally:
        temporary.unlink(missing_ok=True)


def _mark_of(handle: Any) -> tuple[dict[str, Any], int] | None:
    """The mark a results.json ends with, and where its jobs part ends; None when it has none."""
    size = handle.seek(0, os.SEEK_END)
    handle.seek(max(0, size - 4096))
    tail = handle.read()
    at = tail.rfind(JOBS_CLOSE)
    if at < 0 or not tail.endswith(b"}\n"):
        return None
    try:
        mark = json.loads(tail[at + len(JOBS_CLOSE):-2])
    except ValueError:
        return None
    return (mark, size - len(tail) + at) if isinstance(mark, dict) else None


def _jobs_start(handle: Any) -> int | None:
    """Where the jobs part of a results.json begins (just after `"jobs": [`); None when it is not found early."""
    handle.seek(0)
    head = b""
    while len(head) < HEAD_LIMIT_BYTES:
        chunk = handle.read(64 * 1024)
        if not chunk:
            return None
        head += chunk
        at = head.find(JOBS_OPEN)
        if at >= 0:
            return at + len(JOBS_OPEN)
    return None


def file_sha256(path: Path) -> str | None:
    """The file's sha256, or None when it cannot be read (missing, unreadable)."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(COPY_CHUNK_BYTES):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()
