"""The real process against the emulator: SIGKILL at random moments and resume, Ctrl-C, a second Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from collections import Counter
from pathlib import Path

from pipeline.emulator import EMULATOR_API_KEY, EMULATOR_API_SECRET, EmulatorServer
from pipeline.ledger.replay import JOURNAL_NAME, replay
from run_helpers import FAST, body_key, check_consistent, write_manifest


def _env(server: EmulatorServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LTX_BATCH_", "SCENARIO_"))}
    env.update({f"LTX_BATCH_{k.upper()}": str(v) for k, v in FAST.items()})
    env.update({"SCENARIO_API_KEY": EMULATOR_API_KEY, "SCENARIO_API_SECRET": EMULATOR_API_SECRET,
                "SCENARIO_API_URL": server.url})
    return env


async def _start(manifest: Path, out: Path, server: EmulatorServer, *flags: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pipeline", "run", str(manifest), "--out", str(out), "--no-report", *flags,
        env=_env(server), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def test_sigkill_at_random_moments_then_resume(tmp_path: Path, emulator_factory) -> None:
    """Killed with SIGKILL again and again, the run resumes to completion with the same command: POSTs whose
    answers a kill cut off are found on the server (or found never made), so none is paid twice."""
    server = await emulator_factory(job_time_s=0.4, job_time_spread_s=0.2, fault_5xx_rate=0.05,
                                    fault_truncate_rate=0.1, seed=11)
    manifest = write_manifest(tmp_path, prompts=10, seeds=3)  # 60 jobs, ~12 s of requests at 15/s
    out, rng, kills = tmp_path / "out", random.Random(5), 0
    while kills < 8:
        process = await _start(manifest, out, server, "--rate", "15")
        try:
            await asyncio.wait_for(process.wait(), timeout=rng.uniform(0.5, 1.5))
        except TimeoutError:
            process.kill()
            kills += 1
        await process.communicate()
        if process.returncode in (0, 1):
            break
    process = await _start(manifest, out, server)  # a plain resume: lost POSTs are reconciled with the server
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert kills >= 6
    run_dir = out / "t"
    await check_consistent(run_dir, server, expect_jobs=60)  # no job unknown, none created twice
    created = Counter(body_key(r["body"]) for r in await server.emulator.job_records())
    assert len(created) == 60 and set(created.values()) == {1}


async def test_ctrl_c_stops_cleanly_and_resume_finishes(tmp_path: Path, emulator_factory) -> None:
    """SIGINT stops submitting, exits 130 with a resume line; the same command then finishes the run."""
    server = await emulator_factory(job_time_s=0.5)
    manifest = write_manifest(tmp_path, prompts=5, seeds=2)  # 20 jobs
    process = await _start(manifest, tmp_path / "out", server, "--max-in-flight", "4", "--rate", "20")
    while server.emulator.stats()["jobs_created"] < 3:
        await asyncio.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=20)
    text = stderr.decode()
    assert process.returncode == 130, text[-2000:]
    assert "to resume: ltx-batch run" in text and "Traceback" not in text
    created_at_stop = server.emulator.stats()["jobs_created"]
    assert created_at_stop < 20
    run_dir = tmp_path / "out" / "t"
    results = json.loads((run_dir / "results.json").read_text())
    assert len(results["jobs"]) == 20
    assert all(j["status"] != "unknown" for j in results["jobs"])  # in-flight POSTs were let finish
    process = await _start(manifest, tmp_path / "out", server)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()[-2000:]
    await check_consistent(run_dir, server, expect_jobs=20)


async def test_second_ctrl_c_quits_at_once_leaving_a_valid_journal(tmp_path: Path, emulator_factory) -> None:
    """A second SIGINT quits without waiting for downloads; the journal replays and .part files don't count."""
    # 4 MB outputs sent at 2 MB/s: both downloads are certainly under way when the signals come, however
    # loaded the machine (unpaced, they could finish before the first signal is handled)
    server = await emulator_factory(job_time_s=0.2, output_pad_bytes=4_000_000, cdn_bytes_per_s=2_000_000)
    manifest = write_manifest(tmp_path, prompts=2, seeds=1)
    process = await _start(manifest, tmp_path / "out", server, "--downloaders", "4")
    while server.emulator.stats()["cdn_bytes_sent"] < 1_000_000:
        await asyncio.sleep(0.01)
    process.send_signal(signal.SIGINT)
    await asyncio.sleep(0.03)  # the graceful stop of the first one takes ~0.2 s here (downloads finish)
    process.send_signal(signal.SIGINT)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
    assert process.returncode == 130, stderr.decode()[-2000:]
    assert server.emulator.stats()["cdn_bytes_sent"] < 8_000_000  # it quit before the downloads were done
    run_dir = tmp_path / "out" / "t"
    state = replay(run_dir / JOURNAL_NAME)
    for job in state.jobs.values():
        for record in job.files.values():
            assert (run_dir / record.path).stat().st_size == record.bytes
    results = json.loads((run_dir / "results.json").read_text())
    for job in results["jobs"]:
        assert all(not f["path"].endswith(".part") for f in job["files"])
