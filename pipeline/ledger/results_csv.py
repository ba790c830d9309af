"""`results.csv`: one row per job, for spreadsheets and other tools, written beside results.json.

csv module, UTF-8 without BOM, RFC 4180 quoting. Between the job's identity and its outcome: one column per value
parameter, then `<input>_path`, `_sha256` and `_asset_id` per file input, of the run's models (`CsvLayout`):
- a run of LTX-2 19B alone: its parameter table's, in table order (the columns every earlier version wrote);
- any other: the parameters results.json's `run` names (`parameters`: the manifest's models' inputs, in their
  schemas' order), then any other parameter or input the records carry, in order of first appearance.
A `file_array` input's files share its three columns, separated by ';'. Columns added later go at the end, so a
reader that indexes them keeps working.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.manifest.params import FILE_PARAMS, MODEL_ID, VALUE_PARAMS

CSV_NAME = "results.csv"
LIST_SEPARATOR = ";"  # between several output files of one job, or the files of a file_array input
HEAD_COLUMNS = ("key", "index", "batch", "status", "job_id", "server_status", "error_kind", "error")
TAIL_COLUMNS = ("files", "bytes", "sha256", "output_asset_ids", "submit_attempts", "download_attempts",
                "submitted_at", "finished_at", "downloaded_at", "server_duration_s", "model", "in_manifest",
                "cost_cu", "hint", "trace_id")  # the last three came later: added at the end
FILE_PARTS = ("path", "sha256", "asset_id")


@dataclass(frozen=True, slots=True)
class CsvLayout:
    """The parameter columns of a run's CSV: its value parameters and its file inputs."""

    values: tuple[str, ...] = VALUE_PARAMS
    files: tuple[str, ...] = FILE_PARAMS

    @property
    def columns(self) -> tuple[str, ...]:
        return (*HEAD_COLUMNS, *self.values, *(f"{param}_{part}" for param in self.files for part in FILE_PARTS),
                *TAIL_COLUMNS)

    def row(self, job: Mapping[str, Any]) -> list[str]:
        """One job's CSV fields, in `columns` order."""
        params = job.get("params") or {}
        files = job.get("files") or []
        attempts = job.get("attempts") or {}
        timings = job.get("timings") or {}
        refs: dict[Any, list[Mapping[str, Any]]] = {}
        for ref in job.get("inputs") or ():
            refs.setdefault(ref.get("param"), []).append(ref)
        values: list[Any] = [job.get(name) for name in HEAD_COLUMNS]
        values += [_joined(params.get(name)) for name in self.values]
        for param in self.files:
            chosen = sorted(refs.get(param, []), key=lambda ref: ref.get("index") or 0)
            values += [_joined([ref.get(part) for ref in chosen]) if chosen else None for part in FILE_PARTS]
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


LTX_LAYOUT = CsvLayout()
CSV_COLUMNS: tuple[str, ...] = LTX_LAYOUT.columns
"""The columns of a run of LTX-2 19B alone."""


def csv_layout(run: Mapping[str, Any] | None = None, jobs: Sequence[Mapping[str, Any]] = ()) -> CsvLayout:
    """The columns for a run (results.json's `run`) and its records (see the module docstring)."""
    run = run or {}
    named = run.get("parameters")
    models = {str(job.get("model") or MODEL_ID) for job in jobs}
    if run.get("model") or not jobs:
        models.add(str(run.get("model") or MODEL_ID))
    if isinstance(named, Mapping):
        values, files = dict.fromkeys(_names(named.get("values"))), dict.fromkeys(_names(named.get("files")))
    elif models == {MODEL_ID}:
        return LTX_LAYOUT
    elif MODEL_ID in models:  # several models, from before runs named their parameters: LTX-2 19B's first
        values, files = dict.fromkeys(VALUE_PARAMS), dict.fromkeys(FILE_PARAMS)
    else:
        values, files = {}, {}
    for job in jobs:
        for ref in job.get("inputs") or ():
            files.setdefault(str(ref.get("param")), None)
        for name in job.get("params") or {}:
            values.setdefault(str(name), None)
    return CsvLayout(tuple(values), tuple(files))


def _names(raw: Any) -> list[str]:
    return [str(name) for name in raw] if isinstance(raw, list) else []


def _joined(value: Any) -> Any:
    """A list (an array parameter, a file_array input's files) as one field: its items separated by ';'."""
    if isinstance(value, (list, tuple)):
        return LIST_SEPARATOR.join(cell(item) for item in value)
    return value


def cell(value: Any) -> str:
    """One CSV field: empty for unset, `true`/`false` for booleans, the number or text as it is."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_text(jobs: Iterable[Mapping[str, Any]], run: Mapping[str, Any] | None = None) -> str:
    """The whole CSV document (header + one row per job), its columns those of the run and its records."""
    jobs = list(jobs)
    layout = csv_layout(run, jobs)
    out = io.StringIO(newline="")
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(layout.columns)
    writer.writerows(layout.row(job) for job in jobs)
    return out.getvalue()


def write_csv(run_dir: Path, jobs: Iterable[Mapping[str, Any]], run: Mapping[str, Any] | None = None) -> Path:
    """Write `results.csv` atomically from a run's records (`rundir.load_run(...).jobs`; `run`: its `run`)."""
    target = Path(run_dir) / CSV_NAME
    temporary = target.with_name(f".{CSV_NAME}.{os.getpid()}.tmp")
    try:
        temporary.write_text(csv_text(jobs, run), encoding="utf-8", newline="")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target
