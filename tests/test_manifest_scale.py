"""A 100,000-job manifest validates, counts and plans correctly (timings live in tests/bench/bench_plan.py)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from manifest_helpers import load_text

from pipeline.cli.main import main

BIG = """
name: big
inputs: {video: clip.mp4}
prompts: [a, b, c, d, e]
sweep:
  videoStrength: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
  modality: [none, canny, depth, pose, detailer]
  guidanceScale: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
  cameraMotion: [none, static, dolly_in, dolly_out]
seeds: {count: 10, from: 0}
"""


def test_hundred_thousand_jobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """100,000 jobs: exact count, lazy generator, distinct keys, cheap slices, and `plan` exits 0."""
    manifest = load_text(tmp_path, BIG)
    assert manifest.job_count == 100_000 and manifest.batch_counts() == {"main": 100_000}
    jobs = manifest.jobs()
    assert inspect.isgenerator(jobs)
    keys = {job.key for job in jobs}
    assert len(keys) == 100_000
    last = list(manifest.jobs(99_998))
    assert [job.index for job in last] == [99_998, 99_999]
    assert last[-1].swept == {"prompt": 4, "videoStrength": 1, "modality": "detailer", "guidanceScale": 10,
                              "cameraMotion": "dolly_out", "seed": 9}
    assert main(["plan", str(tmp_path / "m.yaml"), "--limit", "4"]) == 0
    out = capsys.readouterr().out
    assert "jobs      100,000  (main: 100,000)" in out and "99,996 more jobs" in out
