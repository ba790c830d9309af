"""The real process against the emulator with every fault on, SIGKILLed at random moments until the run completes."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from helpers import (
    API_KEY,
    API_SECRET,
    FULL,
    assert_no_secrets,
    assert_no_traceback,
    check_complete,
    cli_env,
    poll_modes,
    record_figures,
    run_or_kill,
    scaled,
)

from pipeline.ledger.replay import JOURNAL_NAME, replay
from run_helpers import audit_creations, write_manifest

JOBS = scaled(60, 300)
KILLS = scaled(6, 20)
CLIENT_RATE = 40.0
CRASH_KNOBS = {
    "job_time_s": 0.4, "job_time_spread_s": 0.2, "max_running_jobs": 8,
    "fault_5xx_rate": 0.05, "fault_reset_rate": 0.03, "fault_truncate_rate": 0.1,
    "fault_job_failure_rate": 0.05, "fault_lost_response_rate": 0.03, "fault_bad_json_rate": 0.03,
    "fault_unknown_status_rate": 0.2, "url_ttl_s": 1.0,
    "rate_limit_per_s": 30.0, "rate_limit_burst": 3,  # below the client's --rate: 429s happen
}
"""Every fault knob at a moderate rate; credits unlimited."""
SESSION_FLAGS = [(), (), ("--retry-failed",)]  # lost POSTs are reconciled with the server: no --resubmit-unknown


@pytest.mark.timeout(scaled(150, 1200))
async def test_sigkill_crash_loop_with_every_fault(tmp_path: Path, emulator_factory) -> None:
    """SIGKILLed again and again under every fault, the run completes with plain resumes (lost POSTs reconciled
    with the server, never resent on a guess): files verified, no job paid twice."""
    started = time.monotonic()
    server = await emulator_factory(api_key=API_KEY, api_secret=API_SECRET, seed=61, **CRASH_KNOBS)
    manifest = write_manifest(tmp_path, prompts=JOBS // 4, seeds=2, name="crash")
    out, env, rng = tmp_path / "out", cli_env(server.url), random.Random(scaled(7, 8))
    command = ("run", str(manifest), "--out", str(out), "--rate", str(CLIENT_RATE))
    outputs: dict[str, bytes] = {}
    kills = sessions = 0
    while sessions < 8 * KILLS + 10:
        # killed at random moments, often, until it has been killed KILLS times; then less often, each session
        # retrying failed jobs (faults stay on), until one completes before its kill comes
        finishing = kills >= KILLS
        flags = ("--retry-failed",) if finishing else rng.choice(SESSION_FLAGS)
        kill_after_s = rng.uniform(2.0, 6.0) if finishing else rng.uniform(0.4, 2.0)
        session = await run_or_kill(*command, *flags, *(() if finishing else ("--no-report",)), env=env,
                                    cwd=tmp_path, kill_after_s=kill_after_s)
        sessions += 1
        outputs[f"session {sessions}"] = session.output
        kills += session.killed
        assert session.killed or session.returncode in (0, 1), session.output.decode(errors="replace")[-3000:]
        if not session.killed and session.returncode == 0:
            break
    assert not session.killed and session.returncode == 0, f"not complete after {sessions} sessions"
    assert kills >= KILLS, f"the run completed after {kills} kills"

    run_dir = out / "crash"
    await check_complete(run_dir, server, expect_jobs=JOBS)
    records = await server.emulator.job_records()
    audit = audit_creations(run_dir / JOURNAL_NAME, records)
    assert audit["bodies"] == JOBS
    assert audit["paid_twice"] == 0, audit  # every lost POST was found on the server or found never made
    for where, text in outputs.items():
        assert_no_traceback(text.decode(errors="replace"), where)
    scanned = assert_no_secrets(trees=[out], texts=outputs)
    assert (run_dir / "report.html").is_file() and (run_dir / "results.csv").is_file()
    stats = server.emulator.stats()
    assert stats["rate_limited"] > 0 and sum(stats["faults"].values()) > 0
    record_figures("crash-loop", jobs=JOBS, kills=kills, sessions=sessions,
                   wall_s=round(time.monotonic() - started, 1), ever_unknown=audit["ever_unknown"],
                   paid_twice=audit["paid_twice"], created=audit["created"], resets=audit["resets"],
                   api_requests=replay(run_dir / JOURNAL_NAME).api_requests,
                   emulator_requests=sum(stats["requests"].values()), throttled_429=stats["rate_limited"],
                   faults=stats["faults"], cdn_denied=stats["cdn_denied"], files_scanned=scanned, full=FULL,
                   poll_modes=poll_modes(run_dir))
