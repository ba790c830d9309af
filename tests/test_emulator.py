"""The Scenario API emulator over real 127.0.0.1 sockets: auth, assets, validation, jobs, CDN, faults, stats.

Issue 11's additions have their own files: test_emulator_uploads.py (multipart), test_emulator_api.py
(statuses, costs, dry runs, listing, 429s, outputs, models), test_contract_sdk.py (scenario-sdk)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pipeline.emulator import EMULATOR_API_KEY, EMULATOR_API_SECRET, FAULT_KINDS, EmulatorServer
from pipeline.emulator.media import top_level_boxes
from pipeline.manifest.params import MODEL_ID
from emulator_helpers import (
    AUTH,
    CLIP,
    FAST_UPLOADS,
    GENERATE,
    MIB,
    PNG,
    call,
    complete,
    create_upload,
    data_url,
    finished,
    generate,
    job,
    new_job,
    output_url,
    put_parts,
    settled,
    stats,
    upload,
)



@pytest.fixture
def emulator_factory(emulator_factory: Any) -> Any:
    """conftest's factory with uploads that settle in 20 ms (most tests here upload a video first)."""
    async def start(**knobs: Any) -> EmulatorServer:
        return await emulator_factory(**{**FAST_UPLOADS, **knobs})
    return start


@pytest.fixture
async def emulator(emulator_factory: Any) -> EmulatorServer:
    """A started emulator with the fast defaults."""
    return await emulator_factory()


@pytest.fixture
async def http() -> Any:
    """A client session that sends the emulator's test credentials."""
    async with aiohttp.ClientSession(headers=AUTH) as session:
        yield session


# -- auth ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": aiohttp.encode_basic_auth(EMULATOR_API_KEY, "wrong")},
                                     {"Authorization": "Bearer emulator-key"}, {"Authorization": "Basic !!!"}])
async def test_api_routes_need_the_right_basic_credentials(emulator: EmulatorServer, headers: dict[str, str]) -> None:
    """Every /v1 route answers 401 with a JSON error to missing or wrong credentials."""
    async with aiohttp.ClientSession(headers=headers) as anonymous:
        for method, path in [("POST", "/v1/assets"), ("GET", "/v1/assets/asset_x"), ("POST", GENERATE),
                             ("GET", "/v1/jobs/job_x"), ("GET", "/v1/nothing-here")]:
            status, body = await call(anonymous, method, emulator.url + path, json={})
            assert status == 401 and "error" in body, (method, path)
    assert emulator.emulator.stats()["unauthorized"] == 5


async def test_custom_credentials_are_honoured(emulator_factory: Any) -> None:
    """An emulator made with other credentials accepts them and refuses the test ones."""
    server = await emulator_factory(api_key="k2", api_secret="s2")
    async with aiohttp.ClientSession(headers={"Authorization": aiohttp.encode_basic_auth("k2", "s2")}) as good:
        assert (await call(good, "GET", server.url + "/v1/jobs/job_x"))[0] == 404
    async with aiohttp.ClientSession(headers=AUTH) as old:
        assert (await call(old, "GET", server.url + "/v1/jobs/job_x"))[0] == 401


# -- assets --------------------------------------------------------------------------------------


async def test_upload_returns_an_asset_that_lookup_resolves_to_a_cdn_url(
        emulator: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """A video uploaded in parts becomes asset_...; lookup gives size, mime type and a URL serving the same bytes."""
    video = await upload(http, emulator, CLIP)
    status, body = await call(http, "GET", f"{emulator.url}/v1/assets/{video}?originalAssets=true")
    assert status == 200
    asset = body["asset"]
    assert asset["id"] == video and asset["status"] == "success" and asset["kind"] == "video"
    assert (asset["metadata"]["name"], asset["mimeType"], asset["properties"]["size"]) == ("clip.mp4", "video/mp4",
                                                                                          len(CLIP))
    async with aiohttp.ClientSession() as anonymous, anonymous.get(asset["url"]) as response:
        assert response.status == 200 and await response.read() == CLIP


async def test_upload_image_is_an_image_asset(emulator: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """An `image` upload is stored with its image mime type."""
    image_id = await upload(http, emulator, PNG, kind="image")
    status, body = await call(http, "GET", f"{emulator.url}/v1/assets/{image_id}")
    assert (body["asset"]["kind"], body["asset"]["mimeType"]) == ("image", "image/png")


@pytest.mark.parametrize(("body", "field"), [
    ({"image": data_url(PNG, "image/png")}, "name"),
    ({"name": "a.png"}, "image"),
    ({"name": "a.png", "image": "data:image/png;base64,@@not base64@@"}, "image"),
    ({"name": "a.png", "image": "AAAA"}, "image"),
    ({"name": "a.png", "image": data_url(PNG, "video/mp4")}, "image"),
    ({"name": "a.png", "image": "data:image/png;base64,"}, "image"),
    ({"name": "a.mp4", "video": data_url(CLIP)}, "POST /v1/uploads"),
    (["not", "an", "object"], "object"),
])
async def test_malformed_uploads_get_400_naming_the_field(
        emulator: EmulatorServer, http: aiohttp.ClientSession, body: Any, field: str) -> None:
    """Bad base64, a missing field, a wrong mime type or a video is a 400 whose message names the field."""
    status, reply = await call(http, "POST", emulator.url + "/v1/assets", json=body)
    assert status == 400 and field in reply["error"]


async def test_upload_body_that_is_not_json_gets_400(emulator: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """A non-JSON upload body is a 400 JSON error."""
    status, reply = await call(http, "POST", emulator.url + "/v1/assets", data=b"{nope")
    assert status == 400 and "JSON" in reply["error"]


async def test_upload_over_the_size_limit_gets_413(emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """An image bigger than max_upload_bytes is refused with 413; one at the limit is accepted; a JSON body over
    max_json_body_bytes is 413 before it is decoded."""
    server = await emulator_factory(max_upload_bytes=1000, max_json_body_bytes=4000)
    assert await upload(http, server, PNG + bytes(1000 - len(PNG)), kind="image")
    status, reply = await call(http, "POST", server.url + "/v1/assets",
                               json={"name": "big.png", "image": data_url(PNG + bytes(1001), "image/png")})
    assert status == 413 and "limit" in reply["error"]
    status, reply = await call(http, "POST", server.url + "/v1/assets",
                               json={"name": "huge.png", "image": data_url(bytes(5000), "image/png")})
    assert status == 413 and "4000" in reply["error"]


async def test_big_upload_round_trips_without_blocking_the_loop(
        emulator: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """A 16 MiB video in four parts round-trips byte for byte while the event loop keeps ticking (no step over
    100 ms), and its parts are on disk, not in memory."""
    data = CLIP + os.urandom(16 * MIB)
    chunks = [data[i:i + 5 * MIB] for i in range(0, len(data), 5 * MIB)]
    gaps_s: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps_s.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    try:
        created = await create_upload(http, emulator, size=len(data), parts=len(chunks))
        assert await put_parts(created, chunks) == [200] * 4
        await complete(http, emulator, created["id"])
        imported = await settled(http, emulator, created["id"])
    finally:
        done.set()
        await task
    asset = emulator.emulator.asset(imported["entityId"])
    assert asset.size == len(data) and asset.sha256 == hashlib.sha256(data).hexdigest()
    assert asset.body is not None and asset.body.read() == data and len(asset.body.segments) == 4
    assert max(gaps_s) < 0.1


async def test_unknown_asset_is_404(emulator: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """Looking up an asset that does not exist gives 404 with a JSON error."""
    status, body = await call(http, "GET", emulator.url + "/v1/assets/asset_nope")
    assert status == 404 and "asset_nope" in body["error"]


# -- generate ------------------------------------------------------------------------------------


async def test_generate_reply_is_a_pending_job(emulator: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """A good body gives {"job": {jobId, status pending, jobType custom, createdAt, progress 0, metadata.input
    (the body plus modelId and numOutputs)}, creativeUnitsCost}."""
    video = await upload(http, emulator)
    status, body = await generate(http, emulator, prompt="a fox", video=video, seed=7, videoStrength=0.5)
    assert status == 200
    reply = body["job"]
    assert reply["jobId"].startswith("job_") and reply["status"] == "pending" and reply["progress"] == 0
    assert reply["jobType"] == "custom" and reply["createdAt"].endswith("Z") and body["creativeUnitsCost"] > 0
    assert reply["metadata"]["input"] == {"prompt": "a fox", "video": video, "seed": 7, "videoStrength": 0.5,
                                          "modelId": MODEL_ID, "numOutputs": 1}


async def test_unknown_model_is_404(emulator: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """Only the LTX-2 video-to-video model exists."""
    video = await upload(http, emulator)
    status, body = await call(http, "POST", emulator.url + "/v1/generate/custom/model_other",
                              json={"prompt": "x", "video": video})
    assert status == 404 and "model_other" in body["error"]


@pytest.mark.parametrize(("params", "named"), [
    ({"video": "VIDEO"}, "prompt"),
    ({"prompt": "x"}, "video"),
    ({"prompt": "x", "video": "VIDEO", "videoStrength": 1.5}, "videoStrength"),
    ({"prompt": "x", "video": "VIDEO", "videoStrenght": 0.5}, "videoStrength"),
    ({"prompt": "x", "video": "VIDEO", "cameraMotion": "zoom"}, "cameraMotion"),
    ({"prompt": "x", "video": "VIDEO", "numInferenceSteps": 2.5}, "numInferenceSteps"),
    ({"prompt": "x", "video": "VIDEO", "width": 512}, "width"),
    ({"prompt": "x", "video": "VIDEO", "enhancePrompt": "yes"}, "enhancePrompt"),
    ({"prompt": "x", "video": "asset_missing"}, "video"),
    ({"prompt": "x", "video": "VIDEO", "image": "VIDEO"}, "image"),
    ({"prompt": "x", "video": "IMAGE"}, "video"),
    ({"prompt": "x", "video": "VIDEO", "conditioningVideo": "IMAGE", "modality": "canny"}, "conditioningVideo"),
])
async def test_bad_parameters_get_400_with_details_naming_them(
        emulator: EmulatorServer, http: aiohttp.ClientSession, params: dict[str, Any], named: str) -> None:
    """Invalid parameters or file references are a 400 {"error", "details"} naming the parameter; no job."""
    ids = {"VIDEO": await upload(http, emulator), "IMAGE": await upload(http, emulator, PNG, kind="image")}
    params = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in params.items()}
    status, body = await generate(http, emulator, **params)
    assert status == 400, body
    assert any(named in detail for detail in body["details"]), body
    assert named in body["error"]
    assert emulator.emulator.stats()["jobs_created"] == 0


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe"])
async def test_generate_body_that_is_not_a_json_object_gets_400(
        emulator: EmulatorServer, http: aiohttp.ClientSession, body: bytes) -> None:
    """A non-JSON (or non-object) generate body is a 400 JSON error."""
    status, reply = await call(http, "POST", emulator.url + GENERATE, data=body)
    assert status == 400 and "error" in reply


async def test_width_and_height_are_rounded_to_multiples_of_64(
        emulator: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """Width/height off the 64 grid are accepted and rounded, as the API does."""
    video = await upload(http, emulator)
    status, body = await generate(http, emulator, prompt="x", video=video, width=1000, height=500)
    assert status == 200
    assert (body["job"]["metadata"]["input"]["width"], body["job"]["metadata"]["input"]["height"]) == (1024, 512)


# -- job lifecycle -------------------------------------------------------------------------------


async def test_job_goes_pending_to_success_with_rising_progress(
        emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """A job is pending, warming-up, in-progress with a rising progress figure, finalizing, then success with one
    output asset."""
    server = await emulator_factory(job_time_s=0.6, job_time_spread_s=0)
    job_id = await new_job(http, server, await upload(http, server))
    progress, seen = [], []
    while (current := await job(http, server, job_id))["status"] != "success":
        seen.append(current["status"])
        if current["status"] == "in-progress":
            progress.append(current["progress"])
        await asyncio.sleep(0.02)
    assert list(dict.fromkeys(seen)) == ["pending", "warming-up", "in-progress", "finalizing"]
    assert progress == sorted(progress) and 0 <= progress[0] < progress[-1] < 1
    assert current["progress"] == 1 and len(current["metadata"]["assetIds"]) == 1
    assert current["updatedAt"] >= current["createdAt"]


async def test_running_cap_keeps_the_rest_queued_in_fifo_order(
        emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """With max_running_jobs=2, the third job waits in `queued` and jobs start in creation order."""
    server = await emulator_factory(max_running_jobs=2, job_time_s=0.3, job_time_spread_s=0, job_pending_s=0)
    video = await upload(http, server)
    ids = [await new_job(http, server, video) for _ in range(5)]
    statuses = [(await job(http, server, i))["status"] for i in ids]
    assert all(s in ("warming-up", "in-progress") for s in statuses[:2]) and statuses[2:] == ["queued"] * 3
    for job_id in ids:
        assert (await finished(http, server, job_id))["status"] == "success"
    records = (await call(http, "GET", server.url + "/_emulator/jobs"))[1]["jobs"]
    starts = {r["jobId"]: r["startedAt"] for r in records}
    assert [starts[i] for i in ids] == sorted(starts[i] for i in ids)
    figures = await stats(http, server)
    assert figures["peak_running"] == 2 and figures["peak_in_flight"] == 5 and figures["jobs_in_flight"] == 0


async def test_raising_the_running_cap_live_starts_waiting_jobs(
        emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """POST /_emulator/config {"max_running_jobs": 3} starts queued jobs at once."""
    server = await emulator_factory(max_running_jobs=1, job_time_s=5, job_pending_s=0)
    video = await upload(http, server)
    ids = [await new_job(http, server, video) for _ in range(3)]
    assert (await job(http, server, ids[2]))["status"] == "queued"
    status, _ = await call(http, "POST", server.url + "/_emulator/config", json={"max_running_jobs": 3})
    assert status == 200
    assert [(await job(http, server, i))["status"] for i in ids] == ["warming-up"] * 3


async def test_unknown_job_is_404(emulator: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """Polling a job that does not exist gives 404 with a JSON error."""
    status, body = await call(http, "GET", emulator.url + "/v1/jobs/job_nope")
    assert status == 404 and "job_nope" in body["error"]


# -- outputs and the CDN -------------------------------------------------------------------------


async def test_output_is_the_input_plus_a_stamped_free_box(
        emulator: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """The output starts with the input bytes and ends with a `free` box naming the job; outputs differ."""
    video = await upload(http, emulator)
    bodies = []
    for seed in (1, 2):
        job_id = await new_job(http, emulator, video, seed=seed)
        async with aiohttp.ClientSession() as anonymous, \
                anonymous.get(await output_url(http, emulator, job_id)) as response:
            body = await response.read()
        assert body.startswith(CLIP)
        boxes = list(top_level_boxes(body))
        assert [kind for _, _, kind in boxes] == [b"ftyp", b"moov", b"mdat", b"free"]
        assert job_id.encode() in body[boxes[-1][0]:]
        bodies.append(body)
    assert bodies[0] != bodies[1]


async def test_outputs_are_deterministic_for_a_seed(emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """Two emulators with the same seed produce byte-identical outputs for the same requests."""
    hashes = []
    for _ in range(2):
        server = await emulator_factory(seed=42, job_time_s=0.05)
        job_id = await new_job(http, server, await upload(http, server), seed=3)
        await finished(http, server, job_id)
        hashes.append((await call(http, "GET", server.url + "/_emulator/jobs"))[1]["jobs"][0]["outputSha256"])
    assert hashes[0] == hashes[1] and hashes[0] is not None


async def test_download_url_expires_and_a_fresh_lookup_works_again(
        emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """A CDN URL answers 403 after url_ttl_s; resolving the asset again gives a working URL."""
    server = await emulator_factory(url_ttl_s=0.3, job_time_s=0.05)
    job_id = await new_job(http, server, await upload(http, server))
    url = await output_url(http, server, job_id)
    assert (await call(http, "GET", url))[0] == 200
    await asyncio.sleep(0.35)
    status, body = await call(http, "GET", url)
    assert status == 403 and "expired" in body["error"]
    assert (await call(http, "GET", await output_url(http, server, job_id)))[0] == 200
    assert server.emulator.stats()["cdn_denied"] == 1


async def test_forged_cdn_token_is_403(emulator: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """A token whose signature does not match is refused."""
    url = await output_url(http, emulator, await new_job(http, emulator, await upload(http, emulator)))
    status, body = await call(http, "GET", url[:-4] + "0000")
    assert status == 403 and "signature" in body["error"]


@pytest.mark.parametrize(("header", "status", "expect"), [
    ("bytes=0-9", 206, slice(0, 10)),
    ("bytes=10-", 206, slice(10, None)),
    ("bytes=-16", 206, slice(-16, None)),
    ("bytes=5-100000", 206, slice(5, None)),
    ("bytes=0-0", 206, slice(0, 1)),
    ("bytes=0-1,4-5", 200, slice(None)),
    ("pages=1-2", 200, slice(None)),
])
async def test_cdn_serves_ranges(emulator: EmulatorServer, http: aiohttp.ClientSession,
                                 header: str, status: int, expect: slice) -> None:
    """Range requests get 206 with Content-Range; multi-range or foreign units get the whole file."""
    url = await output_url(http, emulator, await new_job(http, emulator, await upload(http, emulator)))
    async with http.get(url) as response:
        whole = await response.read()
    async with http.get(url, headers={"Range": header}) as response:
        body = await response.read()
        assert response.status == status
        assert int(response.headers["Content-Length"]) == len(body) == len(whole[expect])
        assert body == whole[expect]
        if status == 206:
            first = expect.start % len(whole) if expect.start else 0
            assert response.headers["Content-Range"] == f"bytes {first}-{first + len(body) - 1}/{len(whole)}"


async def test_cdn_unsatisfiable_range_is_416_and_head_has_length_only(
        emulator: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """A range past the end gets 416 with `bytes */size`; HEAD reports the length with no body."""
    url = await output_url(http, emulator, await new_job(http, emulator, await upload(http, emulator)))
    async with http.head(url) as response:
        size = int(response.headers["Content-Length"])
        assert response.status == 200 and response.headers["Accept-Ranges"] == "bytes"
        assert await response.read() == b""
    async with http.get(url, headers={"Range": f"bytes={size}-"}) as response:
        assert response.status == 416 and response.headers["Content-Range"] == f"bytes */{size}"
    requests = emulator.emulator.stats()["requests"]
    assert requests["HEAD /_cdn"] == 1 and requests["GET /_cdn"] == 1


async def test_padded_output_is_streamed_and_matches_its_listed_hash(
        emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """output_pad_bytes makes a large output, served in chunks, whose sha256 matches /_emulator/jobs."""
    server = await emulator_factory(output_pad_bytes=8 * 2**20, job_time_s=0.05)
    url = await output_url(http, server, await new_job(http, server, await upload(http, server)))
    digest, size = hashlib.sha256(), 0
    async with http.get(url) as response:
        assert int(response.headers["Content-Length"]) > 8 * 2**20
        async for chunk in response.content.iter_chunked(2**20):
            digest.update(chunk)
            size += len(chunk)
    record = (await call(http, "GET", server.url + "/_emulator/jobs"))[1]["jobs"][0]
    assert (record["outputSize"], record["outputSha256"]) == (size, digest.hexdigest())


async def test_cdn_bytes_per_s_paces_a_download(emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """cdn_bytes_per_s: a 3 MiB output at 4 MiB/s takes at least the 0.5 s its last chunks are held back."""
    server = await emulator_factory(output_pad_bytes=3 * 2**20, job_time_s=0.05, cdn_bytes_per_s=4 * 2**20)
    url = await output_url(http, server, await new_job(http, server, await upload(http, server)))
    began_s = time.monotonic()
    async with http.get(url) as response:
        size = len(await response.read())
    assert size > 3 * 2**20 and time.monotonic() - began_s >= 0.5


# -- faults --------------------------------------------------------------------------------------


async def test_fault_5xx_answers_500_502_or_503_and_creates_no_job(
        emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """fault_5xx_rate=1: every API request gets a 5xx (JSON or HTML body) and nothing is processed."""
    server = await emulator_factory(fault_5xx_rate=1.0)
    kinds = set()
    for _ in range(12):
        status, body = await generate(http, server, prompt="x", video="asset_x")
        assert status in (500, 502, 503)
        kinds.add(type(body))
    assert kinds == {dict, str}  # both JSON and HTML bodies occur
    figures = await stats(http, server)
    assert figures["faults"]["5xx"] == 12 and figures["jobs_created"] == 0


async def test_fault_reset_drops_the_connection_without_a_response(
        emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """fault_reset_rate=1: the TCP connection is reset and no job is created."""
    server = await emulator_factory(fault_reset_rate=1.0)
    with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        await generate(http, server, prompt="x", video="asset_x")
    figures = await stats(http, server)
    assert figures["faults"]["reset"] == 1 and figures["responses"] == {"reset": 1} and figures["jobs_created"] == 0


async def test_5xx_and_reset_faults_also_hit_the_cdn(emulator: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """Turned on live, fault_5xx_rate and fault_reset_rate apply to CDN downloads too."""
    url = await output_url(http, emulator, await new_job(http, emulator, await upload(http, emulator)))
    await call(http, "POST", emulator.url + "/_emulator/config", json={"fault_5xx_rate": 1})
    assert (await call(http, "GET", url))[0] in (500, 502, 503)
    await call(http, "POST", emulator.url + "/_emulator/config", json={"fault_5xx_rate": 0, "fault_reset_rate": 1})
    with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        await call(http, "GET", url)
    await call(http, "POST", emulator.url + "/_emulator/config", json={"fault_reset_rate": 0})
    assert (await call(http, "GET", url))[0] == 200
    faults = emulator.emulator.stats()["faults"]
    assert faults["5xx"] == 1 and faults["reset"] >= 1  # aiohttp retries a GET once on a reused connection


async def test_fault_truncate_cuts_the_download_short(emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """fault_truncate_rate=1: the CDN promises the full Content-Length, then closes half-way."""
    server = await emulator_factory(fault_truncate_rate=1.0, output_pad_bytes=2**20, job_time_s=0.05)
    url = await output_url(http, server, await new_job(http, server, await upload(http, server)))
    async with http.get(url) as response:
        assert int(response.headers["Content-Length"]) > 2**20
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert server.emulator.stats()["faults"]["truncate"] == 1


async def test_fault_job_failure_ends_the_job_in_failure_with_a_reason(
        emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """fault_job_failure_rate=1: the job runs, then reports `failure` with metadata.error and .hint, no asset."""
    server = await emulator_factory(fault_job_failure_rate=1.0, job_time_s=0.05)
    done = await finished(http, server, await new_job(http, server, await upload(http, server)))
    assert done["status"] == "failure" and done["metadata"]["error"] and done["metadata"]["hint"]
    assert done["metadata"]["assetIds"] == []
    figures = await stats(http, server)
    assert figures["faults"]["job_failure"] == 1 and figures["jobs_failed"] == 1


async def test_fault_lost_response_creates_the_job_but_drops_the_reply(
        emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """fault_lost_response_rate=1: the POST fails on the client side, yet the job exists and runs."""
    server = await emulator_factory(fault_lost_response_rate=1.0, job_time_s=0.05)
    video = await upload(http, server)
    with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        await generate(http, server, prompt="x", video=video)
    records = (await call(http, "GET", server.url + "/_emulator/jobs"))[1]["jobs"]
    assert len(records) == 1 and records[0]["body"] == {"prompt": "x", "video": video}
    assert records[0]["costCu"] > 0
    assert (await finished(http, server, records[0]["jobId"]))["status"] == "success"


async def test_fault_credits_answers_402(emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """fault_credits_rate=1: generate is refused with 402 Insufficient credits and no job."""
    server = await emulator_factory(fault_credits_rate=1.0)
    status, body = await generate(http, server, prompt="x", video=await upload(http, server))
    assert (status, body["error"]) == (402, "Insufficient credits") and body["traceId"]
    assert server.emulator.stats()["jobs_created"] == 0


async def test_credits_run_out_after_credits_jobs_and_can_be_topped_up_live(
        emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """credits_jobs=2 allows two jobs, then 402; setting credits_jobs live gives that many more."""
    server = await emulator_factory(credits_jobs=2)
    video = await upload(http, server)
    statuses = [(await generate(http, server, prompt="x", video=video))[0] for _ in range(3)]
    assert statuses == [200, 200, 402]
    await call(http, "POST", server.url + "/_emulator/config", json={"credits_jobs": 1})
    statuses = [(await generate(http, server, prompt="x", video=video))[0] for _ in range(2)]
    assert statuses == [200, 402]
    figures = await stats(http, server)
    assert figures["jobs_created"] == 3 and figures["credits_exhausted"] == 2 and figures["credits_left"] == 0


async def test_fault_bad_json_answers_200_with_an_unusable_body(
        emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """fault_bad_json_rate=1: API routes answer 200 with HTML, cut-off JSON or JSON without `job`."""
    server = await emulator_factory(fault_bad_json_rate=1.0)
    for _ in range(9):
        status, body = await call(http, "GET", server.url + "/v1/jobs/job_x")
        assert status == 200 and not (isinstance(body, dict) and "job" in body)
    assert server.emulator.stats()["faults"]["bad_json"] == 9


async def test_fault_unknown_status_reports_an_unknown_word_before_progressing(
        emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """fault_unknown_status_rate=1: the job says `rescheduling` (no status of the notes) instead of queued and
    warming-up, then in-progress, finalizing and success."""
    server = await emulator_factory(fault_unknown_status_rate=1.0, job_time_s=0.5, job_time_spread_s=0)
    done = await finished(http, server, await new_job(http, server, await upload(http, server)))
    assert done["_seen"] == ["pending", "rescheduling", "in-progress", "finalizing", "success"]


async def test_rate_limit_answers_429_with_retry_after(emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """Over rate_limit_per_s (after the burst) requests get 429 with Retry-After in whole seconds."""
    server = await emulator_factory(rate_limit_per_s=2, rate_limit_burst=3)
    replies = []
    for _ in range(5):
        async with http.get(server.url + "/v1/jobs/job_x") as response:
            replies.append((response.status, response.headers.get("Retry-After")))
    assert replies == [(404, None)] * 3 + [(429, "1")] * 2
    assert server.emulator.stats()["rate_limited"] == 2


async def test_rate_limit_can_omit_retry_after(emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """send_retry_after=False: the 429 carries no Retry-After header."""
    server = await emulator_factory(rate_limit_per_s=1, rate_limit_burst=1, send_retry_after=False)
    await call(http, "GET", server.url + "/v1/jobs/job_x")
    async with http.get(server.url + "/v1/jobs/job_x") as response:
        assert response.status == 429 and "Retry-After" not in response.headers


async def test_seeded_faults_repeat_and_other_seeds_differ(emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """With fault_5xx_rate=0.5, the same seed gives the same pattern of failures; another seed does not."""
    async def pattern(seed: int) -> list[int]:
        server = await emulator_factory(fault_5xx_rate=0.5, seed=seed)
        return [(await call(http, "GET", server.url + "/v1/jobs/job_x"))[0] for _ in range(24)]

    first = await pattern(5)
    assert first == await pattern(5)
    assert first != await pattern(6)
    assert 404 in first and any(s >= 500 for s in first)


async def test_faults_and_auth_never_touch_the_emulator_routes(
        emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """With every fault at 1.0 and auth revoked, /_emulator/* still answers normally (and is not counted)."""
    server = await emulator_factory(**{f"fault_{kind}_rate": 1.0 for kind in FAULT_KINDS}, revoke_auth=True)
    async with aiohttp.ClientSession() as anonymous:
        for _ in range(3):
            assert (await call(anonymous, "GET", server.url + "/_emulator/stats"))[0] == 200
            assert (await call(anonymous, "GET", server.url + "/_emulator/jobs"))[0] == 200
            assert (await call(anonymous, "GET", server.url + "/_emulator/config"))[0] == 200
    assert server.emulator.stats()["requests"] == {}


async def test_auth_can_be_revoked_mid_run(emulator: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """POST /_emulator/config {"revoke_auth": true} turns every API answer into 401 until restored."""
    job_id = await new_job(http, emulator, await upload(http, emulator))
    await call(http, "POST", emulator.url + "/_emulator/config", json={"revoke_auth": True})
    assert (await call(http, "GET", f"{emulator.url}/v1/jobs/{job_id}"))[0] == 401
    await call(http, "POST", emulator.url + "/_emulator/config", json={"revoke_auth": False})
    assert (await call(http, "GET", f"{emulator.url}/v1/jobs/{job_id}"))[0] == 200


@pytest.mark.parametrize("changes", [{"no_such_knob": 1}, {"fault_5xx_rate": 2}, {"max_running_jobs": "4"},
                                     {"revoke_auth": 1}, ["revoke_auth"]])
async def test_config_rejects_bad_changes(emulator: EmulatorServer, http: aiohttp.ClientSession, changes: Any) -> None:
    """Unknown knobs, out-of-range or mistyped values are a 400 and change nothing."""
    before = emulator.emulator.knobs
    status, body = await call(http, "POST", emulator.url + "/_emulator/config", json=changes)
    assert status == 400 and "error" in body
    assert emulator.emulator.knobs == before


# -- stats and listing ---------------------------------------------------------------------------


async def test_stats_count_requests_per_route_and_reset(emulator: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """/_emulator/stats counts requests by route template and status; reset-stats zeroes the counters."""
    video = await upload(http, emulator)
    job_id = await new_job(http, emulator, video)
    url = await output_url(http, emulator, job_id)
    await call(http, "GET", url)
    figures = await stats(http, emulator)
    requests = figures["requests"]
    assert requests["POST /v1/uploads"] == 1 and requests["PUT /_s3"] == 1
    assert requests["POST /v1/uploads/{uploadId}/action"] == 1 and requests["GET /v1/uploads/{uploadId}"] >= 1
    assert requests["POST /v1/generate/custom/{modelId}"] == 1
    assert requests["GET /v1/jobs/{jobId}"] >= 1 and requests["GET /v1/assets/{assetId}"] == 1
    assert requests["GET /_cdn"] == 1
    assert figures["jobs_created"] == figures["jobs_succeeded"] == 1 and figures["uploads"] == 1
    assert (figures["multipart_created"], figures["multipart_imported"], figures["parts_received"]) == (1, 1, 1)
    assert set(figures["faults"]) == set(FAULT_KINDS)
    status, after = await call(http, "POST", emulator.url + "/_emulator/reset-stats")
    assert status == 200 and after["requests"] == {} and after["jobs_created"] == 0 and after["jobs_total"] == 1


async def test_job_listing_matches_every_download(emulator: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """/_emulator/jobs lists each job once, with the sha256 and size of what the CDN serves."""
    video = await upload(http, emulator)
    ids = [await new_job(http, emulator, video, prompt=f"take {i}") for i in range(4)]
    downloads = {}
    for job_id in ids:
        async with http.get(await output_url(http, emulator, job_id)) as response:
            downloads[job_id] = await response.read()
    records = (await call(http, "GET", emulator.url + "/_emulator/jobs"))[1]["jobs"]
    assert sorted(r["jobId"] for r in records) == sorted(ids)
    for record in records:
        data = downloads[record["jobId"]]
        assert (record["outputSha256"], record["outputSize"]) == (hashlib.sha256(data).hexdigest(), len(data))
        assert record["status"] == "success" and record["finishedAt"] >= record["startedAt"] >= record["createdAt"]


async def test_thousands_of_jobs_stay_cheap_and_polls_stay_fast(
        emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """3,000 jobs (4 running at a time, the rest queued) are created quickly and polls and listings stay fast."""
    server = await emulator_factory(max_running_jobs=4, job_time_s=0.01, job_time_spread_s=0.005)
    video = await upload(http, server)
    body = json.dumps({"prompt": "x", "video": video}).encode()
    ids: list[str] = []

    async def create(count: int) -> None:
        for _ in range(count):
            async with http.post(server.url + GENERATE, data=body,
                                 headers={"Content-Type": "application/json"}) as response:
                ids.append((await response.json())["job"]["jobId"])

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(15):
            group.create_task(create(200))
    created_s = time.perf_counter() - started
    assert len(set(ids)) == 3000 and created_s < 12
    slowest_s = 0.0
    for job_id in ids[::50]:
        begun = time.perf_counter()
        await job(http, server, job_id)
        slowest_s = max(slowest_s, time.perf_counter() - begun)
    assert slowest_s < 0.1
    figures = await stats(http, server)
    assert figures["jobs_total"] == 3000 and figures["peak_running"] == 4 and figures["jobs_queued"] > 0
    begun = time.perf_counter()
    records = (await call(http, "GET", server.url + "/_emulator/jobs"))[1]["jobs"]
    assert len(records) == 3000 and time.perf_counter() - begun < 2


# -- the command ---------------------------------------------------------------------------------

@pytest.mark.parametrize("env_creds", [False, True])
async def test_emulator_command_serves_and_stops_cleanly_on_ctrl_c(env_creds: bool) -> None:
    """`ltx-batch emulator` serves, logs requests with -v, shows test credentials only if unset, exits 0 on SIGINT."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCENARIO_")}
    key, secret = (EMULATOR_API_KEY, EMULATOR_API_SECRET)
    if env_creds:
        key, secret = "env-key-4242", "env-secret-4242"
        env.update(SCENARIO_API_KEY=key, SCENARIO_API_SECRET=secret)
    root = Path(__file__).resolve().parents[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pipeline", "emulator", "--verbose", "--port", "0", "--job-time-s", "0.1",
        cwd=root, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None
        first = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
        url = first.rsplit(" ", 1)[-1].strip()
        if not url.startswith("http://127.0.0.1:"):
            assert process.stderr is not None
            raise AssertionError(f"no URL printed: {first!r} {(await process.stderr.read()).decode()}")
        headers = {"Authorization": aiohttp.encode_basic_auth(key, secret)}
        async with aiohttp.ClientSession(headers=headers) as session:
            assert (await call(session, "GET", url + "/v1/jobs/job_x"))[0] == 404
        process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(process.communicate(), 10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err
    printed = first + out.decode() + err.decode()
    assert "GET /v1/jobs/job_x -> 404" in printed  # --verbose logs each request
    assert ("env-secret-4242" not in printed) and (("emulator-secret" in printed) != env_creds)
