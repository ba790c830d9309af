"""An input that cannot be uploaded fails only the jobs that need it: the others are sent, polled and
downloaded, the run exits 1 naming the file and the server's reason, and a resume tries the upload again."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

from pipeline.run.runner import summary_text
from pipeline.report.status import run_status
from run_helpers import CLIP, check_consistent, run

PAD_BYTES = 200_000


def _bigger_clip(folder: Path) -> Path:
    """The sample clip with a `free` box appended: still a valid MP4, another sha256, PAD_BYTES larger."""
    path = folder / "big.mp4"
    path.write_bytes(CLIP.read_bytes() + struct.pack(">I", 8 + PAD_BYTES) + b"free" + bytes(PAD_BYTES))
    return path


def _manifest(folder: Path, videos: list[Path]) -> Path:
    lines = ["name: two", "inputs:", "  video:"] + [f"    - {v}" for v in videos]
    lines += ["prompts:", "  - one prompt", "  - another prompt", "sweep:", "  videoStrength: [0.5, 0.7, 1.0]",
              "seeds: {count: 2, from: 3}"]
    path = folder / "two.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_a_refused_upload_fails_only_its_jobs_and_a_resume_retries_it(tmp_path: Path,
                                                                            emulator_factory) -> None:
    """One of two videos refused (400 on creating its upload: too large): its 12 jobs fail with the server's
    message, the other 12 (more than the in-flight cap) are downloaded; a resume tries the upload again; once
    accepted, the run completes."""
    server = await emulator_factory(max_upload_bytes=CLIP.stat().st_size + PAD_BYTES // 2)
    big = _bigger_clip(tmp_path)
    manifest = _manifest(tmp_path, [CLIP, big])
    summary = await asyncio.wait_for(run(manifest, server, tmp_path / "out", max_in_flight_jobs=4), 60)
    text = summary_text(summary, resume_command="-")
    assert summary.exit_status == 1, text
    assert summary.counts["downloaded"] == 12 and summary.counts["failed"] == 12, text
    assert all("big.mp4 could not be uploaded: HTTP 400" in error and "fileSize" in error
               for _, _, error in summary.failures)
    assert server.emulator.stats()["jobs_created"] == 12
    plan = run_status(summary.run_dir).resume  # never sent, so never paid: the resume tries them again
    assert plan.submit == 12 and plan.leave_failed == 0
    summary = await asyncio.wait_for(run(manifest, server, tmp_path / "out", max_in_flight_jobs=4), 60)
    assert summary.counts["failed"] == 12 and server.emulator.stats()["responses"].get("400", 0) == 2
    server.emulator.configure(max_upload_bytes=100 * 2**20)
    summary = await asyncio.wait_for(run(manifest, server, tmp_path / "out", max_in_flight_jobs=4), 60)
    assert summary.exit_status == 0, summary_text(summary, resume_command="-")
    await check_consistent(summary.run_dir, server, expect_jobs=24)
    assert server.emulator.stats()["jobs_created"] == 24


async def test_an_upload_that_keeps_failing_does_not_stop_the_other_inputs_jobs(tmp_path: Path,
                                                                               emulator_factory) -> None:
    """Transient errors outlasting the retries on the first input's upload fail its jobs; the second input's
    jobs still run to the end."""
    server = await emulator_factory()
    big = _bigger_clip(tmp_path)
    manifest = _manifest(tmp_path, [big, CLIP])

    async def fail_first_upload() -> None:
        server.emulator.configure(fault_5xx_rate=1.0)
        while server.emulator.stats()["faults"]["5xx"] < 3:  # 1 try + max_retries=2 for the first upload
            await asyncio.sleep(0.002)
        server.emulator.configure(fault_5xx_rate=0.0)

    task = asyncio.create_task(fail_first_upload())
    # 20 requests/s: 50 ms between requests, so the knob is back to 0 before the second upload is sent
    summary = await asyncio.wait_for(run(manifest, server, tmp_path / "out", max_in_flight_jobs=4,
                                         max_retries=2, max_requests_per_s=20.0), 60)
    await task
    text = summary_text(summary, resume_command="-")
    assert summary.counts["downloaded"] == 12 and summary.counts["failed"] == 12, text
    assert all("big.mp4 could not be uploaded" in error for _, _, error in summary.failures)
