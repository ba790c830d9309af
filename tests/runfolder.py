"""Synthetic run folders for the status/report/export tests: job records in results.json's shape, journals.

`job(...)` builds one record as `pipeline.ledger.results.job_record` would; `write_run(...)` writes results.json
(through the real writer, so results.csv follows) and, when asked, real MP4 files for the outputs.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.ledger.results import write_results
from pipeline.manifest.expand import filled_defaults
from pipeline.manifest.params import MODEL_ID
from pipeline.manifest.schema import builtin_schema
from pipeline.run.storage import output_name
from pipeline.spec import InputRef, job_key

SAMPLE_CLIP = Path(__file__).resolve().parent.parent / "samples" / "clip.mp4"
VIDEO_REF = {"param": "video", "kind": "file", "path": "/data/clip.mp4", "sha256": "c" * 64, "size_bytes": 10,
             "asset_id": "asset_clip"}


def job(index: int, *, prompt: str = "a neon city", seed: int = 1, swept: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None, status: str = "downloaded", batch: str = "main",
        inputs: Sequence[Mapping[str, Any]] = (VIDEO_REF,), error: str | None = None,
        error_kind: str | None = None, files: Sequence[str] | None = None) -> dict[str, Any]:
    """One job record. `swept` values are also set as parameters (unless `prompt`/`video`/`seed`)."""
    swept = dict(swept or {})
    values = {"prompt": prompt, **(params or {})}
    values.update({k: v for k, v in swept.items() if k not in ("video", "seed", "prompt")})
    full = {**filled_defaults(builtin_schema()), **{k: v for k, v in values.items() if v is not None}, "seed": seed}
    full = dict(sorted(full.items()))
    refs = tuple(InputRef.from_json(ref) for ref in inputs)
    key = job_key(MODEL_ID, full, refs)
    if files is None:
        files = [f"videos/{output_name(index, prompt, swept, seed)}"] if status == "downloaded" else []
    return {
        "key": key, "index": index, "batch": batch, "in_manifest": True, "model": MODEL_ID,
        "prompt": prompt, "seed": seed, "params": full, "swept": swept, "inputs": [dict(ref) for ref in inputs],
        "request": None, "status": status, "job_id": f"job_{index}" if status != "pending" else None,
        "server_status": {"downloaded": "success", "failed": "failure"}.get(status), "progress": None,
        "error": error, "error_kind": error_kind, "asset_ids": [f"asset_out{index}"] if files else [],
        "files": [{"asset_id": f"asset_out{index}", "path": path, "bytes": 1, "sha256": "0" * 64} for path in files],
        "attempts": {"submit": 1, "download": 1 if files else 0},
        "timings": {"intent_at": None, "submitted_at": None, "finished_at": None, "downloaded_at": None,
                    "server_duration_s": None},
    }


def make_clip(path: Path) -> Path:
    """A real, small H.264 MP4: samples/clip.mp4 when present, else one made with ffmpeg."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if SAMPLE_CLIP.is_file():
        shutil.copyfile(SAMPLE_CLIP, path)
    else:
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=size=320x180:rate=24:duration=2", "-pix_fmt", "yuv420p", "-c:v", "libx264",
                        "-movflags", "+faststart", str(path)], check=True, timeout=60)
    return path


def write_run(run_dir: Path, jobs: list[dict[str, Any]], *, name: str = "sweep",
              videos: Path | None = None) -> Path:
    """A run folder with results.json (+ results.csv); `videos`: an MP4 copied to every output path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if videos is not None:
        for record in jobs:
            for entry in record["files"]:
                target = run_dir / entry["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(videos, target)
                data = target.read_bytes()
                entry["bytes"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    write_results(run_dir, {"name": name, "model": MODEL_ID, "job_count": len(jobs)}, jobs)
    return run_dir
