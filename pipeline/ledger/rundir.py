"""Reading a run folder for the commands that look at a run (status, report, exports, rerun).

`load_run(run_dir)` gives the run's job records in results.json's shape: from results.json, brought up
to date with the journal when the journal has moved on since (a run in progress), or rebuilt from the
journal alone when results.json is missing or unreadable (the jobs the journal knows).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, TypeVar

from pipeline.errors import InputError
from pipeline.ledger.replay import JOURNAL_NAME, LedgerState, replay, uploads_when_sent
from pipeline.ledger.results import RESULTS_NAME, file_sha256, iso, job_record, records
from pipeline.spec import JobSpec

log = logging.getLogger(__name__)

T = TypeVar("T")



@dataclass(frozen=True, slots=True)
class RunView:
    """A run's records as the look-at commands need them."""

    run_dir: Path
    run: Mapping[str, Any]  # results.json's `run` (or what the journal tells)
    jobs: list[dict[str, Any]]  # results.json's `jobs` records
    source: Literal["results.json", "results.json+journal", "journal"]


def check_run_dir(run_dir: str | Path) -> Path:
    """The run folder as a Path; an InputError (exit 2) when it is not one."""
    path = Path(run_dir).expanduser()
    if not path.is_dir():
        raise InputError(f"{path}: not a folder (give the run folder, e.g. out/<manifest name>)")
    if not (path / JOURNAL_NAME).is_file() and not (path / RESULTS_NAME).is_file():
        raise InputError(f"{path}: no {JOURNAL_NAME} here, so it is not a run folder "
                         "(give the folder `ltx-batch run` wrote, e.g. out/<manifest name>)")
    return path


def load_run(run_dir: str | Path) -> RunView:
    """The run's records (see the module docstring)."""
    path = check_run_dir(run_dir)
    journal = path / JOURNAL_NAME
    saved = _read_results(path / RESULTS_NAME)
    if saved is not None and not (journal.is_file() and _newer(journal, path / RESULTS_NAME)):
        return RunView(path, saved[0], saved[1], "results.json")
    if not journal.is_file():
        raise InputError(f"{path}: neither {RESULTS_NAME} nor {JOURNAL_NAME} can be read")
    state = replay(journal)
    if saved is None:
        return RunView(path, journal_run(path, state), list(records([], state)), "journal")
    run, jobs = saved
    return RunView(path, {**run, **journal_run(path, state)}, _refresh(jobs, state), "results.json+journal")


def journal_run(run_dir: Path, state: LedgerState) -> dict[str, Any]:
    """The run-level facts the journal holds, in results.json's `run` shape (the parts it can tell)."""
    last = state.runs[-1] if state.runs else {}
    return {
        "name": last.get("name") or run_dir.name,
        "manifest": last.get("manifest"),
        "model": last.get("model"),
        "sessions": len(state.runs),
        "first_started_at": iso(state.first_at),
        "updated_at": iso(state.last_at),
        "job_count": last.get("job_count"),
        "api_requests": state.api_requests,
        "stopped": state.stopped,
    }


def safe_relative(path: str) -> str | None:
    """A results.json file path if it stays inside the run folder (relative, no `..`), else None."""
    if not path or "\x00" in path:
        return None
    if ".." not in path and ":" not in path and "\\" not in path and path[0] != "/":
        return path  # the usual case (videos/name.mp4), told without building a path
    pure = PurePosixPath(path.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or path.startswith(("/", "\\")) or ":" in pure.parts[0]:
        return None
    return path


def lost_files(run_dir: Path,
               files: Iterable[tuple[T, str, int] | tuple[T, str, int, int | None, str]]) -> set[T]:
    """The tags of recorded files that are missing or changed on disk. Blocking (run it in a thread in a loop).

    Each record is (tag, path relative to the run folder, bytes, mtime_ns, sha256); journals from before
    mtimes were recorded give (tag, path, bytes) or mtime_ns None, and are checked by size alone. A file is
    lost when it is missing, of another size, recorded with a path outside the run folder, or when its mtime
    differs from the recorded one and its sha256, computed then (only in that doubtful case), does too: a
    file merely touched or copied is kept, one rewritten in place with the same size is not.

    One directory listing per folder rather than a stat and two path resolutions per file: a no-op resume
    of 100,000 downloaded jobs checks them all in one pass."""
    listings: dict[str, dict[str, tuple[int, int]]] = {}
    lost: set[T] = set()
    for tag, path, size, *recorded in files:
        mtime_ns, sha256 = (recorded[0], recorded[1]) if recorded else (None, None)
        relative = safe_relative(path)
        if relative is None:
            lost.add(tag)
            continue
        folder, _, name = relative.replace("\\", "/").rpartition("/")
        listing = listings.get(folder)
        if listing is None:
            listing = listings[folder] = _file_stats(run_dir / folder)
        found = listing.get(name)
        if found is None or found[0] != size:
            lost.add(tag)
        elif mtime_ns is not None and found[1] != mtime_ns and file_sha256(run_dir / relative) != sha256:
            lost.add(tag)
    return lost


def _file_stats(folder: Path) -> dict[str, tuple[int, int]]:
    """Name -> (size, mtime_ns) of the regular files (or links to them) in `folder`; empty when it cannot be listed.

    Listed through an open descriptor of the folder: each stat then starts from it, not from the path."""
    stats: dict[str, tuple[int, int]] = {}
    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return stats
    try:
        with os.scandir(descriptor) as entries:
            for entry in entries:
                try:
                    if entry.is_file():
                        stat = entry.stat()
                        stats[entry.name] = (stat.st_size, stat.st_mtime_ns)
                except OSError:
                    continue
    except OSError:
        pass
    finally:
        os.close(descriptor)
    return stats


def _read_results(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("%s cannot be read (%s); rebuilding the records from the journal", path, exc)
        return None
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        log.warning("%s is not a results file; rebuilding the records from the journal", path)
        return None
    return dict(data.get("run") or {}), [j for j in data["jobs"] if isinstance(j, dict)]


def _newer(journal: Path, results: Path) -> bool:
    try:
        return os.stat(journal).st_mtime_ns > os.stat(results).st_mtime_ns
    except OSError:
        return False


def _refresh(jobs: list[dict[str, Any]], state: LedgerState) -> list[dict[str, Any]]:
    """results.json's records with each job's outcome replaced by the journal's (newer) one."""
    out, seen = [], set()
    for record in jobs:
        key = record.get("key")
        seen.add(key)
        job = state.jobs.get(key) if isinstance(key, str) else None
        if job is None:
            out.append(record)
            continue
        try:
            spec = JobSpec.from_json(record)
        except (KeyError, TypeError, ValueError):
            out.append(record)
            continue
        out.append(job_record(spec, job, uploads_when_sent(state, job), in_manifest=bool(record.get("in_manifest", True))))
    out += [r for r in records([], state) if r["key"] not in seen]
    return out
