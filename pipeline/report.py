"""`RUN_DIR/report.html`: the run's contact sheet, with poster frames and `results.csv` beside it.

`write_report(run_dir)` reads the run (results.json, or the journal), lays it out (`grid`), extracts a
poster frame per video with ffmpeg when it is installed (`posters/`, cached, made in parallel; without
ffmpeg the videos simply have no poster), renders the page (`sheet`) and writes it atomically.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.exports import write_csv
from pipeline.grid import check_axis, layout
from pipeline.rundir import load_run, safe_relative
from pipeline.sheet import Media, href, render

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"
POSTERS_DIR = "posters"
POSTER_WIDTH_PX = 480
POSTER_AT_S = (0.5, 0.0)  # try half a second in (past a fade-in), then the first frame (very short clips)
FFMPEG_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class ReportResult:
    """What `write_report` made: the page, its size, the layout kind and how long it took."""

    path: Path
    jobs: int
    bytes: int
    posters: int
    kind: str
    build_s: float


def write_report(run_dir: str | Path, *, rows: str | None = None, cols: str | None = None,
                 posters: bool = True, ffmpeg: str | None = None, csv: bool = True) -> ReportResult:
    """Write `report.html` (and `results.csv`) into the run folder; raise InputError for bad axes or folder."""
    started = time.monotonic()
    rows = check_axis(rows, flag="--rows") if rows is not None else None
    cols = check_axis(cols, flag="--cols") if cols is not None else None
    view = load_run(run_dir)
    sheet = layout(view.jobs, rows=rows, cols=cols)
    files = _existing_files(view.run_dir, view.jobs)
    tool = (ffmpeg or shutil.which("ffmpeg")) if posters else None
    made = make_posters(view.run_dir, [p for paths in files.values() for p, _ in paths], tool) if tool else {}

    def media(job: Mapping[str, Any]) -> list[Media]:
        out = []
        for path, size in files.get(str(job.get("key")), []):
            link = href(path)
            if link is not None:
                poster = made.get(path)
                out.append(Media(link, href(poster) if poster else None, path.rsplit("/", 1)[-1], size))
        return out

    command = f"ltx-batch report {view.run_dir}"
    page = render(view.run, view.jobs, sheet, media, command=command)
    target = view.run_dir / REPORT_NAME
    _write_atomic(target, page.encode("utf-8"))
    if csv:
        write_csv(view.run_dir, view.jobs)
    return ReportResult(target, len(view.jobs), target.stat().st_size, len(made), sheet.kind,
                        time.monotonic() - started)


def _existing_files(run_dir: Path, jobs: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[str, int | None]]]:
    """Each job's output files that are inside the run folder and on disk: (relative path, bytes)."""
    out: dict[str, list[tuple[str, int | None]]] = {}
    for job in jobs:
        for record in job.get("files") or ():
            path = safe_relative(str(record.get("path") or ""))
            if path is not None and (run_dir / path).is_file():
                out.setdefault(str(job.get("key")), []).append((path, record.get("bytes")))
    return out


def poster_path(video: str) -> str:
    """Where a video's poster goes, relative to the run folder: `videos/a/b.mp4` -> `posters/a__b.jpg`."""
    flat = video.replace("\\", "/").strip("/").removeprefix("videos/").replace("/", "__")
    stem = flat.rsplit(".", 1)[0] if "." in flat else flat
    return f"{POSTERS_DIR}/{stem}.jpg"


def make_posters(run_dir: Path, videos: Sequence[str], ffmpeg: str, *,
                 workers: int | None = None) -> dict[str, str]:
    """Extract (or reuse) one JPEG per video; video path -> poster path for those that worked."""
    (run_dir / POSTERS_DIR).mkdir(exist_ok=True)
    count = workers or min(8, (os.cpu_count() or 2) * 2)
    with ThreadPoolExecutor(max_workers=count) as pool:
        done = pool.map(lambda v: (v, _poster(run_dir, v, ffmpeg)), videos)
        return {video: poster for video, poster in done if poster is not None}


def _poster(run_dir: Path, video: str, ffmpeg: str) -> str | None:
    relative = poster_path(video)
    source, target = run_dir / video, run_dir / relative
    try:
        if target.is_file() and target.stat().st_size and target.stat().st_mtime_ns >= source.stat().st_mtime_ns:
            return relative
    except OSError:
        return None
    partial = target.with_name(f".{target.stem}.{os.getpid()}.part.jpg")
    for at_s in POSTER_AT_S:
        command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-ss", str(at_s),
                   "-i", str(source), "-frames:v", "1", "-vf", f"scale={POSTER_WIDTH_PX}:-2", "-q:v", "4",
                   str(partial)]
        try:
            subprocess.run(command, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("no poster for %s: %s", video, exc)
            break
        if partial.is_file() and partial.stat().st_size > 0:
            os.replace(partial, target)
            return relative
    partial.unlink(missing_ok=True)
    log.debug("ffmpeg made no poster for %s", video)
    return None


def _write_atomic(target: Path, data: bytes) -> None:
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, target)
