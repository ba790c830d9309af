"""End-to-end tests of `run` against the emulator over loopback: the flow, faults, resume and safety."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from pipeline.config import Credentials
from pipeline.ledger.replay import JOURNAL_NAME, read_events, replay
from pipeline.run.outcome import summary_text
from pipeline.report.status import run_status
from pipeline.report.status_view import status_text
from pipeline.run.runner import RunOptions
from run_helpers import check_consistent, run, write_manifest


async def test_demo_like_run_downloads_every_job(tmp_path: Path, emulator_factory) -> None:
    """A clean run downloads every job once, with files identical to what the emulator served."""
    server = await emulator_factory()
    summary = await run(write_manifest(tmp_path), server, tmp_path / "out")
    assert summary.exit_status == 0
    assert summary.counts["downloaded"] == 8
    stats = server.emulator.stats()
    assert stats["jobs_created"] == 8 and stats["uploads"] == 1
    results = await check_consistent(summary.run_dir, server, expect_jobs=8)
    job = results["jobs"][0]
    assert job["params"]["seed"] == 7 and job["inputs"][0]["asset_id"].startswith("asset_")
    assert job["request"]["video"] == job["inputs"][0]["asset_id"]
    assert results["run"]["counts"]["downloaded"] == 8


async def test_rerun_after_success_sends_nothing_new(tmp_path: Path, emulator_factory) -> None:
    """Running the same manifest again re-uses everything: no upload, no submit, files kept."""
    server = await emulator_factory()
    manifest = write_manifest(tmp_path)
    await run(manifest, server, tmp_path / "out")
    before = server.emulator.stats()
    summary = await run(manifest, server, tmp_path / "out")
    after = server.emulator.stats()
    assert summary.exit_status == 0
    assert after["jobs_created"] == before["jobs_created"] and after["uploads"] == before["uploads"]


async def test_edited_manifest_adds_only_new_jobs(tmp_path: Path, emulator_factory) -> None:
    """After adding a prompt, a resume submits only the new jobs."""
    server = await emulator_factory()
    await run(write_manifest(tmp_path, prompts=1), server, tmp_path / "out")
    assert server.emulator.stats()["jobs_created"] == 4
    summary = await run(write_manifest(tmp_path, prompts=2), server, tmp_path / "out")
    assert summary.exit_status == 0
    assert server.emulator.stats()["jobs_created"] == 8
    await check_consistent(summary.run_dir, server, expect_jobs=8)


async def test_jobs_removed_from_the_manifest_are_kept_on_record(tmp_path: Path, emulator_factory) -> None:
    """After removing a prompt, the run is complete (exit 0) and the old jobs stay in results.json, marked."""
    server = await emulator_factory()
    await run(write_manifest(tmp_path, prompts=2), server, tmp_path / "out")
    summary = await run(write_manifest(tmp_path, prompts=1), server, tmp_path / "out")
    assert summary.exit_status == 0 and summary.total == 4
    results = json.loads((summary.run_dir / "results.json").read_text())
    assert [j["in_manifest"] for j in results["jobs"]].count(False) == 4
    assert results["run"]["jobs_no_longer_in_manifest"] == 4
    assert all(j["request"] and j["files"] for j in results["jobs"])
    assert server.emulator.stats()["jobs_created"] == 8


async def test_missing_file_is_fetched_again_on_resume(tmp_path: Path, emulator_factory) -> None:
    """A deleted output is noticed on resume and downloaded again, without resubmitting."""
    server = await emulator_factory()
    manifest = write_manifest(tmp_path, prompts=1, seeds=1)
    summary = await run(manifest, server, tmp_path / "out")
    victim = next((summary.run_dir / "videos").iterdir())
    victim.unlink()
    summary = await run(manifest, server, tmp_path / "out")
    assert summary.exit_status == 0 and victim.exists()
    assert server.emulator.stats()["jobs_created"] == 2


@pytest.mark.parametrize("knobs", [
    {"fault_5xx_rate": 0.3},
    {"fault_reset_rate": 0.2},
    {"fault_truncate_rate": 0.5},
    {"fault_bad_json_rate": 0.2},
    {"fault_unknown_status_rate": 0.5},
], ids=lambda k: next(iter(k)))
async def test_transient_faults_are_absorbed(tmp_path: Path, emulator_factory, knobs: dict) -> None:
    """Each transient fault alone still ends with every job downloaded (or reported unknown), none paid twice."""
    server = await emulator_factory(seed=3, **knobs)
    summary = await run(write_manifest(tmp_path, prompts=3), server, tmp_path / "out")
    lost_posts = summary.counts["unknown"]
    assert summary.counts["downloaded"] + lost_posts == 12
    assert summary.exit_status == (0 if not lost_posts else 1)
    await check_consistent(summary.run_dir, server, expect_jobs=12, allow_unknown=bool(lost_posts))
    fault = next(iter(knobs)).removeprefix("fault_").removesuffix("_rate")
    assert server.emulator.stats()["faults"][fault] > 0


async def test_partial_file_is_resumed_with_range(tmp_path: Path, emulator) -> None:
    """A .part left by a cut download is continued with Range (206) and the whole file verifies."""
    import aiohttp

    from pipeline.api.client import ApiClient
    from pipeline.api.budget import RequestBudget
    from pipeline.run.storage import download
    from run_helpers import CLIP, CREDENTIALS, settings_for

    data = CLIP.read_bytes()
    target = tmp_path / "clip.mp4"
    target.with_name("clip.mp4.part").write_bytes(data[:20000])
    async with aiohttp.ClientSession() as session:
        api = ApiClient(session, settings_for(emulator, tmp_path), CREDENTIALS, RequestBudget(100.0))
        url = await api.asset_url(await api.upload(CLIP, kind="video"))
        saved = await download(session, url, target, timeout_s=10, connect_timeout_s=2)
    assert saved.bytes == len(data) and target.read_bytes() == data
    assert saved.sha256 == hashlib.sha256(data).hexdigest()
    assert emulator.emulator.stats()["responses"].get("206") == 1
    assert not target.with_name("clip.mp4.part").exists()


async def test_failed_jobs_are_recorded_and_retried_on_request(tmp_path: Path, emulator_factory) -> None:
    """Jobs that end in failure are recorded with the reason (exit 1); --retry-failed resubmits only them."""
    server = await emulator_factory(fault_job_failure_rate=1.0)
    manifest = write_manifest(tmp_path, prompts=1, seeds=1)
    summary = await run(manifest, server, tmp_path / "out")
    assert summary.exit_status == 1 and summary.counts["failed"] == 2
    assert all(error for _, _, error in summary.failures)
    results = json.loads((summary.run_dir / "results.json").read_text())
    assert {j["error_kind"] for j in results["jobs"]} == {"job-failed"}
    server.emulator.configure(fault_job_failure_rate=0.0)
    summary = await run(manifest, server, tmp_path / "out")
    assert summary.exit_status == 1 and server.emulator.stats()["jobs_created"] == 2  # not without the flag
    summary = await run(manifest, server, tmp_path / "out", options=RunOptions(progress="off", retry_failed=True))
    assert summary.exit_status == 0 and server.emulator.stats()["jobs_created"] == 4


@pytest.mark.parametrize(("with_input", "order"), [(False, "newest"), (True, "oldest")])
async def test_lost_post_answers_are_reconciled_with_the_server_in_the_same_run(tmp_path: Path, emulator_factory,
                                                                                with_input: bool, order: str) -> None:
    """A POST whose answer is lost is found in the account's job listing (rows with metadata.input, or without it
    and fetched by id; either order) and adopted: polled and downloaded in the same run, never sent twice."""
    server = await emulator_factory(fault_lost_response_rate=1.0, list_rows_with_input=with_input,
                                    jobs_list_order=order)
    summary = await run(write_manifest(tmp_path, prompts=1, seeds=2), server, tmp_path / "out")
    assert summary.exit_status == 0 and summary.counts["downloaded"] == 4 and not summary.unknown
    assert server.emulator.stats()["jobs_created"] == 4  # created once each, answers lost, adopted
    events = list(read_events(summary.run_dir / JOURNAL_NAME))
    assert sum(1 for e in events if e["ev"] == "submitted" and e.get("adopted")) == 4
    # a few requests a run, not a few a job: one listing page, then one lookup per row without metadata.input
    assert 0 < summary.reconcile_requests <= (1 if with_input else 1 + 4)
    assert f"{summary.reconcile_requests} to reconcile lost POSTs" in summary_text(summary, resume_command="-")
    results = json.loads((summary.run_dir / "results.json").read_text())
    assert results["run"]["reconcile_requests"] == summary.reconcile_requests
    await check_consistent(summary.run_dir, server, expect_jobs=4)


async def test_a_listed_job_whose_input_never_shows_is_no_proof_a_lost_post_made_none(tmp_path: Path) -> None:
    """Reconciling: a listed job fetched by id whose answer never carries its input (a 200 of the wrong shape)
    fails the pass (the lost POSTs stay unknown), instead of being left out of the match, which took the lost
    POST it was for never made and sent it again: paid twice (seen in the crash loop under the bad-JSON fault)."""
    import aiohttp
    from aiohttp import web

    from pipeline.api.budget import RequestBudget
    from pipeline.api.client import ApiClient
    from pipeline.errors import ApiError
    from pipeline.ledger.replay import LedgerState
    from pipeline.run.adopt import unknown_to_journal
    from run_helpers import CREDENTIALS, settings_for

    fetches = 0

    async def listing(request: web.Request) -> web.Response:
        return web.json_response({"jobs": [{"jobId": "job_lost", "jobType": "custom", "status": "success",
                                            "createdAt": "2026-01-01T00:00:01.000Z"}]})

    async def by_id(request: web.Request) -> web.Response:
        nonlocal fetches
        fetches += 1
        return web.json_response({"message": "ok", "data": None})

    app = web.Application()
    app.router.add_get("/v1/jobs", listing)
    app.router.add_get("/v1/jobs/{job_id}", by_id)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    class Server:
        url = f"http://127.0.0.1:{port}"

    try:
        async with aiohttp.ClientSession() as session:
            api = ApiClient(session, settings_for(Server(), tmp_path, max_retries=2),  # type: ignore[arg-type]
                            CREDENTIALS, RequestBudget(100.0))
            with pytest.raises(ApiError, match="does not show its input"):
                await unknown_to_journal(api, LedgerState(), "2026-01-01T00:00:00.000Z")
    finally:
        await runner.cleanup()
    assert fetches == 3  # asked again while the answer was of the wrong shape


async def test_lost_post_answers_stay_unknown_when_the_listing_is_refused(tmp_path: Path,
                                                                         emulator_factory) -> None:
    """When the server cannot be asked (its listing is refused) a lost POST stays unknown with the reason, never
    resent on a guess; the next run, with the listing allowed, adopts it."""
    server = await emulator_factory(fault_lost_response_rate=1.0, list_jobs_refused=403)
    manifest = write_manifest(tmp_path, prompts=1, seeds=1)
    summary = await run(manifest, server, tmp_path / "out")
    assert summary.exit_status == 1 and len(summary.unknown) == 2
    state = replay(summary.run_dir / JOURNAL_NAME)
    assert all("could not ask the server" in (j.error or "") and "may not list jobs" in (j.error or "")
               for j in state.jobs.values())
    server.emulator.configure(list_jobs_refused=None, fault_lost_response_rate=0.0)
    summary = await run(manifest, server, tmp_path / "out")
    assert summary.exit_status == 0 and server.emulator.stats()["jobs_created"] == 2
    await check_consistent(summary.run_dir, server, expect_jobs=2)


async def test_two_server_jobs_for_one_lost_post_adopt_one_and_list_the_other(tmp_path: Path,
                                                                             emulator_factory) -> None:
    """A body the server made twice (a lost answer, then the same request sent by hand): reconciling adopts one,
    journals the other as a stray, and status lists it; nothing is sent a third time."""
    import aiohttp

    from pipeline.api.client import basic_auth
    from run_helpers import CREDENTIALS

    server = await emulator_factory(fault_lost_response_rate=1.0, list_jobs_refused=403)
    manifest = write_manifest(tmp_path, prompts=1, seeds=1)
    summary = await run(manifest, server, tmp_path / "out")
    assert len(summary.unknown) == 2
    intent = next(e for e in read_events(summary.run_dir / JOURNAL_NAME) if e["ev"] == "intent")
    server.emulator.configure(fault_lost_response_rate=0.0, list_jobs_refused=None)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/v1/generate/custom/{intent['spec']['model']}", json=intent["request"],
                             headers={"Authorization": basic_auth(CREDENTIALS)}) as resp:
            assert resp.status == 200
    summary = await run(manifest, server, tmp_path / "out")
    assert summary.exit_status == 0 and server.emulator.stats()["jobs_created"] == 3
    status = run_status(summary.run_dir)
    assert len(status.strays) == 1 and status.strays[0][1] == intent["key"]
    assert "strays: 1 more job" in status_text(status) and status.strays[0][0] in status_text(status)
    assert "--download-strays" in status_text(status)
    summary = await run(manifest, server, tmp_path / "out", options=RunOptions(progress="off", download_strays=True))
    stray_id = status.strays[0][0]
    record = next(r for r in await server.emulator.job_records() if r["jobId"] == stray_id)
    saved = summary.run_dir / "videos" / "strays" / f"{stray_id}.mp4"
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == record["outputSha256"]
    status = run_status(summary.run_dir)
    assert status.strays_saved == 1 and "1 saved under videos/strays" in status_text(status)
    assert server.emulator.stats()["jobs_created"] == 3  # nothing sent again


async def test_429_storm_is_ridden_out(tmp_path: Path, emulator_factory) -> None:
    """A client configured far over the emulator's limit gets 429s, lowers its rate, and finishes.

    About one 429 per cut of the rate (500/s down to ~20/s takes 9 cuts of 30%); before the client adapted
    its rate it received 41 here, sending at 485/s again after every Retry-After pause."""
    server = await emulator_factory(rate_limit_per_s=20.0, rate_limit_burst=2)
    summary = await run(write_manifest(tmp_path, prompts=2), server, tmp_path / "out", max_requests_per_s=500.0)
    assert summary.exit_status == 0 and 0 < summary.throttled <= 20
    assert summary.rate_cuts >= 5 and summary.lowest_sending_per_s is not None and summary.lowest_sending_per_s < 30
    text = summary_text(summary, resume_command="ltx-batch run t.yaml")
    assert f"lowered the sending rate {summary.rate_cuts} time(s)" in text and "looks lower than --rate 500" in text
    await check_consistent(summary.run_dir, server, expect_jobs=8)
    results = json.loads((summary.run_dir / "results.json").read_text())["run"]
    assert results["sending_rate_cuts"] == summary.rate_cuts and results["lowest_sending_rate_per_s"] < 30
    status = run_status(summary.run_dir)  # the journal tells status the same
    assert status.pacing is not None and status.pacing.rate_cuts == summary.rate_cuts
    assert status.pacing.throttled == summary.throttled
    assert f"429s in the last session: {summary.throttled}; 429s lowered the sending rate" in status_text(status)


async def test_429_without_retry_after_backs_off(tmp_path: Path, emulator_factory) -> None:
    """Without Retry-After the client backs off exponentially and still finishes."""
    server = await emulator_factory(rate_limit_per_s=20.0, rate_limit_burst=2, send_retry_after=False)
    summary = await run(write_manifest(tmp_path, prompts=2), server, tmp_path / "out", max_requests_per_s=500.0)
    assert summary.exit_status == 0 and summary.throttled > 0


async def test_no_429_at_or_under_the_limit(tmp_path: Path, emulator_factory) -> None:
    """A client limited to the emulator's own rate receives no 429 at all (a bucket of 2 absorbs network jitter)."""
    server = await emulator_factory(rate_limit_per_s=20.0, rate_limit_burst=2)
    summary = await run(write_manifest(tmp_path, prompts=2), server, tmp_path / "out", max_requests_per_s=20.0)
    assert summary.exit_status == 0 and summary.throttled == 0
    assert server.emulator.stats()["rate_limited"] == 0


async def test_expired_urls_are_resolved_again(tmp_path: Path, emulator_factory) -> None:
    """URLs that expire before the download starts are resolved again until one works."""
    server = await emulator_factory(url_ttl_s=0.0)

    async def heal() -> None:
        while server.emulator.stats()["cdn_denied"] < 3:
            await asyncio.sleep(0.01)
        server.emulator.configure(url_ttl_s=600.0)

    healer = asyncio.create_task(heal())
    summary = await run(write_manifest(tmp_path, prompts=1, seeds=1), server, tmp_path / "out")
    await healer
    assert summary.exit_status == 0 and server.emulator.stats()["cdn_denied"] >= 3
    await check_consistent(summary.run_dir, server, expect_jobs=2)


async def test_credits_running_out_stops_submitting_but_finishes_the_rest(tmp_path: Path, emulator_factory) -> None:
    """At 402 the run stops submitting, still downloads what was paid for, and exits 3; resume completes."""
    server = await emulator_factory(credits_jobs=3)
    manifest = write_manifest(tmp_path, prompts=2)
    summary = await run(manifest, server, tmp_path / "out", max_in_flight_jobs=2)
    assert summary.exit_status == 3 and summary.stopped == "credits"
    assert summary.counts["downloaded"] == 3 and server.emulator.stats()["jobs_created"] == 3
    server.emulator.configure(credits_jobs=100)
    summary = await run(manifest, server, tmp_path / "out")
    assert summary.exit_status == 0
    await check_consistent(summary.run_dir, server, expect_jobs=8)


async def test_random_402s_stop_submitting_and_a_resume_completes(tmp_path: Path, emulator_factory) -> None:
    """A 402 answer (credits fault) stops submitting, keeps what was paid, exits 3; the resume finishes."""
    server = await emulator_factory(fault_credits_rate=0.3, seed=2)
    manifest = write_manifest(tmp_path, prompts=3)
    summary = await run(manifest, server, tmp_path / "out")
    assert summary.exit_status == 3 and summary.stopped == "credits"
    assert summary.counts["downloaded"] == server.emulator.stats()["jobs_created"] < 12
    server.emulator.configure(fault_credits_rate=0.0)
    summary = await run(manifest, server, tmp_path / "out")
    assert summary.exit_status == 0
    await check_consistent(summary.run_dir, server, expect_jobs=12)


async def test_bad_credentials_stop_the_run(tmp_path: Path, emulator_factory) -> None:
    """A 401 stops the run with exit 3, and nothing is left half-recorded."""
    server = await emulator_factory()
    summary = await run(write_manifest(tmp_path), server, tmp_path / "out",
                        credentials=Credentials("wrong-key", "wrong-secret"))
    assert summary.exit_status == 3 and summary.stopped == "auth"
    assert server.emulator.stats()["jobs_created"] == 0


async def test_auth_revoked_mid_run_stops_and_resume_finishes(tmp_path: Path, emulator_factory) -> None:
    """401 in the middle of a run stops it (exit 3) keeping every jobId; a resume finishes without duplicates."""
    server = await emulator_factory(job_time_s=0.5)
    manifest = write_manifest(tmp_path, prompts=3)

    async def revoke() -> None:
        while server.emulator.stats()["jobs_created"] < 4:
            await asyncio.sleep(0.005)
        server.emulator.configure(revoke_auth=True)

    revoker = asyncio.create_task(revoke())
    summary = await run(manifest, server, tmp_path / "out")
    await revoker
    assert summary.exit_status == 3
    server.emulator.configure(revoke_auth=False)
    summary = await run(manifest, server, tmp_path / "out")
    assert summary.exit_status == 0
    await check_consistent(summary.run_dir, server, expect_jobs=12)


async def test_secrets_never_reach_disk_or_logs(tmp_path: Path, emulator_factory, caplog) -> None:
    """The API key and secret appear in no file the run wrote and in no log record, even with faults."""
    key, secret = "KEY-c0ffee-4f1d", "SECRET-deadbeef-99"
    server = await emulator_factory(api_key=key, api_secret=secret, fault_5xx_rate=0.2, fault_reset_rate=0.1)
    caplog.set_level("DEBUG")
    summary = await run(write_manifest(tmp_path), server, tmp_path / "out", credentials=Credentials(key, secret))
    assert summary.counts["downloaded"] + summary.counts["unknown"] == 8
    for path in summary.run_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert key.encode() not in data and secret.encode() not in data, path
    assert key not in caplog.text and secret not in caplog.text
    assert replay(summary.run_dir / JOURNAL_NAME).api_requests > 0


async def test_a_job_that_never_finishes_is_given_up_in_this_session_not_failed(tmp_path: Path,
                                                                               emulator_factory) -> None:
    """After job_timeout_s of polling a job is left submitted (never failed, never resent); the next run polls it."""
    server = await emulator_factory(job_time_s=3.0, job_time_spread_s=0.0)
    manifest = write_manifest(tmp_path, prompts=1, seeds=2)
    summary = await run(manifest, server, tmp_path / "out", job_timeout_s=0.5,
                        options=RunOptions(progress="off", retry_failed=True))
    assert summary.exit_status == 1 and summary.counts["submitted"] == 4 and summary.counts["failed"] == 0
    assert len(summary.stalled) == 4 and summary.stalled[0][2].startswith("job")
    text = summary_text(summary, resume_command="ltx-batch run t.yaml")
    assert "4 job(s) were still running on the server when polling stopped" in text and "to resume:" in text
    state = replay(summary.run_dir / JOURNAL_NAME)
    assert all(j.error_kind == "poll-timeout" and "job_timeout_s" in (j.error or "") for j in state.jobs.values())
    results = json.loads((summary.run_dir / "results.json").read_text())
    assert {j["status"] for j in results["jobs"]} == {"submitted"}
    status = run_status(summary.run_dir)
    assert len(status.stalled) == 4 and status.resume.poll == 4
    assert "polling gave up (job_timeout_s, or 404 from the server) on 4 submitted jobs" in status_text(status)
    summary = await run(manifest, server, tmp_path / "out", job_timeout_s=0.0,
                        options=RunOptions(progress="off", retry_failed=True))
    assert summary.exit_status == 0 and not summary.stalled
    results = await check_consistent(summary.run_dir, server, expect_jobs=4)
    assert server.emulator.stats()["jobs_created"] == 4
    assert all(j["error"] is None and j["error_kind"] is None for j in results["jobs"])
