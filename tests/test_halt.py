"""A run that halts (credentials refused, the disk unwritable, Ctrl-C) ends in bounded time whatever the
in-flight cap, sends no new request, and leaves every job it never sent pending, not unknown."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

from pipeline.ledger.replay import JOURNAL_NAME, read_events, replay
from pipeline.run.runner import RunOptions, summary_text
from run_helpers import check_consistent, run, write_manifest
from test_crash import _start

GENERATE = "POST /v1/generate/custom/{modelId}"


async def _when(condition, *, timeout_s: float = 20.0) -> None:
    """Wait until `condition()` holds (polled every 5 ms)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.005)


async def test_credentials_revoked_past_the_in_flight_cap_end_the_run(tmp_path: Path, emulator_factory) -> None:
    """32 jobs under a cap of 2, 401 after 2 jobs: the run stops (exit 3) in bounded time; a resume finishes."""
    server = await emulator_factory(job_time_s=0.5)
    manifest = write_manifest(tmp_path, prompts=8)  # 8 prompts x 2 strengths x 2 seeds = 32 jobs

    async def revoke() -> None:
        await _when(lambda: server.emulator.stats()["jobs_created"] >= 2)
        server.emulator.configure(revoke_auth=True)

    revoker = asyncio.create_task(revoke())
    started = time.monotonic()
    summary = await asyncio.wait_for(run(manifest, server, tmp_path / "out", max_in_flight_jobs=2,
                                         shutdown_grace_s=30.0), 20)
    await revoker
    assert summary.exit_status == 3 and summary.stopped == "auth"
    assert time.monotonic() - started < 10  # ended by itself, well before the 30 s grace time
    assert summary.counts["unknown"] == 0 and summary.counts["pending"] >= 28
    server.emulator.configure(revoke_auth=False)
    summary = await asyncio.wait_for(run(manifest, server, tmp_path / "out", max_in_flight_jobs=2), 60)
    assert summary.exit_status == 0
    await check_consistent(summary.run_dir, server, expect_jobs=32)


async def test_unwritable_outputs_past_the_in_flight_cap_end_the_run(tmp_path: Path, emulator_factory) -> None:
    """Outputs that cannot be written (a file where the videos folder goes) stop the run (exit 1, storage) in
    bounded time under a cap of 4 with 16 jobs; nothing is lost and the resume finishes once it is fixed."""
    server = await emulator_factory(job_time_s=0.3)
    manifest = write_manifest(tmp_path, prompts=4)  # 16 jobs
    run_dir = tmp_path / "out" / "t"
    run_dir.mkdir(parents=True)
    (run_dir / "videos").write_text("not a folder")
    summary = await asyncio.wait_for(run(manifest, server, tmp_path / "out", max_in_flight_jobs=4,
                                         shutdown_grace_s=30.0), 20)
    assert summary.exit_status == 1 and summary.stopped == "storage"
    assert "videos" in (summary.message or "")
    state = replay(run_dir / JOURNAL_NAME)
    assert state.counts()["unknown"] == 0
    assert server.emulator.stats()["jobs_created"] == state.counts()["submitted"] + state.counts()["succeeded"]
    (run_dir / "videos").unlink()
    summary = await asyncio.wait_for(run(manifest, server, tmp_path / "out", max_in_flight_jobs=4), 60)
    assert summary.exit_status == 0, summary_text(summary, resume_command="-")
    await check_consistent(summary.run_dir, server, expect_jobs=16)


async def test_ctrl_c_stops_post_retries_and_leaves_refused_jobs_pending(tmp_path: Path, emulator_factory) -> None:
    """After the first Ctrl-C a POST retrying 5xx sends no new attempt; its job is pending, not unknown, and the
    run ends at once rather than at the grace time."""
    server = await emulator_factory(job_time_s=0.3)
    manifest = write_manifest(tmp_path, prompts=4)  # 16 jobs
    process = await _start(manifest, tmp_path / "out", server, "--max-in-flight", "4")
    await _when(lambda: server.emulator.stats()["jobs_created"] >= 2)
    # every API request now fails with 5xx: the submit workers back off (0.02 s doubling to 0.2 s), retrying
    server.emulator.configure(fault_5xx_rate=1.0)
    await _when(lambda: server.emulator.stats()["faults"]["5xx"] >= 8)
    process.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 130, stderr.decode()[-2000:]
    assert time.monotonic() - signalled < 5  # LTX_BATCH_SHUTDOWN_GRACE_S is 2 in FAST, but nothing waited for it
    attempts_after = server.emulator.stats()["requests"].get(GENERATE, 0)
    await asyncio.sleep(0.3)
    assert server.emulator.stats()["requests"].get(GENERATE, 0) == attempts_after  # nothing more sent
    run_dir = tmp_path / "out" / "t"
    results = json.loads((run_dir / "results.json").read_text())
    assert not [j for j in results["jobs"] if j["status"] == "unknown"]
    events = list(read_events(run_dir / JOURNAL_NAME))
    assert any(e["ev"] == "not-sent" and "stopping" in e.get("error", "") for e in events)
    server.emulator.configure(fault_5xx_rate=0.0)
    process = await _start(manifest, tmp_path / "out", server)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()[-2000:]
    await check_consistent(run_dir, server, expect_jobs=16)


async def test_ctrl_c_during_a_long_retry_after_leaves_waiting_posts_pending(tmp_path: Path,
                                                                            emulator_factory) -> None:
    """POSTs waiting out a long Retry-After when Ctrl-C comes are not sent, not cut off by the grace time, and
    not left unknown: the run ends at once."""
    server = await emulator_factory(job_time_s=0.3)
    manifest = write_manifest(tmp_path, prompts=4)  # 16 jobs
    process = await _start(manifest, tmp_path / "out", server, "--max-in-flight", "8")
    await _when(lambda: server.emulator.stats()["jobs_created"] >= 2)
    server.emulator.configure(rate_limit_per_s=0.01, rate_limit_burst=1)  # 429 with Retry-After: 100 s
    await _when(lambda: server.emulator.stats()["rate_limited"] >= 1)
    await asyncio.sleep(0.2)  # the other submit workers queue behind the pause with their intents journaled
    process.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 130, stderr.decode()[-2000:]
    assert time.monotonic() - signalled < 1.5  # the grace time (2 s here) did not have to cut anything off
    results = json.loads((tmp_path / "out" / "t" / "results.json").read_text())
    assert not [j for j in results["jobs"] if j["status"] == "unknown"]


async def test_a_404_on_a_poll_leaves_the_job_submitted_never_resent(tmp_path: Path, emulator_factory) -> None:
    """A job id the server answers 404 for stays submitted (gave up, said so), and --retry-failed never resends it."""
    first = await emulator_factory(job_time_s=30.0)
    manifest = write_manifest(tmp_path, prompts=1)  # 4 jobs
    summary = await run(manifest, first, tmp_path / "out", job_timeout_s=0.3)
    assert summary.counts["submitted"] == 4
    # the same account seen through a server that does not know these jobs (as a key of another project would)
    other = await emulator_factory(job_time_s=0.2)
    summary = await asyncio.wait_for(run(manifest, other, tmp_path / "out",
                                         options=RunOptions(progress="off", retry_failed=True)), 30)
    assert other.emulator.stats()["jobs_created"] == 0
    assert summary.counts["submitted"] == 4 and summary.counts["failed"] == 0
    assert summary.exit_status == 1 and len(summary.not_found) == 4
    text = summary_text(summary, resume_command="ltx-batch run t.yaml")
    assert "answered 404 (not found)" in text and "never resent" in text
    state = replay(summary.run_dir / JOURNAL_NAME)
    assert all(j.polling_gave_up and "404" in (j.error or "") for j in state.jobs.values())
    polls_before = first.emulator.stats()["requests"].get("GET /v1/jobs/{jobId}", 0)
    summary = await run(manifest, first, tmp_path / "out", job_timeout_s=0.3,
                        options=RunOptions(progress="off", retry_failed=True))  # the next run polls them again
    assert first.emulator.stats()["requests"].get("GET /v1/jobs/{jobId}", 0) >= polls_before + 4
    assert first.emulator.stats()["jobs_created"] == 4 and summary.counts["submitted"] == 4
    assert not summary.not_found and len(summary.stalled) == 4


async def test_a_submit_cancelled_before_its_post_left_records_the_job_pending(tmp_path: Path, emulator) -> None:
    """A submit worker cancelled (second Ctrl-C) while its POST waits for the request budget leaves the job
    pending, not unknown: the journal says it was never sent."""
    import aiohttp

    from pipeline.api.client import ApiClient
    from pipeline.api.budget import RequestBudget
    from pipeline.run.context import InFlight, RunContext, StopFlags
    from pipeline.ledger.journal import Journal
    from pipeline.manifest.load import load_manifest
    from pipeline.run.inputs import InputAssets
    from pipeline.run.submit import submit
    from run_helpers import CREDENTIALS, settings_for

    manifest = load_manifest(write_manifest(tmp_path, prompts=1, seeds=1))
    spec = next(iter(manifest.jobs()))
    settings = settings_for(emulator, tmp_path)
    journal = Journal(tmp_path / "run" / JOURNAL_NAME)
    try:
        async with aiohttp.ClientSession() as session:
            budget = RequestBudget(100.0)
            api = ApiClient(session, settings, CREDENTIALS, budget)
            ctx = RunContext(settings, journal, api, session, tmp_path / "run", InFlight(4), StopFlags())
            inputs = InputAssets(ctx)
            await inputs.upload_all(spec.inputs)  # uploaded in this session: not checked again
            to_submit: asyncio.Queue = asyncio.Queue()
            await to_submit.put(spec)
            budget.pause(100.0)  # a 429 cooldown: the POST waits at the turnstile
            worker = asyncio.create_task(submit(ctx, to_submit, asyncio.Queue(), inputs))
            await _when(lambda: journal.state.job(spec.key).state == "unknown")
            worker.cancel()
            try:
                await worker
            except asyncio.CancelledError:
                pass
        assert journal.state.job(spec.key).state == "pending"
        assert replay(tmp_path / "run" / JOURNAL_NAME).jobs[spec.key].state == "pending"
        assert emulator.emulator.stats()["requests"].get(GENERATE, 0) == 0
    finally:
        journal.close()
