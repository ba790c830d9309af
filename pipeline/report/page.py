"""`RUN_DIR/report.html`: the run's contact sheet, with poster frames and `results.csv` beside it.

`write_report(run_dir)` reads the run (results.json, or the journal), lays it out (`grid`), extracts a
poster frame per video with ffmpeg when it is installed (`posters/`, cached, made in parallel; without
ffmpeg the videos simply have no poster; image and audio outputs, told by their extension, never get one),
renders the page (`sheet`) and writes it atomically.
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

from pipeline.errors import PipelineError
from pipeline.ledger.results_csv import write_csv
from pipeline.ledger.rundir import load_run, safe_relative
from pipeline.report.grid import layout
from pipeline.report.sheet import render
from pipeline.report.tiles import Media, href, media_kind

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"
POSTERS_DIR = "posters"
POSTER_WIDTH_PX = 480
POSTER_AT_S = (0.5, 0.0)  # try half a second in (past a fade-in), then the first frame (very short clips)
FFMPEG_TIMEOUT_S = 30.0  # per video
POSTER_BATCH = 24  # videos per ffmpeg process


@dataclass(frozen=True, slots=True)
class ReportResult:
    """What `write_report` made: the page, its size, the layout kind and how long it took."""

    path: Path
    jobs: int
    bytes: int
    posters: int
    kind: str  # grid | strips | mixed
    source: str  # results.json | results.json+journal | journal
    build_s: float


def write_report(run_dir: str | Path, *, rows: str | None = None, cols: str | None = None,
                 posters: bool = True, ffmpeg: str | None = None, csv: bool = True) -> ReportResult:
    """Write `report.html` (and `results.csv`) into the run folder; raise InputError for a bad folder, or for
    `rows`/`cols` naming an axis the run does not sweep."""
    started = time.monotonic()
    view = load_run(run_dir)
    sheet = layout(view.jobs, rows=rows, cols=cols, run=view.run)
    files = _existing_files(view.run_dir, view.jobs)
    tool = (ffmpeg or shutil.which("ffmpeg")) if posters else None
    made: dict[str, str] = {}
    if tool:
        try:
            made = make_posters(view.run_dir, [p for paths in files.values() for p, _ in paths
                                               if media_kind(p) == "video"], tool)
        except OSError as exc:  # e.g. a read-only run folder: the page works without posters
            log.warning("no poster frames: %s", exc)

    def media(job: Mapping[str, Any]) -> list[Media]:
        out = []
        for path, size in files.get(str(job.get("key")), []):
            link = href(path)
            if link is not None:
                poster = made.get(path)
                out.append(Media(link, href(poster) if poster else None, path.rsplit("/", 1)[-1], size,
                                 media_kind(path)))
        return out

    command = f"ltx-batch report {view.run_dir}"
    page = render(view.run, view.jobs, sheet, media, command=command)
    target = view.run_dir / REPORT_NAME
    try:
        _write_atomic(target, page.encode("utf-8"))
        if csv:
            write_csv(view.run_dir, view.jobs, view.run)
    except OSError as exc:
        raise PipelineError(f"cannot write into {view.run_dir}: {exc.strerror or exc}") from None
    return ReportResult(target, len(view.jobs), len(page.encode("utf-8")), len(made), sheet.kind, view.source,
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
    """Extract (or reuse) one JPEG per video; video path -> poster path for those that worked.

    ffmpeg's start-up dominates, so each process takes `POSTER_BATCH` videos (one output per input);
    a video its batch could not do (unreadable, shorter than the seek) is retried alone.
    """
    (run_dir / POSTERS_DIR).mkdir(exist_ok=True)
    todo = [v for v in dict.fromkeys(videos) if not _fresh(run_dir, v)]
    chunks = [todo[i:i + POSTER_BATCH] for i in range(0, len(todo), POSTER_BATCH)]
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        list(pool.map(lambda chunk: _extract(run_dir, chunk, ffmpeg, POSTER_AT_S[0]), chunks))
        missing = [v for v in todo if not _fresh(run_dir, v)]
        for at_s in POSTER_AT_S:
            list(pool.map(lambda v: _extract(run_dir, [v], ffmpeg, at_s), missing))
            missing = [v for v in missing if not _fresh(run_dir, v)]
    for video in missing:
        log.debug("ffmpeg made no poster for %s", video)
    return {video: poster_path(video) for video in videos if _fresh(run_dir, video)}


def _fresh(run_dir: Path, video: str) -> bool:
    """Whether the video's poster exists, is not empty and is not older than the video."""
    try:
        poster = (run_dir / poster_path(video)).stat()
        return poster.st_size > 0 and poster.st_mtime_ns >= (run_dir / video).stat().st_mtime_ns
    except OSError:
        return False


def _extract(run_dir: Path, videos: Sequence[str], ffmpeg: str, at_s: float) -> None:
    """One ffmpeg process: the frame at `at_s` of each video, scaled, to a partial file renamed into place."""
    inputs: list[str] = []
    outputs: list[str] = []
    partials = []
    for number, video in enumerate(videos):
        target = run_dir / poster_path(video)
        partial = target.with_name(f".{target.stem}.{os.getpid()}.part.jpg")
        partials.append((partial, target))
        inputs += ["-ss", str(at_s), "-i", str(run_dir / video)]
        outputs += ["-map", f"{number}:v:0", "-frames:v", "1", "-vf", f"scale={POSTER_WIDTH_PX}:-2", "-q:v", "4",
                    str(partial)]
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *inputs, *outputs]
    try:
        subprocess.run(command, capture_output=True, timeout=FFMPEG_TIMEOUT_S * len(videos), check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("ffmpeg failed (%s); no poster for %d video(s)", exc, len(videos))
    for partial, target in partials:
        try:
            if partial.stat().st_size > 0:
                os.replace(partial, target)
        except OSError:
            pass
        partial.unlink(missing_ok=True)


def _write_atomic(target: Path, data: bytes) -> None:
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
