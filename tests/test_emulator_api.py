"""The emulator's API as the notes say, over real sockets: statuses, costs, dry runs, outputs, 429s, listing, models."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from pipeline.emulator import EmulatorServer
from pipeline.manifest.params import MODEL_ID
from emulator_helpers import (
    AUTH,
    CLIP,
    FAST_UPLOADS,
    GENERATE,
    call,
    complete,
    finished,
    generate,
    job,
    new_job,
    put_parts,
    settled,
    upload,
)


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession(headers=AUTH) as session:
        yield session


@pytest.fixture
def start(emulator_factory: Any) -> Any:
    """Start an emulator with fast uploads and the given knobs."""
    async def begin(**knobs: Any) -> EmulatorServer:
        return await emulator_factory(**{**FAST_UPLOADS, **knobs})
    return begin


async def configure(http: aiohttp.ClientSession, server: EmulatorServer, **changes: Any) -> None:
    status, body = await call(http, "POST", server.url + "/_emulator/config", json=changes)
    assert status == 200, body


async def download(url: str) -> bytes:
    async with aiohttp.ClientSession() as anonymous, anonymous.get(url) as response:
        assert response.status == 200
        return await response.read()


# -- jobs ----------------------------------------------------------------------------------------


async def test_a_job_passes_every_status_with_its_history(start: Any, http: aiohttp.ClientSession) -> None:
    """pending -> queued -> warming-up -> in-progress -> finalizing -> success; statusHistory lists each with its
    date, updatedAt moves on every change; authorId, jobType custom and billing are there from the start."""
    server = await start(job_pending_s=0.1, max_running_jobs=1, job_time_s=0.5, job_time_spread_s=0)
    video = await upload(http, server)
    await new_job(http, server, video)  # holds the only slot
    status, answer = await generate(http, server, prompt="a fox", video=video, duration=3)
    assert status == 200 and answer["job"]["status"] == "pending"
    done = await finished(http, server, answer["job"]["jobId"])
    assert done["_seen"] == ["pending", "queued", "warming-up", "in-progress", "finalizing", "success"]
    marks = done["statusHistory"]
    assert [m["status"] for m in marks] == done["_seen"]
    assert [m["date"] for m in marks] == sorted(m["date"] for m in marks) and done["updatedAt"] == marks[-1]["date"]
    assert marks[0]["date"] == done["createdAt"] and done["jobType"] == "custom" and len(done["authorId"]) == 32
    assert done["billing"] == {"cuCost": answer["creativeUnitsCost"], "cuDiscount": 0}
    assert answer["creativeUnitsCost"] == 12 and answer["costDetails"] == {"custom-generation": 12}


async def test_updated_at_moves_on_each_status_change_only(start: Any, http: aiohttp.ClientSession) -> None:
    """While a job stays in one status its updatedAt stays; it moves when the status changes."""
    server = await start(job_pending_s=0.3, job_time_s=0.2)
    job_id = await new_job(http, server, await upload(http, server))
    first = await job(http, server, job_id)
    await asyncio.sleep(0.1)
    again = await job(http, server, job_id)
    assert first["status"] == again["status"] == "pending" and first["updatedAt"] == again["updatedAt"]
    done = await finished(http, server, job_id)
    assert done["updatedAt"] > first["updatedAt"]


@pytest.mark.parametrize(("knob", "status"), [("fault_job_failure_rate", "failure"),
                                              ("fault_job_canceled_rate", "canceled")])
async def test_failed_and_canceled_jobs_say_why_and_are_refunded(start: Any, http: aiohttp.ClientSession,
                                                                 knob: str, status: str) -> None:
    """A job fated to fail or be canceled ends so with metadata.error and metadata.hint, no asset; its cost
    is refunded from what the account was charged (billing.cuCost still shows the charge)."""
    server = await start(**{knob: 1.0}, job_time_s=0.05)
    done = await finished(http, server, await new_job(http, server, await upload(http, server)))
    assert done["status"] == status and done["metadata"]["error"] and done["metadata"]["hint"]
    assert done["metadata"]["assetIds"] == [] and done["billing"]["cuCost"] == 20
    figures = server.emulator.stats()
    assert figures["cu_charged"] == 0 and figures["cu_spent"] == 0 and figures[f"jobs_{status.replace('ure', 'ed')}"] == 1


async def test_generate_and_jobs_answer_metadata_input_with_the_servers_keys(
        start: Any, http: aiohttp.ClientSession) -> None:
    """metadata.input is the body (normalised) plus modelId and numOutputs, on the generate answer and the job."""
    server = await start()
    video = await upload(http, server)
    status, answer = await generate(http, server, prompt="p", video=video, width=1000, height=500)
    expect = {"prompt": "p", "video": video, "width": 1024, "height": 512, "modelId": MODEL_ID, "numOutputs": 1}
    assert status == 200 and answer["job"]["metadata"]["input"] == expect
    assert (await job(http, server, answer["job"]["jobId"]))["metadata"]["input"] == expect


async def test_cancelling_a_generate_job_is_refused(start: Any, http: aiohttp.ClientSession) -> None:
    """POST /v1/jobs/{id}/action {"action": "cancel"} gets 400 "Cannot cancel this type of job" (observed)."""
    server = await start(job_time_s=5)
    job_id = await new_job(http, server, await upload(http, server))
    status, body = await call(http, "POST", f"{server.url}/v1/jobs/{job_id}/action", json={"action": "cancel"})
    assert status == 400 and body["error"] == "Cannot cancel this type of job"
    assert (await call(http, "POST", f"{server.url}/v1/jobs/job_nope/action", json={"action": "cancel"}))[0] == 404


# -- cost ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["true", "api"])
async def test_dry_run_prices_without_a_job_a_charge_or_a_check(start: Any, http: aiohttp.ClientSession,
                                                                flag: str) -> None:
    """?dryRun=true answers 269 {creativeUnitsCost, creativeUnitsDiscount, costDetails}: no job, nothing charged,
    parameters not validated (even a body the real generate would refuse is priced)."""
    server = await start(credits_jobs=0)
    for body, cost in (({"prompt": "x", "duration": 10}, 40), ({"videoStrenght": 9, "resolution": "1080p"}, 45)):
        status, answer = await call(http, "POST", f"{server.url}{GENERATE}?dryRun={flag}", json=body)
        assert status == 269 and answer == {"creativeUnitsCost": cost, "creativeUnitsDiscount": 0,
                                             "costDetails": {"custom-generation": cost}}
    figures = server.emulator.stats()
    assert (figures["jobs_created"], figures["cu_charged"], figures["dry_runs"]) == (0, 0, 2)
    status, _ = await call(http, "POST", f"{server.url}/v1/generate/custom/model_other?dryRun=true", json={})
    assert status == 404


async def test_cu_per_second_scales_the_price(start: Any, http: aiohttp.ClientSession) -> None:
    """The cu_per_second knob sets the price model's rate."""
    server = await start(cu_per_second=1.5)
    status, answer = await call(http, "POST", f"{server.url}{GENERATE}?dryRun=true", json={"duration": 4})
    assert status == 269 and answer["creativeUnitsCost"] == 6


# -- projectId and error bodies ---------------------------------------------------------------------


async def test_project_id_is_accepted_everywhere_and_checked_when_bound(start: Any,
                                                                        http: aiohttp.ClientSession) -> None:
    """projectId is accepted on every API route and counted; with the project_id knob another one gets 403."""
    server = await start()
    video = await upload(http, server)
    query = "?projectId=proj_a"
    status, answer = await call(http, "POST", server.url + GENERATE + query, json={"prompt": "x", "video": video})
    assert status == 200
    for path in (f"/v1/jobs/{answer['job']['jobId']}", "/v1/jobs", f"/v1/models/{MODEL_ID}", f"/v1/assets/{video}"):
        assert (await call(http, "GET", server.url + path + query))[0] == 200, path
    assert server.emulator.stats()["project_ids"]["proj_a"] == 5
    await configure(http, server, project_id="proj_a")
    assert (await call(http, "GET", server.url + "/v1/jobs?projectId=proj_b"))[0] == 403
    assert (await call(http, "GET", server.url + "/v1/jobs?projectId=proj_a"))[0] == 200
    assert (await call(http, "GET", server.url + "/v1/jobs"))[0] == 200  # left out: the key's project


@pytest.mark.parametrize("key", ["message", "reason", "detail"])
async def test_error_bodies_put_the_message_where_the_knob_says(start: Any, http: aiohttp.ClientSession,
                                                                key: str) -> None:
    """error_message_key moves the message to message/reason/detail; every error carries a traceId."""
    server = await start(error_message_key=key)
    status, body = await call(http, "GET", server.url + "/v1/jobs/job_nope")
    assert status == 404 and "job_nope" in body[key] and "error" not in body and body["traceId"]


# -- outputs ---------------------------------------------------------------------------------------


async def test_default_url_serves_a_transformed_copy_and_original_assets_the_original(
        start: Any, http: aiohttp.ClientSession) -> None:
    """GET /v1/assets/{id}: the default URL serves other bytes than the model made; originalAssets=true serves
    the original, whose sha256 and size are the ones /_emulator/jobs reports."""
    server = await start(job_time_s=0.05)
    done = await finished(http, server, await new_job(http, server, await upload(http, server)))
    asset_id = done["metadata"]["assetIds"][0]
    record = (await call(http, "GET", server.url + "/_emulator/jobs"))[1]["jobs"][0]
    got = {}
    for query in ("", "?originalAssets=true"):
        status, body = await call(http, "GET", f"{server.url}/v1/assets/{asset_id}{query}")
        data = await download(body["asset"]["url"])
        assert body["asset"]["properties"]["size"] == len(data)
        got[query] = data
    original = got["?originalAssets=true"]
    assert (hashlib.sha256(original).hexdigest(), len(original)) == (record["outputSha256"], record["outputSize"])
    assert got[""] != original and got[""].startswith(original)


async def test_transform_deliveries_off_serves_the_original_either_way(start: Any,
                                                                       http: aiohttp.ClientSession) -> None:
    """transform_deliveries=False: the default URL serves the original too."""
    server = await start(job_time_s=0.05, transform_deliveries=False)
    done = await finished(http, server, await new_job(http, server, await upload(http, server)))
    status, body = await call(http, "GET", f"{server.url}/v1/assets/{done['metadata']['assetIds'][0]}")
    record = (await call(http, "GET", server.url + "/_emulator/jobs"))[1]["jobs"][0]
    assert hashlib.sha256(await download(body["asset"]["url"])).hexdigest() == record["outputSha256"]


async def test_get_bulk_answers_many_assets(start: Any, http: aiohttp.ClientSession) -> None:
    """POST /v1/assets/get-bulk {"assetIds"}: the known ones, originals with originalAssets (query or body);
    more than 200 ids or no list is a 400."""
    server = await start(job_time_s=0.05)
    video = await upload(http, server)
    outputs = [(await finished(http, server, await new_job(http, server, video)))["metadata"]["assetIds"][0]
               for _ in range(3)]
    url = server.url + "/v1/assets/get-bulk"
    status, body = await call(http, "POST", url + "?originalAssets=true", json={"assetIds": [*outputs, "asset_nope"]})
    assert status == 200 and [a["id"] for a in body["assets"]] == outputs
    records = {r["outputAssetIds"][0]: r for r in (await call(http, "GET", server.url + "/_emulator/jobs"))[1]["jobs"]}
    for asset in body["assets"]:
        assert hashlib.sha256(await download(asset["url"])).hexdigest() == records[asset["id"]]["outputSha256"]
    _, by_body = await call(http, "POST", url, json={"assetIds": outputs[:1], "originalAssets": True})
    _, default = await call(http, "POST", url, json={"assetIds": outputs[:1]})
    assert by_body["assets"][0]["properties"]["size"] < default["assets"][0]["properties"]["size"]
    assert (await call(http, "POST", url, json={"assetIds": ["asset_x"] * 201}))[0] == 400
    assert (await call(http, "POST", url, json={"assetIds": "asset_x"}))[0] == 400


# -- the 429s, the plan and the CU cap -------------------------------------------------------------


async def test_concurrency_cap_refuses_generate_while_n_jobs_are_not_final(start: Any,
                                                                           http: aiohttp.ClientSession) -> None:
    """job_concurrency_limit=2: a third generate gets 429 {details: {actionName: model_run, actionLimit: 2}} and
    no Retry-After; once a job is final the next is accepted. The cap can be set live."""
    server = await start(job_concurrency_limit=2, job_time_s=0.3, job_time_spread_s=0)
    video = await upload(http, server)
    first = await new_job(http, server, video)
    await new_job(http, server, video)
    async with http.post(server.url + GENERATE, json={"prompt": "x", "video": video}) as response:
        body = await response.json()
        assert response.status == 429 and "Retry-After" not in response.headers
    assert body["details"] == {"actionName": "model_run", "actionLimit": 2} and "model_run" in body["error"]
    await finished(http, server, first)
    await new_job(http, server, video)
    await configure(http, server, job_concurrency_limit=None)
    await new_job(http, server, video)
    figures = server.emulator.stats()
    assert figures["concurrency_limited"] == 1 and figures["jobs_created"] == 4


async def test_cooldown_refuses_every_api_request_with_remaining_seconds(start: Any,
                                                                         http: aiohttp.ClientSession) -> None:
    """POST /_emulator/config {"cooldown_s": T}: for T seconds every API request gets 429 with remainingSeconds
    and no Retry-After; control routes are untouched; then requests go through again."""
    server = await start()
    video = await upload(http, server)
    await configure(http, server, cooldown_s=0.6)
    for method, path in (("GET", "/v1/jobs"), ("GET", f"/v1/assets/{video}"), ("POST", GENERATE),
                         ("GET", "/v1/uploads/upload_x")):
        async with http.request(method, server.url + path, json={}) as response:
            body = await response.json()
            assert response.status == 429 and "Retry-After" not in response.headers, path
            assert body["remainingSeconds"] == 1
    assert (await call(http, "GET", server.url + "/_emulator/stats"))[0] == 200
    await asyncio.sleep(0.65)
    assert (await call(http, "GET", server.url + "/v1/jobs"))[0] == 200
    assert server.emulator.stats()["cooldown_refused"] == 4


async def test_a_cooldown_set_at_start_runs_from_the_first_request(start: Any, http: aiohttp.ClientSession) -> None:
    """A cooldown knob given at start begins with the first API request."""
    server = await start(cooldown_s=1200)
    status, body = await call(http, "GET", server.url + "/v1/jobs")
    assert status == 429 and body["remainingSeconds"] == 1200


async def test_plan_restriction_answers_403_naming_model_and_plan(start: Any, http: aiohttp.ClientSession) -> None:
    """required_plan: generate and its dry run get 403 ModelAccessRestrictedError with modelId and requiredPlan;
    other calls work."""
    server = await start(required_plan="pro")
    video = await upload(http, server)
    for query in ("", "?dryRun=true"):
        status, body = await call(http, "POST", server.url + GENERATE + query, json={"prompt": "x", "video": video})
        assert status == 403 and body["name"] == "ModelAccessRestrictedError"
        assert (body["modelId"], body["requiredPlan"]) == (MODEL_ID, "pro") and "pro" in body["error"]
    assert (await call(http, "GET", server.url + "/v1/jobs"))[0] == 200
    assert server.emulator.stats()["access_restricted"] == 2


async def test_spending_cap_refuses_the_job_that_would_pass_it(start: Any, http: aiohttp.ClientSession) -> None:
    """spending_cap_cu=50: jobs of 20 CU go through twice, the third gets a 4xx saying the CU cap is reached;
    the status is a knob; dry runs are still priced."""
    server = await start(spending_cap_cu=50, spending_cap_status=400, job_time_s=5)
    video = await upload(http, server)
    statuses = [(await generate(http, server, prompt="x", video=video))[0] for _ in range(3)]
    assert statuses == [200, 200, 400]
    status, body = await generate(http, server, prompt="x", video=video)
    assert status == 400 and "Spending cap reached" in body["error"] and "CU" in body["error"]
    assert (await call(http, "POST", f"{server.url}{GENERATE}?dryRun=true", json={}))[0] == 269
    await configure(http, server, spending_cap_cu=60)
    assert (await generate(http, server, prompt="x", video=video))[0] == 200
    assert server.emulator.stats()["spending_capped"] == 2


# -- listing and the model ----------------------------------------------------------------------------


async def test_listing_pages_through_every_job_without_inputs(start: Any, http: aiohttp.ClientSession) -> None:
    """GET /v1/jobs?pageSize=2 walks every job once through nextPaginationToken (the video's `upload` job too,
    created first); rows have no metadata.input unless list_rows_with_input is on; newest first by default."""
    server = await start(job_time_s=0.05)
    video = await upload(http, server)
    ids = [await new_job(http, server, video) for _ in range(5)]
    upload_job = server.emulator.uploads.completed()[0].job_id
    seen, token = [], None
    while True:
        query = f"?pageSize=2&paginationToken={token}" if token else "?pageSize=2"
        status, body = await call(http, "GET", server.url + "/v1/jobs" + query)
        assert status == 200 and len(body["jobs"]) <= 2
        assert all("input" not in row["metadata"] and row["statusHistory"] for row in body["jobs"])
        seen += [row["jobId"] for row in body["jobs"]]
        token = body.get("nextPaginationToken")
        if not token:
            break
    assert seen == [*ids[::-1], upload_job]
    await configure(http, server, list_rows_with_input=True, jobs_list_order="oldest")
    status, body = await call(http, "GET", server.url + "/v1/jobs", params={"type": "custom"})
    assert [row["jobId"] for row in body["jobs"]] == ids and all("input" in row["metadata"] for row in body["jobs"])


async def test_listing_date_filters_follow_the_notes(start: Any, http: aiohttp.ClientSession) -> None:
    """type=custom&updatedAfter=T lists the jobs that changed since T; createdAfter with status is a 400;
    updatedAfter alone is a 400; status filters."""
    server = await start(job_time_s=0.2, job_time_spread_s=0, job_pending_s=0)
    video = await upload(http, server)
    done = await finished(http, server, await new_job(http, server, video))
    since = datetime.now(UTC).isoformat()
    running = await new_job(http, server, video)
    status, body = await call(http, "GET", f"{server.url}/v1/jobs", params={"type": "custom", "updatedAfter": since})
    assert status == 200 and [row["jobId"] for row in body["jobs"]] == [running]
    status, body = await call(http, "GET", f"{server.url}/v1/jobs", params={"createdAfter": since})
    assert [row["jobId"] for row in body["jobs"]] == [running]
    status, body = await call(http, "GET", f"{server.url}/v1/jobs", params={"status": "success", "type": "custom"})
    assert [row["jobId"] for row in body["jobs"]] == [done["jobId"]]
    status, body = await call(http, "GET", f"{server.url}/v1/jobs", params={"status": "success"})
    assert {row["jobType"] for row in body["jobs"]} == {"custom", "upload"}
    for bad in ({"createdAfter": since, "status": "success"}, {"updatedAfter": since}):
        status, body = await call(http, "GET", f"{server.url}/v1/jobs", params=bad)
        assert status == 400 and ("createdAfter" in body["error"] or "updatedAfter" in body["error"])


async def test_a_completed_upload_is_an_upload_job(start: Any, http: aiohttp.ClientSession) -> None:
    """A completed upload carries a jobId; that job (jobType upload) answers GET /v1/jobs/{id} (in-progress, then
    success with the asset id) and is listed with type=upload, never with type=custom."""
    server = await start(upload_processing_s=0.3)
    created = (await call(http, "POST", server.url + "/v1/uploads", json={
        "fileName": "clip.mp4", "contentType": "video/mp4", "kind": "video", "parts": 1, "fileSize": len(CLIP)}))[1]
    assert "jobId" not in created["upload"]
    await put_parts(created["upload"], [CLIP])
    job_id = (await complete(http, server, created["upload"]["id"]))["jobId"]
    running = await job(http, server, job_id)
    assert (running["jobType"], running["status"]) == ("upload", "in-progress")
    done = await finished(http, server, job_id)
    imported = await settled(http, server, created["upload"]["id"])
    assert done["status"] == "success" and done["metadata"]["assetIds"] == [imported["entityId"]]
    assert [r["jobId"] for r in (await call(http, "GET", server.url + "/v1/jobs?type=upload"))[1]["jobs"]] == [job_id]
    assert (await call(http, "GET", server.url + "/v1/jobs?type=custom"))[1]["jobs"] == []


async def test_model_is_described_with_its_inputs(start: Any, http: aiohttp.ClientSession) -> None:
    """GET /v1/models/{modelId} answers the LTX-2 model and its inputs; another model is a 404."""
    server = await start()
    status, body = await call(http, "GET", f"{server.url}/v1/models/{MODEL_ID}")
    assert status == 200 and body["model"]["id"] == MODEL_ID
    assert {i["name"] for i in body["model"]["inputs"]} >= {"prompt", "video", "duration", "seed"}
    assert (await call(http, "GET", f"{server.url}/v1/models/model_other"))[0] == 404
