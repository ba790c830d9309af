"""Following the job listing (poll_mode feed/auto) end to end over the emulator: what it costs, and that the bad
cases the notes leave open (a change that does not move updatedAt, rows without results, another order,
short pages, a listing refused) still end with every job downloaded, the fallback said and recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.ledger.replay import JOURNAL_NAME, read_events
from pipeline.report.status import run_status
from pipeline.report.status_view import status_text
from run_helpers import check_consistent, run, write_manifest

JOBS = 16


def routes(server: Any) -> dict[str, int]:
    return server.emulator.stats()["requests"]


def poll_modes(run_dir: Path) -> list[dict[str, Any]]:
    return [e for e in read_events(run_dir / JOURNAL_NAME) if e.get("ev") == "poll-mode"]


async def downloaded_all(tmp_path: Path, server: Any, **settings: Any) -> dict[str, Any]:
    """Run 16 jobs; every one downloaded once, identical to what the emulator made; the results.json run record."""
    summary = await run(write_manifest(tmp_path, prompts=4), server, tmp_path / "out", **settings)
    assert summary.exit_status == 0 and summary.counts["downloaded"] == JOBS
    results = await check_consistent(summary.run_dir, server, expect_jobs=JOBS)
    assert server.emulator.stats()["jobs_created"] == JOBS
    return {**results["run"], "run_dir": summary.run_dir}


async def test_the_feed_watches_every_job_with_the_listing_and_resolves_urls_in_bulk(tmp_path: Path,
                                                                                      emulator_factory) -> None:
    """By default (auto) finished jobs are seen in the job listing, not polled one by one, and their download
    URLs come from get-bulk: about one request per job besides its POST."""
    server = await emulator_factory()
    record = await downloaded_all(tmp_path, server)
    seen = routes(server)
    assert record["poll_mode"] == "feed" and record["poll_mode_why"] is None
    assert seen["GET /v1/jobs"] >= 1 and seen.get("GET /v1/jobs/{jobId}", 0) < JOBS // 2
    assert seen["POST /v1/assets/get-bulk"] < JOBS and seen.get("GET /v1/assets/{assetId}", 0) == 0
    assert [e["mode"] for e in poll_modes(record["run_dir"])] == ["feed"]


async def test_per_job_mode_never_lists(tmp_path: Path, emulator_factory) -> None:
    """poll_mode per-job polls each job on its own, as before; the listing is never asked."""
    server = await emulator_factory()
    record = await downloaded_all(tmp_path, server, poll_mode="per-job")
    seen = routes(server)
    assert record["poll_mode"] == "per-job" and "GET /v1/jobs" not in seen
    assert seen["GET /v1/jobs/{jobId}"] >= JOBS


async def test_changes_that_do_not_move_updated_at_make_auto_fall_back(tmp_path: Path, emulator_factory) -> None:
    """Jobs whose updatedAt never moves are never listed finished: their own polls find them done, the run
    falls back to polling each job, says why, and still downloads every job."""
    server = await emulator_factory(fault_stale_update_rate=1.0)
    record = await downloaded_all(tmp_path, server)
    assert record["poll_mode"] == "per-job" and "did not show 3 finished job(s)" in record["poll_mode_why"]
    modes = poll_modes(record["run_dir"])
    assert [e["mode"] for e in modes] == ["feed", "per-job"] and modes[-1]["missed"] == 3
    assert "polling: each job on its own in the last session: the job listing did not show" in status_text(
        run_status(record["run_dir"]))


async def test_feed_mode_never_falls_back_for_missed_jobs_but_polls_them(tmp_path: Path, emulator_factory) -> None:
    """poll_mode feed keeps the listing whatever it misses: the jobs it never shows finished are polled on
    their own once silent too long, and downloaded."""
    server = await emulator_factory(fault_stale_update_rate=1.0)
    record = await downloaded_all(tmp_path, server, poll_mode="feed")
    assert record["poll_mode"] == "feed" and routes(server)["GET /v1/jobs/{jobId}"] > 0


async def test_some_changes_that_do_not_move_updated_at(tmp_path: Path, emulator_factory) -> None:
    """A quarter of the jobs never listed finished: every job is still downloaded, whichever way it is found."""
    server = await emulator_factory(fault_stale_update_rate=0.25)
    await downloaded_all(tmp_path, server)


async def test_rows_without_results_are_fetched_by_id(tmp_path: Path, emulator_factory) -> None:
    """Listed rows without assetIds: each finished job is fetched by id (one request), the feed is kept."""
    server = await emulator_factory(list_rows_with_results=False)
    record = await downloaded_all(tmp_path, server)
    assert record["poll_mode"] == "feed" and routes(server)["GET /v1/jobs/{jobId}"] > 0


@pytest.mark.parametrize("order", ["newest", "oldest"])
async def test_either_order_and_short_pages(tmp_path: Path, emulator_factory, order: str) -> None:
    """Rows newest or oldest first, in pages that hold fewer rows than asked while more follow (scenario-sdk
    says a page may): every page is read, every job seen finished in the listing."""
    server = await emulator_factory(jobs_list_order=order, list_short_pages=True)
    record = await downloaded_all(tmp_path, server, max_in_flight_jobs=JOBS)
    assert record["poll_mode"] == "feed" and routes(server).get("GET /v1/jobs/{jobId}", 0) < JOBS // 2


async def test_a_refused_listing_falls_back_at_once(tmp_path: Path, emulator_factory) -> None:
    """A key that may not list jobs (403): the run polls each job on its own from the first refusal, and says
    why; credentials are not taken as refused."""
    server = await emulator_factory(list_jobs_refused=403)
    record = await downloaded_all(tmp_path, server, poll_mode="feed")
    assert record["poll_mode"] == "per-job" and "refused the job listing" in record["poll_mode_why"]
    assert routes(server)["GET /v1/jobs"] == 1


async def test_expired_bulk_urls_are_resolved_one_by_one(tmp_path: Path, emulator_factory) -> None:
    """URLs from get-bulk that have expired when downloaded (403) are resolved again asset by asset."""
    server = await emulator_factory(url_ttl_s=0.0)
    summary = await run(write_manifest(tmp_path, prompts=1, seeds=1), server, tmp_path / "out", max_retries=2)
    assert summary.counts["failed"] == 2  # every URL expires at once: each asset tried on its own, then given up
    seen = routes(server)
    assert seen["POST /v1/assets/get-bulk"] >= 1 and seen["GET /v1/assets/{assetId}"] >= 2 * 2
    results = json.loads((summary.run_dir / "results.json").read_text())
    assert all("403" in job["error"] for job in results["jobs"])


async def test_lost_posts_are_found_through_short_and_empty_pages(tmp_path: Path, emulator_factory) -> None:
    """Reconciling lost POSTs follows nextPaginationToken through an empty first page (scenario-sdk: a page may
    hold none while more follow): the jobs are adopted, never sent twice."""
    server = await emulator_factory(fault_lost_response_rate=1.0, list_short_pages=True)
    summary = await run(write_manifest(tmp_path, prompts=1, seeds=2), server, tmp_path / "out")
    assert summary.exit_status == 0 and summary.counts["downloaded"] == 4 and not summary.unknown
    assert server.emulator.stats()["jobs_created"] == 4
    await check_consistent(summary.run_dir, server, expect_jobs=4)


async def test_jobs_of_an_earlier_session_are_polled_at_once_and_prove_nothing(tmp_path: Path,
                                                                              emulator_factory) -> None:
    """A resumed run polls the jobs an earlier session sent at once (they may have ended before its first
    listing); finding them done is no sign that the listing missed them: the run keeps the listing."""
    server = await emulator_factory(job_time_s=0.5, job_time_spread_s=0, fault_stale_update_rate=1.0)
    manifest = write_manifest(tmp_path, prompts=4)
    first = await run(manifest, server, tmp_path / "out", job_timeout_s=0.1)  # every job left submitted
    assert first.counts["submitted"] == JOBS
    server.emulator.configure(fault_stale_update_rate=0.0)
    summary = await run(manifest, server, tmp_path / "out")
    assert summary.exit_status == 0 and summary.counts["downloaded"] == JOBS
    assert routes(server)["GET /v1/jobs/{jobId}"] >= JOBS  # each polled once on resuming
    record = json.loads((summary.run_dir / "results.json").read_text())["run"]
    assert record["poll_mode"] == "feed" and record["poll_mode_why"] is None
    await check_consistent(summary.run_dir, server, expect_jobs=JOBS)
