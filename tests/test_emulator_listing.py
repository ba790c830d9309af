"""The emulator's job listing as a feed of changes (api-notes "Listing"), and its knobs for the unconfirmed
parts: updatedAt that does not move, rows without results, short pages."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from pipeline.api.answers import iso_z, stamp_s
from pipeline.emulator import EmulatorServer
from pipeline.emulator.jobs import Job, JobBoard
from emulator_helpers import AUTH, FAST_UPLOADS, call, finished, job, new_job, upload

CUSTOM = {"type": "custom", "hideResults": "false", "pageSize": "100"}


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession(headers=AUTH) as session:
        yield session


async def changes(http: aiohttp.ClientSession, server: EmulatorServer, after_s: float) -> list[dict[str, Any]]:
    """Every row of `type=custom&updatedAfter=...` (all pages)."""
    rows: list[dict[str, Any]] = []
    token = None
    while True:
        params = {**CUSTOM, "updatedAfter": iso_z(after_s), **({"paginationToken": token} if token else {})}
        status, body = await call(http, "GET", server.url + "/v1/jobs", params=params)
        assert status == 200, body
        rows += body["jobs"]
        token = body.get("nextPaginationToken")
        if not token:
            return rows


async def test_each_status_change_moves_updated_at_into_the_listing(emulator_factory: Any,
                                                                    http: aiohttp.ClientSession) -> None:
    """Following the newest updatedAt seen, a job comes back once per status it passes through (its
    statusHistory: pending, warming-up, in-progress, finalizing, success; queued lasted no time)."""
    server = await emulator_factory(**FAST_UPLOADS, job_time_s=1.0, job_time_spread_s=0, job_pending_s=0.1)
    job_id = await new_job(http, server, await upload(http, server))
    seen: list[str] = []
    after_s = stamp_s((await job(http, server, job_id))["createdAt"]) - 1.0
    for _ in range(400):
        for row in await changes(http, server, after_s):
            assert row["jobId"] == job_id
            after_s = max(after_s, stamp_s(row["updatedAt"]))
            seen.append(row["status"])
        if seen and seen[-1] == "success":
            break
        await asyncio.sleep(0.005)
    assert seen == ["pending", "warming-up", "in-progress", "finalizing", "success"]
    assert seen == [mark["status"] for mark in (await job(http, server, job_id))["statusHistory"]]
    assert (await changes(http, server, after_s)) == []  # nothing changed since: nothing listed


async def test_stale_update_fault_keeps_updated_at_at_creation(emulator_factory: Any,
                                                               http: aiohttp.ClientSession) -> None:
    """A job hit by the stale-update fault ends with its updatedAt still at its creation: a listing from after
    that never shows it, though it succeeded (its own GET says so)."""
    server = await emulator_factory(**FAST_UPLOADS, job_time_s=0.1, fault_stale_update_rate=1.0)
    job_id = await new_job(http, server, await upload(http, server))
    done = await finished(http, server, job_id)
    assert done["status"] == "success" and done["updatedAt"] == done["createdAt"]
    assert done["statusHistory"][-1]["status"] == "success"  # the history still dates the end
    assert await changes(http, server, stamp_s(done["createdAt"])) == []
    assert server.emulator.stats()["faults"]["stale_update"] == 1


async def test_rows_without_results(emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """list_rows_with_results off: listed rows lack assetIds (and error, hint); the job by id has them."""
    server = await emulator_factory(**FAST_UPLOADS, job_time_s=0.05, list_rows_with_results=False)
    done = await finished(http, server, await new_job(http, server, await upload(http, server)))
    rows = await changes(http, server, stamp_s(done["createdAt"]) - 1.0)
    assert [row["status"] for row in rows] == ["success"] and "assetIds" not in rows[0]["metadata"]
    assert done["metadata"]["assetIds"]


@pytest.mark.parametrize("order", ["newest", "oldest"])
async def test_short_pages_still_list_every_row_once(emulator_factory: Any, http: aiohttp.ClientSession,
                                                     order: str) -> None:
    """list_short_pages: the first page is empty and the others hold half of pageSize, each with a token while
    more follow; following the tokens lists every job once, in the order asked."""
    server = await emulator_factory(**FAST_UPLOADS, job_time_s=5.0, list_short_pages=True, jobs_list_order=order)
    video = await upload(http, server)
    ids = [await new_job(http, server, video) for _ in range(5)]
    pages: list[list[dict[str, Any]]] = []
    token = None
    while True:
        params = {"type": "custom", "pageSize": "4", **({"paginationToken": token} if token else {})}
        status, body = await call(http, "GET", server.url + "/v1/jobs", params=params)
        pages.append(body["jobs"])
        token = body.get("nextPaginationToken")
        if not token:
            break
    assert [len(page) for page in pages] == [0, 2, 2, 1]
    rows = sum(pages, [])
    assert sorted(row["jobId"] for row in rows) == sorted(ids)
    stamps = [stamp_s(row["updatedAt"]) for row in rows]  # by update date, in the order asked
    assert stamps == sorted(stamps, reverse=order == "newest")


def test_board_finds_recent_changes_without_looking_at_every_job() -> None:
    """A listing of recent changes looks only at the unfinished jobs and those that ended since (a job's last
    change is never after its end); one of recent creations only at the jobs created since."""
    board = JobBoard(max_running=2)
    made = [Job(f"job_{i}", "m", {}, {}, float(i), 1.5, f"asset_{i}") for i in range(6)]
    for one in made:
        board.add(one, one.created_s)  # created at 0..5 s; each runs 1.5 s, two at a time
    board.advance(6.0)
    ended = {one.job_id: one.finished_s for one in made if one.finished_s is not None}
    assert ended == {"job_0": 1.5, "job_1": 2.5, "job_2": 3.5, "job_3": 4.5, "job_4": 5.5}
    assert {one.job_id for one in board.changed_since(3.0)} == {"job_2", "job_3", "job_4", "job_5"}
    assert [one.job_id for one in board.created_since(3.0)] == ["job_4", "job_5"]
