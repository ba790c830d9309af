"""The emulator's models (issue 15): `GET /v1/models/{id}` for every served model, the paginated listings, and
generate refusing a body that breaks its model's schema (so a client sending off-schema parameters is caught)."""

from __future__ import annotations

import hashlib
from typing import Any

import aiohttp
import pytest

from pipeline.emulator import EmulatorServer
from pipeline.emulator.catalog import GPT_IMAGE_ID, LORA_ID, LTX23_V2V_ID, RETAKE_ID, SEEDANCE_ID
from pipeline.emulator.library import STUB_MP4
from pipeline.manifest.params import MODEL_ID
from emulator_helpers import AUTH, CLIP, PNG, call, finished, output_url, upload

SERVED = (MODEL_ID, LTX23_V2V_ID, RETAKE_ID, SEEDANCE_ID)


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession(headers=AUTH) as session:
        yield session


async def run(http: aiohttp.ClientSession, server: EmulatorServer, model: str, **body: Any) -> tuple[int, Any]:
    return await call(http, "POST", f"{server.url}/v1/generate/custom/{model}", json=body)


@pytest.mark.parametrize("model_id", SERVED)
async def test_each_model_is_described_with_its_inputs(emulator: EmulatorServer, http: aiohttp.ClientSession,
                                                       model_id: str) -> None:
    """GET /v1/models/{id}: {"model": {id, custom, capabilities, inputs: [{name, type, ...}]}} for each model."""
    status, body = await call(http, "GET", f"{emulator.url}/v1/models/{model_id}")
    model = body["model"]
    assert status == 200 and model["id"] == model_id and model["custom"] is True and model["capabilities"]
    assert all({"name", "type"} <= set(i) for i in model["inputs"]) and "video2video" in model["capabilities"]


async def test_an_unknown_model_is_a_404_in_the_api_error_shape(emulator: EmulatorServer,
                                                                 http: aiohttp.ClientSession) -> None:
    """An unknown model: 404 with the message under `error` and a trace id, for GET and generate alike."""
    for method, path in (("GET", "/v1/models/model_nope"), ("POST", "/v1/generate/custom/model_nope")):
        status, body = await call(http, method, emulator.url + path, json={} if method == "POST" else None)
        assert status == 404 and "model_nope" in body["error"] and body["traceId"]


@pytest.mark.parametrize("path", ["/v1/models?privacy=public", "/v1/models/public"])
async def test_public_listing_pages_through_every_model_without_inputs(
        emulator: EmulatorServer, http: aiohttp.ClientSession, path: str) -> None:
    """The public listing, 2 a page: every model once, rows without inputs, nextPaginationToken until the end."""
    ids: list[str] = []
    token = None
    for _ in range(10):
        query = "&" if "?" in path else "?"
        query += "pageSize=2" + (f"&paginationToken={token}" if token else "")
        status, body = await call(http, "GET", emulator.url + path + query)
        assert status == 200 and len(body["models"]) <= 2
        assert all("inputs" not in row and "uiConfig" not in row for row in body["models"])
        ids += [row["id"] for row in body["models"]]
        token = body.get("nextPaginationToken")
        if token is None:
            break
    assert ids == [*SERVED[:1], LTX23_V2V_ID, RETAKE_ID, SEEDANCE_ID, GPT_IMAGE_ID, LORA_ID]


async def test_own_listing_is_empty_and_bad_queries_are_400(emulator: EmulatorServer,
                                                             http: aiohttp.ClientSession) -> None:
    """GET /v1/models (the account's own models): none here; a bad page size, token or privacy: 400."""
    assert await call(http, "GET", emulator.url + "/v1/models") == (200, {"models": []})
    for query in ("pageSize=0", "pageSize=501", "privacy=public&paginationToken=nope", "privacy=friends"):
        status, body = await call(http, "GET", f"{emulator.url}/v1/models?{query}")
        assert status == 400 and body["error"], query


async def test_off_schema_parameters_are_refused_naming_each(emulator: EmulatorServer,
                                                             http: aiohttp.ClientSession) -> None:
    """LTX-2.3 22B has no cameraMotion and takes conditioningAttentionStrength 0..1: a body with both wrong is a
    400 naming both (and its trace id); nothing is created or charged."""
    video = await upload(http, emulator)
    status, body = await run(http, emulator, LTX23_V2V_ID, prompt="p", video=video, cameraMotion="static",
                             conditioningAttentionStrength=1.5)
    assert status == 400 and body["traceId"]
    assert any(d.startswith("cameraMotion: unknown parameter") for d in body["details"])
    assert "conditioningAttentionStrength: 1.5 is out of range 0..1" in body["details"]
    assert emulator.emulator.stats()["jobs_created"] == 0
    status, body = await run(http, emulator, LTX23_V2V_ID, prompt="p", video=video, modality="motion_track_control",
                             conditioningAttentionStrength=0.4)
    assert status == 200 and body["job"]["metadata"]["input"]["conditioningAttentionStrength"] == 0.4


async def test_seedance_reference_videos_make_one_job(emulator: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """Seedance 2.0: two reference videos in one job (the output is built from the first), duration -1 (Auto)."""
    first, second = await upload(http, emulator), await upload(http, emulator, CLIP + b"2")
    status, body = await run(http, emulator, SEEDANCE_ID, prompt="p", referenceVideos=[first, second], duration=-1)
    assert status == 200, body
    assert body["job"]["metadata"]["input"]["referenceVideos"] == [first, second]
    url = await output_url(http, emulator, body["job"]["jobId"])
    async with aiohttp.ClientSession() as anonymous, anonymous.get(url) as response:
        assert (await response.read()).startswith(CLIP)


@pytest.mark.parametrize(("body", "detail"), [
    ({"referenceVideos": ["V", "V", "V", "V"]}, "referenceVideos: must have at most 3 items, not 4"),
    ({"referenceVideos": ["I"]}, "referenceVideos[0]: asset 'I' is an image, not a video"),
    ({"referenceVideos": ["asset_missing"]}, "referenceVideos[0]: asset 'asset_missing' not found"),
    ({"lastFrameImage": "I"}, "image: A first frame must be provided if a last frame is set."),
    ({"duration": 3}, "duration: 3 is not one of -1 (Auto), 4..15"),
    ({"resolution": "8k"}, "resolution: '8k' is not one of '480p', '720p', '1080p', '4k'"),
])
async def test_seedance_refuses_what_its_schema_refuses(emulator: EmulatorServer, http: aiohttp.ClientSession,
                                                         body: dict[str, Any], detail: str) -> None:
    """Item counts, each item's kind and existence, the ifDefined rule with the schema's message, the duration
    sentinel list: each a 400 detail."""
    ids = {"V": await upload(http, emulator), "I": await upload(http, emulator, PNG, kind="image")}
    body = {k: [ids.get(x, x) for x in v] if isinstance(v, list) else ids.get(v, v) for k, v in body.items()}
    status, reply = await run(http, emulator, SEEDANCE_ID, prompt="p", **body)
    detail = detail.replace("'I'", repr(ids["I"]))
    assert status == 400 and detail in reply["details"], reply


async def test_a_model_without_an_input_video_still_makes_an_output(emulator: EmulatorServer,
                                                                     http: aiohttp.ClientSession) -> None:
    """Text to video (Seedance with a prompt only) and a Retake: both run to success with a downloadable output."""
    video = await upload(http, emulator)
    jobs = [await run(http, emulator, SEEDANCE_ID, prompt="a fox"),
            await run(http, emulator, RETAKE_ID, prompt="p", video=video, mode="replace_audio", startTime=1,
                      duration=2)]
    for status, body in jobs:
        assert status == 200, body
        assert (await finished(http, emulator, body["job"]["jobId"]))["status"] == "success"
    records = await emulator.emulator.job_records()
    assert records[0]["outputSha256"] != hashlib.sha256(STUB_MP4).hexdigest() and records[0]["outputSize"] > 0


async def test_dry_run_prices_another_model(emulator: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """?dryRun=true works for every served model (269 with the cost), never creating a job."""
    status, body = await call(http, "POST", f"{emulator.url}/v1/generate/custom/{RETAKE_ID}?dryRun=true",
                              json={"prompt": "p", "duration": 4})
    assert status == 269 and body["creativeUnitsCost"] > 0 and emulator.emulator.stats()["jobs_created"] == 0
