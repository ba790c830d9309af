"""The account's limits as the notes describe them, end to end against the emulator: the running-jobs cap
(429 model_run), a cooldown (429 remainingSeconds), a model outside the plan (403), a spending cap, projectId,
and originals rather than transformed deliveries."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from pipeline.ledger.replay import JOURNAL_NAME, read_events
from pipeline.run.runner import summary_text
from run_helpers import check_consistent, run, write_manifest


async def test_the_running_jobs_cap_lowers_the_in_flight_cap_instead_of_retrying(tmp_path: Path,
                                                                                 emulator_factory) -> None:
    """A cap of 3 running jobs on the account, 16 jobs, --max-in-flight 8: a few 429s at first, then the
    in-flight cap follows the server's (journaled, with why), each next job sent when one finishes; no job
    is lost or paid twice, and there is at most one 429 per job."""
    server = await emulator_factory(job_concurrency_limit=3, max_running_jobs=8, job_time_s=0.3)
    summary = await asyncio.wait_for(run(write_manifest(tmp_path, prompts=4), server, tmp_path / "out",
                                         max_in_flight_jobs=8), 60)
    assert summary.exit_status == 0, summary_text(summary, resume_command="-")
    stats = server.emulator.stats()
    refused = stats["responses"].get("429", 0)
    assert 1 <= refused <= 16 and stats["jobs_created"] == 16
    caps = [e for e in read_events(summary.run_dir / JOURNAL_NAME) if e["ev"] == "in-flight-cap"]
    assert caps and caps[-1]["cap"] == 3 and "running-jobs cap (3)" in caps[-1]["why"]
    await check_consistent(summary.run_dir, server, expect_jobs=16)


async def test_a_cooldown_is_waited_out_not_given_up(tmp_path: Path, emulator_factory, caplog) -> None:
    """A 2 s cooldown (429 with remainingSeconds, no Retry-After) mid-run: every request waits it out, the run
    says so, nothing fails, even with max_retries 1."""
    server = await emulator_factory(job_time_s=0.3)
    caplog.set_level("INFO")

    async def cool_down() -> None:
        while server.emulator.stats()["jobs_created"] < 3:
            await asyncio.sleep(0.005)
        server.emulator.configure(cooldown_s=2.0)

    task = asyncio.create_task(cool_down())
    started = time.monotonic()
    summary = await asyncio.wait_for(run(write_manifest(tmp_path, prompts=2), server, tmp_path / "out",
                                         max_retries=1), 60)
    await task
    assert summary.exit_status == 0, summary_text(summary, resume_command="-")
    assert time.monotonic() - started >= 2.0
    assert "asks for a cooldown" in caplog.text
    await check_consistent(summary.run_dir, server, expect_jobs=8)


async def test_a_model_outside_the_plan_stops_submitting_naming_the_plan(tmp_path: Path, emulator_factory) -> None:
    """403 ModelAccessRestrictedError: exit 3, the plan named, no job created, every job still pending."""
    server = await emulator_factory(required_plan="enterprise")
    summary = await asyncio.wait_for(run(write_manifest(tmp_path), server, tmp_path / "out"), 30)
    text = summary_text(summary, resume_command="-")
    assert summary.exit_status == 3 and summary.stopped == "access", text
    assert "'enterprise' plan" in text and summary.counts["pending"] == 8
    assert server.emulator.stats()["jobs_created"] == 0


async def test_a_spending_cap_stops_submitting_and_keeps_what_was_paid(tmp_path: Path, emulator_factory) -> None:
    """The key's CU cap reached after 3 jobs (20 CU each): submitting stops (exit 3, credits), the 3 paid jobs
    are downloaded, the rest stay pending for a later run."""
    server = await emulator_factory(spending_cap_cu=60.0)
    summary = await asyncio.wait_for(run(write_manifest(tmp_path), server, tmp_path / "out",
                                         max_in_flight_jobs=1), 30)
    assert summary.exit_status == 3 and summary.stopped == "credits", summary_text(summary, resume_command="-")
    assert summary.counts["downloaded"] == 3 and summary.counts["pending"] == 5


async def test_project_id_is_sent_on_every_call_and_originals_are_saved(tmp_path: Path, emulator_factory) -> None:
    """With project_id set, a key bound to that project works (a wrong one would get 403); the files saved are
    the originals the model made (the emulator's transformed deliveries differ), checked by sha256."""
    server = await emulator_factory(project_id="proj_42", transform_deliveries=True)
    summary = await asyncio.wait_for(run(write_manifest(tmp_path, prompts=1, seeds=1), server, tmp_path / "out",
                                         project_id="proj_42"), 30)
    assert summary.exit_status == 0, summary_text(summary, resume_command="-")
    await check_consistent(summary.run_dir, server, expect_jobs=2)  # sha256 of the original, as /_emulator/jobs
    other = await emulator_factory(project_id="proj_other")
    refused = await asyncio.wait_for(run(write_manifest(tmp_path, prompts=1, seeds=1, name="u"), other,
                                         tmp_path / "out", project_id="proj_42"), 30)
    assert refused.exit_status == 3 and other.emulator.stats()["jobs_created"] == 0
