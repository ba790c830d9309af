"""Each fault alone at a high rate: the documented exit status, every job accounted for, nothing corrupt on disk,
and a resume once the fault is gone that completes without paying for any job twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    API_KEY,
    API_SECRET,
    CREDENTIALS,
    assert_no_secrets,
    check_accounting,
    check_complete,
    poll_modes,
    record_figures,
    scaled,
)

from pipeline.emulator import EmulatorServer
from pipeline.ledger.replay import JOURNAL_NAME
from pipeline.run.runner import RunOptions, RunSummary, summary_text
from run_helpers import audit_creations, run, write_manifest

PROMPTS = scaled(4, 25)  # x 2 strengths x 2 seeds: 16 jobs (full: 100)
JOBS = PROMPTS * 4
RUN_TIMEOUT_S = scaled(40, 600)  # every run is bounded: one that never ends fails the test


async def revoke_after(server: EmulatorServer, jobs_created: int) -> None:
    """Revoke the credentials once `jobs_created` jobs exist (401 from then on)."""
    while server.emulator.stats()["jobs_created"] < jobs_created:
        await asyncio.sleep(0.005)
    server.emulator.configure(revoke_auth=True)


@dataclass(frozen=True, slots=True)
class Fault:
    """One row of the matrix: the fault, what the first run must end with, and how the resume is asked for."""

    name: str
    knobs: dict[str, Any]
    exit_status: int | None  # the first run's; None where the draws decide (then the documented rule is checked)
    heal: dict[str, Any]  # knob changes that remove the fault before the resume
    settings: dict[str, Any] = field(default_factory=dict)
    resume: RunOptions = RunOptions(progress="off")
    during: Callable[[EmulatorServer], Awaitable[None]] | None = None
    counts: dict[str, int] = field(default_factory=dict)  # exact counts the first run must end with
    paid_twice_possible: bool = False  # only a POST whose job was created and whose answer was lost


MATRIX = [
    # 21 attempts per call: 50% 5xx can not exhaust them by chance (0.5**21)
    Fault("5xx-50%", {"fault_5xx_rate": 0.5}, 0, {"fault_5xx_rate": 0.0}, settings={"max_retries": 20}),
    # a reset generate POST is reconciled in the same run: the emulator resets before creating the job, so the
    # listing shows none and it is sent again (a plain resume, no flag; never paid twice)
    Fault("reset-30%", {"fault_reset_rate": 0.3}, None, {"fault_reset_rate": 0.0}),
    Fault("truncate-50%", {"fault_truncate_rate": 0.5}, 0, {"fault_truncate_rate": 0.0}),
    Fault("job-failure-20%", {"fault_job_failure_rate": 0.2}, 1, {"fault_job_failure_rate": 0.0},
          resume=RunOptions(progress="off", retry_failed=True)),
    # a lost answer (the job was made) is reconciled in the same run: the job is adopted, never paid twice
    Fault("lost-response-30%", {"fault_lost_response_rate": 0.3}, 0, {"fault_lost_response_rate": 0.0},
          counts={"unknown": 0}),
    Fault("bad-json-30%", {"fault_bad_json_rate": 0.3}, None, {"fault_bad_json_rate": 0.0}),
    Fault("unknown-status-100%", {"fault_unknown_status_rate": 1.0}, 0, {"fault_unknown_status_rate": 0.0}),
    # the client resolves each URL just before its GET: a 1 s lifetime never bites, even for 8 MB outputs
    Fault("url-ttl-1s-8MB", {"url_ttl_s": 1.0, "output_pad_bytes": 8_000_000}, 0, {"url_ttl_s": 600.0},
          settings={"download_workers": 4}),
    # every URL expired on arrival: each download gives up (a paid render, kept), the resume fetches it
    Fault("url-expired", {"url_ttl_s": 0.0}, 1, {"url_ttl_s": 600.0}, counts={"failed": JOBS}),
    # the client at 200 requests/s against an account allowing 40/s, with only 3 retries per call: 429s are
    # waited out, not counted as failed attempts. Full: 10/s, no burst, Retry-After in whole seconds (the
    # sending rate comes down in ~9 cuts: 11 429s in all, where resuming at 200/s after each pause cost 1,599)
    Fault("429-storm", scaled({"rate_limit_per_s": 40.0, "rate_limit_burst": 2, "send_retry_after": False},
                              {"rate_limit_per_s": 10.0, "rate_limit_burst": 1}), 0, {"rate_limit_per_s": None},
          settings={"max_requests_per_s": 200.0, "max_retries": scaled(3, 12)}),
    Fault("credits-out", {"credits_jobs": 5}, 3, {"credits_jobs": None}, settings={"max_in_flight_jobs": 2},
          counts={"downloaded": 5, "pending": JOBS - 5}),
    Fault("auth-revoked", {"job_time_s": 0.5}, 3, {"revoke_auth": False}, during=lambda s: revoke_after(s, 4)),
]


def documented_exit(summary: RunSummary) -> int:
    """README "Exit status": 0 all downloaded; 1 some failed/unknown/unfinished; 3 stopped by the API (auth,
    credits, model access)."""
    if summary.stopped in ("auth", "credits", "access"):
        return 3
    return 0 if summary.counts["downloaded"] == summary.total else 1


@pytest.mark.timeout(scaled(60, 900))
@pytest.mark.parametrize("fault", MATRIX, ids=lambda f: f.name)
async def test_fault_alone_at_a_high_rate(tmp_path: Path, emulator_factory, caplog, fault: Fault) -> None:
    """The fault ends the run with its documented exit status and a full account; the resume completes, paying once."""
    caplog.set_level("DEBUG")
    server = await emulator_factory(api_key=API_KEY, api_secret=API_SECRET, seed=17, **fault.knobs)
    manifest = write_manifest(tmp_path, prompts=PROMPTS, name="fault")
    out, started = tmp_path / "out", time.monotonic()
    during = asyncio.create_task(fault.during(server)) if fault.during else None
    first = await asyncio.wait_for(run(manifest, server, out, credentials=CREDENTIALS, **fault.settings), RUN_TIMEOUT_S)
    if during is not None:
        during.cancel()
    first_s = time.monotonic() - started
    stats = server.emulator.stats()

    assert first.exit_status == documented_exit(first)
    if fault.exit_status is not None:
        assert first.exit_status == fault.exit_status, summary_text(first, resume_command="-")
    for state, count in fault.counts.items():
        assert first.counts[state] == count, first.counts
    check_accounting(first.run_dir)  # every job with a state, counts add up, files match their sha256

    server.emulator.configure(**fault.heal)
    resumed = await asyncio.wait_for(
        run(manifest, server, out, credentials=CREDENTIALS, options=fault.resume, **fault.settings), RUN_TIMEOUT_S)
    assert resumed.exit_status == 0, summary_text(resumed, resume_command="-")
    await check_complete(first.run_dir, server, expect_jobs=JOBS)
    audit = audit_creations(first.run_dir / JOURNAL_NAME, await server.emulator.job_records())
    assert audit["bodies"] == JOBS
    if not fault.paid_twice_possible:
        assert audit["paid_twice"] == 0

    texts = {"log": caplog.text, "summary (first)": summary_text(first, resume_command="-"),
             "summary (resume)": summary_text(resumed, resume_command="-")}
    assert_no_secrets(trees=[out], texts=texts)
    record_figures(f"fault {fault.name}", exit_status=first.exit_status, resume_exit_status=resumed.exit_status,
                   counts={k: v for k, v in first.counts.items() if v}, stopped=first.stopped,
                   wall_s=round(first_s, 2), api_requests_per_job=round(first.api_requests / JOBS, 2),
                   throttled_429=first.throttled, faults={k: v for k, v in stats["faults"].items() if v},
                   cdn_denied=stats["cdn_denied"], emulator_requests=sum(stats["requests"].values()),
                   created=audit["created"], paid_twice=audit["paid_twice"], ever_unknown=audit["ever_unknown"],
                   poll_modes=poll_modes(first.run_dir))
