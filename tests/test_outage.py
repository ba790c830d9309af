"""An API outage mid-run: submissions wait (a circuit breaker) until the API answers again, polls and
downloads ride it out, every wait says why, and the run finishes in the same session."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from pipeline.ledger.replay import JOURNAL_NAME
from pipeline.run.runner import summary_text
from pipeline.report.status import run_status
from pipeline.report.status_view import status_text
from emulator_helpers import AUTH, upload_file
from proxy import FlakyProxy
from run_helpers import run, write_manifest

OUTAGE_S = float(os.environ.get("LTX_OUTAGE_S", "3"))  # the 40 s: LTX_OUTAGE_S=40 pytest tests/test_outage.py


@pytest.fixture
async def proxy(emulator_factory) -> AsyncIterator[tuple[FlakyProxy, object]]:
    server = await emulator_factory(job_time_s=0.5, job_time_spread_s=0.1)
    flaky = await FlakyProxy(server.port).start()
    try:
        yield flaky, server
    finally:
        await flaky.close()


class Url:
    """Stands in for an EmulatorServer in run_helpers.run: the proxy's URL."""

    def __init__(self, url: str) -> None:
        self.url = url


async def test_an_outage_holds_submissions_and_the_run_finishes_in_the_same_session(tmp_path: Path, proxy,
                                                                                     caplog) -> None:
    """Connections reset for 3 s (LTX_OUTAGE_S) while 24 jobs are being submitted: the POSTs cut off are reconciled with the
    server, the others wait for the API and are sent after; all 24 downloaded in the same run, none paid twice."""
    flaky, server = proxy
    caplog.set_level("INFO")
    manifest = write_manifest(tmp_path, prompts=6)  # 24 jobs

    seen: list[str] = []

    async def outage() -> float:
        while server.emulator.stats()["jobs_created"] < 4:
            await asyncio.sleep(0.005)
        flaky.down = True
        await asyncio.sleep(OUTAGE_S)
        seen.append(status_text(run_status(tmp_path / "out" / "t")))  # what `status` shows from another terminal
        flaky.down = False
        return time.monotonic()

    task = asyncio.create_task(outage())
    summary = await asyncio.wait_for(run(manifest, Url(flaky.url), tmp_path / "out", max_requests_per_s=20.0,
                                         max_in_flight_jobs=8), 90 + OUTAGE_S)
    await task
    text = summary_text(summary, resume_command="-")
    counts = summary.counts
    assert flaky.resets > 0
    assert counts["failed"] == 0 and counts["pending"] == 0 and counts["submitted"] == 0, text
    # the POSTs the outage cut off (at most one per submit worker) were reconciled with the server's listing
    # in the same run: adopted when the server had made the job, sent again when it had not
    assert counts["unknown"] == 0 and counts["downloaded"] == 24, text
    assert server.emulator.stats()["jobs_created"] == 24  # none paid twice
    assert summary.exit_status == 0, text
    assert "the API cannot be reached" in caplog.text and "answers again" in caplog.text
    assert "reconciled" in caplog.text
    assert "waiting: the API cannot be reached" in seen[0] and "new submissions wait" in seen[0]
    waits = [e.get("waits") for e in _events(summary.run_dir) if e.get("ev") == "requests"]
    assert any(w and "cannot be reached" in w[0] for w in waits), "the outage was never noted for status"


def _events(run_dir: Path) -> list[dict]:
    from pipeline.ledger.replay import read_events

    return list(read_events(run_dir / JOURNAL_NAME))


async def test_a_dry_run_cut_off_by_an_outage_waits_for_the_api_instead_of_stopping(tmp_path: Path, proxy) -> None:
    """--max-cost: when the gate's dry run cannot reach the API, it waits for it as a POST would (it used to stop
    submitting: "could not be priced"); the run prices, sends and downloads every job in the same session."""
    flaky, server = proxy
    async with aiohttp.ClientSession(headers=AUTH) as http:
        asset_id = await upload_file(http, server)  # an input already uploaded: the dry run is the first API call
    manifest = tmp_path / "t.yaml"
    manifest.write_text(f"name: t\ninputs:\n  video: {asset_id}\nprompts: [a, b]\n"
                        "sweep:\n  videoStrength: [0.5, 1.0]\nseeds: [1, 2]\n")
    flaky.down = True

    async def heal() -> None:
        while flaky.resets < 8:  # past the client's own retries (max_retries 2 below): the breaker is down
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.3)
        flaky.down = False

    task = asyncio.create_task(heal())
    summary = await asyncio.wait_for(run(manifest, Url(flaky.url), tmp_path / "out", max_cost_cu=100_000,
                                         max_retries=2, max_requests_per_s=20.0), 60)
    await task
    text = summary_text(summary, resume_command="-")
    assert summary.exit_status == 0 and summary.counts["downloaded"] == 8, text
    assert server.emulator.stats()["dry_runs"] >= 1 and server.emulator.stats()["jobs_created"] == 8
