"""`results.csv`: one row per job, for spreadsheets and other tools, written beside results.json.

csv module, UTF-8 without BOM, RFC 4180 quoting, one column per value parameter in `params.PARAMS`
order; columns added later go at the end, so a reader that indexes them keeps working.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pipeline.manifest.params import FILE_PARAMS, VALUE_PARAMS

CSV_NAME = "results.csv"
LIST_SEPARATOR = ";"  # between several output files of one job
HEAD_COLUMNS = ("key", "index", "batch", "status", "job_id", "server_status", "error_kind", "error")
TAIL_COLUMNS = ("files", "bytes", "sha256", "output_asset_ids", "submit_attempts", "download_attempts",
                "submitted_at", "finished_at", "downloaded_at", "server_duration_s", "model", "in_manifest",
                "cost_cu", "hint", "trace_id")  # the last three came later: added at the end
CSV_COLUMNS: tuple[str, ...] = (
    *HEAD_COLUMNS, *VALUE_PARAMS,
    *(f"{param}_{part}" for param in FILE_PARAMS for part in ("path", "sha256", "asset_id")),
    *TAIL_COLUMNS)



def cell(value: Any) -> str:
    """One CSV field: empty for unset, `true`/`false` for booleans, the number or text as it is."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_row(job: Mapping[str, Any]) -> list[str]:
    """One job's CSV fields, in `CSV_COLUMNS` order."""
    params = job.get("params") or {}
    files = job.get("files") or []
    attempts = job.get("attempts") or {}
    timings = job.get("timings") or {}
    refs = {ref.get("param"): ref for ref in job.get("inputs") or ()}
    values: list[Any] = [job.get(name) for name in HEAD_COLUMNS]
    values += [params.get(name) for name in VALUE_PARAMS]
    for param in FILE_PARAMS:
        ref = refs.get(param) or {}
        values += [ref.get("path"), ref.get("sha256"), ref.get("asset_id")]
    values += [
        LIST_SEPARATOR.join(str(f.get("path")) for f in files),
        LIST_SEPARATOR.join(str(f.get("bytes")) for f in files),
        LIST_SEPARATOR.join(str(f.get("sha256")) for f in files),
        LIST_SEPARATOR.join(str(a) for a in job.get("asset_ids") or ()),
        attempts.get("submit"), attempts.get("download"),
        timings.get("submitted_at"), timings.get("finished_at"), timings.get("downloaded_at"),
        timings.get("server_duration_s"), job.get("model"), job.get("in_manifest"),
        job.get("cost_cu"), job.get("hint"), job.get("trace_id"),
    ]
    return [cell(v) for v in values]


def csv_text(jobs: Iterable[Mapping[str, Any]]) -> str:
    """The whole CSV document (header + one row per job)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_row(job) for job in jobs)
    return out.getvalue()


def write_csv(run_dir: Path, jobs: Iterable[Mapping[str, Any]]) -> Path:
    """Write `results.csv` atomically from a run's records (`rundir.load_run(...).jobs`)."""
    target = Path(run_dir) / CSV_NAME
    temporary = target.with_name(f".{CSV_NAME}.{os.getpid()}.tmp")
    try:
        temporary.write_text(csv_text(jobs), encoding="utf-8", newline="")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target
