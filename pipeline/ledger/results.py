"""`results.json`: the materialised view of a run (one record per job), rewritten atomically.

Built from the manifest's jobs (in index order) and the journal's state; jobs the
journal knows that the current manifest no longer has are kept at the end.
Written by streaming to a temporary file and renaming, so a reader never sees half.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.ledger.replay import JobState, LedgerState, intents_of, uploads_when_sent
from pipeline.ledger.results_csv import CSV_NAME, csv_layout
from pipeline.spec import JobSpec

RESULTS_NAME = "results.json"
SCHEMA_VERSION = 1


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


def write_results(run_dir: Path, run: Mapping[str, Any], jobs: Iterable[Mapping[str, Any]]) -> Path:
    """Stream `{"run": ..., "jobs": [...]}` and results.csv in one pass over the records (memory flat in
    the number of jobs) to temporary files, fsync, and rename them into place (results.json last).

    The CSV's parameter columns are those `run` names (`parameters`), else LTX-2 19B's."""
    target = run_dir / RESULTS_NAME
    temporary = run_dir / f".{RESULTS_NAME}.{os.getpid()}.tmp"
    temporary_csv = run_dir / f".{CSV_NAME}.{os.getpid()}.tmp"
    try:
        with temporary.open("w", encoding="utf-8") as handle, \
                temporary_csv.open("w", encoding="utf-8", newline="") as csv_handle:
            table = csv.writer(csv_handle, quoting=csv.QUOTE_MINIMAL)
            layout = csv_layout(run)
            table.writerow(layout.columns)
            handle.write('{"schema": %d, "run": ' % SCHEMA_VERSION)
            handle.write(json.dumps(run, ensure_ascii=False, indent=1))
            handle.write(',\n"jobs": [')
            for number, record in enumerate(jobs):
                handle.write(",\n" if number else "\n")
                handle.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
                table.writerow(layout.row(record))
            handle.write("\n]}\n")
            for done in (handle, csv_handle):
                done.flush()
                os.fsync(done.fileno())
        os.replace(temporary_csv, run_dir / CSV_NAME)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
        temporary_csv.unlink(missing_ok=True)
    return target
