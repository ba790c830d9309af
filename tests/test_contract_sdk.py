"""Contract: Scenario's own Python SDK (`scenario-sdk` 2.4, generated from their OpenAPI spec) drives the emulator.

Every raw answer is validated strictly (`model_validate(..., strict=True)`) into the SDK's
response type, required fields included (statusHistory, authorId, createdAt, ...), and must
carry no field the SDK's types do not know, so the emulator neither misses nor invents
parts of the real API. The SDK authenticates as it does against the real service (HTTP
Basic from api_key/api_secret, base URL ending in /v1), retries nothing (max_retries=0) and
validates what it parses itself (`_strict_response_validation`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import httpx
import pydantic
import pytest
from scenario_sdk import AsyncScenario, BadRequestError
from scenario_sdk.types import (
    AssetGetBulkResponse,
    AssetRetrieveResponse,
    AssetUploadResponse,
    GenerateRunModelResponse,
    JobListResponse,
    JobRetrieveResponse,
    ModelListResponse,
    ModelRetrieveResponse,
    UploadCreateResponse,
    UploadRetrieveResponse,
    UploadTriggerActionResponse,
)

from pipeline.emulator import EMULATOR_API_KEY, EMULATOR_API_SECRET, EmulatorServer
from pipeline.emulator.catalog import GPT_IMAGE_ID, LORA_ID, LTX23_V2V_ID, RETAKE_ID, SEEDANCE_ID
from pipeline.manifest.params import MODEL_ID
from emulator_helpers import CLIP, MIB, PNG, data_url

Model = TypeVar("Model", bound=pydantic.BaseModel)
KNOBS: dict[str, Any] = {"upload_processing_s": 0.05, "job_time_s": 0.3, "job_time_spread_s": 0,
                         "job_pending_s": 0.05, "max_running_jobs": 1}
DRY_RUN_FIELDS = ("creative_units_cost", "creative_units_discount", "cost_details")
DryRunAnswer = pydantic.create_model(  # the cost part of GenerateRunModelResponse: what a dry run answers
    "DryRunAnswer", __base__=pydantic.BaseModel,
    **{name: (GenerateRunModelResponse.model_fields[name].annotation, GenerateRunModelResponse.model_fields[name])
       for name in DRY_RUN_FIELDS})  # type: ignore[call-overload]


@pytest.fixture
async def server(emulator_factory: Any) -> EmulatorServer:
    return await emulator_factory(**KNOBS)


@pytest.fixture
async def sdk(server: EmulatorServer) -> AsyncIterator[AsyncScenario]:
    """The SDK's async client pointed at the emulator, as a user would configure it for the real service."""
    client = AsyncScenario(api_key=EMULATOR_API_KEY, api_secret=EMULATOR_API_SECRET, base_url=server.url + "/v1",
                           max_retries=0, _strict_response_validation=True)
    async with client:
        yield client


def strictly(model: type[Model], raw: Any) -> Model:
    """`raw` validated strictly into the SDK's `model`, with no field the SDK does not know (at any depth)."""
    parsed = model.model_validate(raw, strict=True)
    unknown = list(_extras(parsed, model.__name__))
    assert not unknown, f"fields the SDK's {model.__name__} does not know: {unknown}"
    return parsed


def _extras(value: Any, where: str) -> Any:
    if isinstance(value, pydantic.BaseModel):
        yield from (f"{where}.{key}" for key in (value.model_extra or {}))
        for name in type(value).model_fields:
            yield from _extras(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _extras(item, f"{where}[{i}]")


async def raw_json(call: Any) -> tuple[int, Any]:
    """Await a `with_raw_response` call; (HTTP status, the JSON body as sent)."""
    response = await call
    return response.status_code, await response.json()


async def every_page(sdk: AsyncScenario, **params: Any) -> list[list[dict[str, Any]]]:
    """The raw pages of one jobs.list, following nextPaginationToken until it is absent."""
    pages, token = [], None
    while True:
        status, raw = await raw_json(sdk.jobs.with_raw_response.list(**params, **({"pagination_token": token}
                                                                                   if token else {})))
        assert status == 200
        pages.append(raw["jobs"])
        token = raw.get("nextPaginationToken")
        if not token:
            return pages


async def put_part(url: str, data: bytes) -> httpx.Response:
    """PUT a part to its presigned URL as S3 wants it: Content-Type and Content-Length, no Authorization."""
    async with httpx.AsyncClient() as plain:
        return await plain.put(url, content=data, headers={"Content-Type": "video/mp4"})


async def upload_video(sdk: AsyncScenario, data: bytes, *, part_bytes: int = 5 * MIB) -> str:
    """The multipart flow through the SDK, every answer validated; the imported asset's id."""
    return (await upload_flow(sdk, data, part_bytes=part_bytes))[1]


async def upload_flow(sdk: AsyncScenario, data: bytes, *, part_bytes: int) -> tuple[str, str]:
    """The multipart flow through the SDK, every answer validated; (upload id, imported asset id)."""
    chunks = [data[i:i + part_bytes] for i in range(0, len(data), part_bytes)]
    status, raw = await raw_json(sdk.uploads.with_raw_response.create(
        file_name="clip.mp4", content_type="video/mp4", kind="video", parts=len(chunks), file_size=len(data)))
    created = strictly(UploadCreateResponse, raw).upload
    assert status == 200 and created.status == "pending" and created.entity_id is None
    assert created.parts is not None and [p.number for p in created.parts] == list(range(1, len(chunks) + 1))
    for part, chunk in zip(created.parts, chunks, strict=True):
        assert (await put_part(part.url, chunk)).status_code == 200
    status, raw = await raw_json(sdk.uploads.with_raw_response.trigger_action(created.id, action="complete"))
    completing = strictly(UploadTriggerActionResponse, raw).upload
    assert (completing.status, completing.entity_id) == ("validating", None)
    for _ in range(500):
        status, raw = await raw_json(sdk.uploads.with_raw_response.retrieve(created.id))
        current = strictly(UploadRetrieveResponse, raw).upload
        if current.status in ("imported", "failed"):
            break
        assert current.status in ("validating", "validated") and current.entity_id is None
        await asyncio.sleep(0.01)
    assert current.status == "imported" and current.entity_id, current
    return created.id, current.entity_id


async def test_upload_flow(sdk: AsyncScenario) -> None:
    """uploads.create / PUT parts / trigger_action(complete) / retrieve until imported, two parts; the SDK's
    own parsing agrees, and the asset holds the bytes sent."""
    data = CLIP + bytes(6 * MIB)
    upload_id, asset_id = await upload_flow(sdk, data, part_bytes=5 * MIB)
    status, raw = await raw_json(sdk.assets.with_raw_response.retrieve(asset_id, original_assets=True))
    asset = strictly(AssetRetrieveResponse, raw).asset
    assert (asset.kind, asset.mime_type, asset.properties.size) == ("video", "video/mp4", len(data))
    async with httpx.AsyncClient() as plain:
        assert hashlib.sha256((await plain.get(asset.url)).content).digest() == hashlib.sha256(data).digest()
    parsed = await sdk.uploads.retrieve(upload_id)  # the SDK's own (strict) parse
    assert parsed.upload.status == "imported" and parsed.upload.entity_id == asset_id


async def test_small_image_upload_through_post_assets(sdk: AsyncScenario) -> None:
    """assets.upload with a base64 image answers an AssetUploadResponse."""
    status, raw = await raw_json(sdk.assets.with_raw_response.upload(name="in.png", image=data_url(PNG, "image/png")))
    assert status == 200 and strictly(AssetUploadResponse, raw).asset.kind == "image"


async def test_generate_jobs_and_outputs(sdk: AsyncScenario, server: EmulatorServer) -> None:
    """generate.run_model (dry run and real), jobs.retrieve until success (every status of the notes on the
    way), jobs.list, assets.retrieve with original_assets, assets.get_bulk: every answer in the SDK's types."""
    video = await upload_video(sdk, CLIP)
    body = {"prompt": "a fox", "video": video, "duration": 5}
    status, raw = await raw_json(sdk.generate.with_raw_response.run_model(MODEL_ID, body=body, dry_run="true"))
    priced = DryRunAnswer.model_validate(raw, strict=True)
    assert status == 269 and set(raw) == {"creativeUnitsCost", "creativeUnitsDiscount", "costDetails"}
    assert priced.creative_units_cost == 20 and server.emulator.stats()["jobs_created"] == 0

    first = await sdk.generate.run_model(MODEL_ID, body=body)  # the SDK's own (strict) parse
    status, raw = await raw_json(sdk.generate.with_raw_response.run_model(MODEL_ID, body={**body, "seed": 1}))
    answer = strictly(GenerateRunModelResponse, raw)
    assert answer.creative_units_cost == priced.creative_units_cost == answer.job.billing.cu_cost  # type: ignore[union-attr]
    assert answer.job.status == "pending" and answer.job.author_id and answer.job.job_type == "custom"
    assert answer.job.metadata.input == {**body, "seed": 1, "modelId": MODEL_ID, "numOutputs": 1}

    seen: list[str] = []
    for _ in range(500):
        status, raw = await raw_json(sdk.jobs.with_raw_response.retrieve(answer.job.job_id))
        current = strictly(JobRetrieveResponse, raw).job
        if not seen or seen[-1] != current.status:
            seen.append(current.status)
        if current.status == "success":
            break
        await asyncio.sleep(0.01)
    every = ["pending", "queued", "warming-up", "in-progress", "finalizing", "success"]
    assert seen == [s for s in every if s in seen] and seen[-1] == "success"  # a loaded machine may miss a short one
    assert [m.status for m in current.status_history] == every and current.updated_at == current.status_history[-1].date
    assert current.metadata.asset_ids and len(current.metadata.asset_ids) == 1

    status, raw = await raw_json(sdk.jobs.with_raw_response.list(page_size=1, type="custom"))
    rows = [strictly(JobListResponse, row) for row in raw["jobs"]]
    assert len(rows) == 1 and isinstance(raw["nextPaginationToken"], str)
    listed = [row async for row in sdk.jobs.list(page_size=1)]  # the SDK's paginator walks the tokens
    assert sorted(row.job_id for row in listed if row.job_type == "custom") == sorted([first.job.job_id,
                                                                                      answer.job.job_id])
    assert [row.job_type for row in listed].count("upload") == 1  # the input video's upload job
    status, raw = await raw_json(sdk.jobs.with_raw_response.list(type="upload"))
    upload_job = strictly(JobListResponse, raw["jobs"][0])
    status, raw = await raw_json(sdk.jobs.with_raw_response.retrieve(upload_job.job_id))
    assert strictly(JobRetrieveResponse, raw).job.metadata.asset_ids == [video]

    output = current.metadata.asset_ids[0]
    sizes = {}
    for original in (True, False):
        status, raw = await raw_json(sdk.assets.with_raw_response.retrieve(output, original_assets=original))
        sizes[original] = strictly(AssetRetrieveResponse, raw).asset.properties.size
    record = next(r for r in (await server.emulator.job_records()) if r["jobId"] == answer.job.job_id)
    assert sizes[True] == record["outputSize"] != sizes[False]
    status, raw = await raw_json(sdk.assets.with_raw_response.get_bulk(asset_ids=[output, video], original_assets=True))
    bulk = strictly(AssetGetBulkResponse, raw)
    assert [a.id for a in bulk.assets] == [output, video] and bulk.assets[0].properties.size == sizes[True]


async def test_failed_job_carries_error_and_hint(emulator_factory: Any) -> None:
    """A failed job validates too, with metadata.error and metadata.hint."""
    server = await emulator_factory(**{**KNOBS, "fault_job_failure_rate": 1.0, "job_time_s": 0.05})
    async with AsyncScenario(api_key=EMULATOR_API_KEY, api_secret=EMULATOR_API_SECRET,
                             base_url=server.url + "/v1", max_retries=0, _strict_response_validation=True) as sdk:
        job_id = (await sdk.generate.run_model(MODEL_ID, body={"prompt": "x", "video": await upload_video(sdk, CLIP)})
                  ).job.job_id
        for _ in range(300):
            status, raw = await raw_json(sdk.jobs.with_raw_response.retrieve(job_id))
            job = strictly(JobRetrieveResponse, raw).job
            if job.status == "failure":
                break
            await asyncio.sleep(0.01)
    assert job.status == "failure" and job.metadata.error and job.metadata.hint


@pytest.mark.parametrize("knobs", [{}, {"list_rows_with_results": False, "fault_stale_update_rate": 1.0,
                                      "list_short_pages": True, "jobs_list_order": "oldest"}])
async def test_the_feed_listing_and_get_bulk(emulator_factory: Any, knobs: dict[str, Any]) -> None:
    """What the feed sends, through the SDK: jobs.list(type=custom, updated_after, hide_results=False,
    page_size=100) rows (also without results, with a stale updatedAt, in short pages) and
    assets.get_bulk(original_assets=True) answers, strictly in the SDK's types. Pages are followed by their
    tokens as `jobs.list`'s docstring says ("keep paginating until it is absent"): the SDK's own paginator
    stops at an empty page (its `has_next_page`), which that same docstring says may come before the end."""
    server = await emulator_factory(**{**KNOBS, "max_running_jobs": 4, **knobs})
    async with AsyncScenario(api_key=EMULATOR_API_KEY, api_secret=EMULATOR_API_SECRET,
                             base_url=server.url + "/v1", max_retries=0, _strict_response_validation=True) as sdk:
        video = await upload_video(sdk, CLIP)
        ids = [(await sdk.generate.run_model(MODEL_ID, body={"prompt": "x", "video": video, "seed": seed})).job.job_id
               for seed in range(3)]
        since = (await sdk.jobs.retrieve(ids[-1])).job.created_at
        before = "2000-01-01T00:00:00.000Z"
        for _ in range(300):
            done = [(await sdk.jobs.retrieve(job_id)).job for job_id in ids]
            if all(job.status == "success" for job in done):
                break
            await asyncio.sleep(0.01)
        pages = await every_page(sdk, type="custom", updated_after=before, hide_results=False, page_size=100)
        listed = [strictly(JobListResponse, row) for page in pages for row in page]
        recent = [row["jobId"] for page in await every_page(sdk, type="custom", updated_after=since,
                                                            hide_results=False) for row in page]
        outputs = [asset for job in done for asset in job.metadata.asset_ids or []]
        status, raw = await raw_json(sdk.assets.with_raw_response.get_bulk(asset_ids=outputs, original_assets=True))
        bulk = strictly(AssetGetBulkResponse, raw)
    assert sorted(row.job_id for row in listed) == sorted(ids) and all(row.status == "success" for row in listed)
    if not knobs:
        assert len(pages) == 1 and all(row.metadata.asset_ids for row in listed)
        assert sorted(recent) == sorted(ids)  # each one's end moved its updatedAt past the last one's creation
    else:
        assert [len(page) for page in pages] == [0, 3]  # an empty first page with a token, then the rows
        assert all(row.metadata.asset_ids is None for row in listed) and recent == []  # updatedAt never moved
    assert [asset.id for asset in bulk.assets] == outputs and all(asset.url for asset in bulk.assets)


async def test_model_retrieve(sdk: AsyncScenario) -> None:
    """models.retrieve answers the LTX-2 model with every input of the notes' table, in the SDK's types."""
    status, raw = await raw_json(sdk.models.with_raw_response.retrieve(MODEL_ID))
    model = strictly(ModelRetrieveResponse, raw).model
    assert model.id == MODEL_ID and model.type == "custom" and model.inputs
    inputs = {i.name: i for i in model.inputs}
    assert inputs["prompt"].required is not None and inputs["prompt"].required.always is True
    assert inputs["video"].kind == "video" and inputs["resolution"].allowed_values == ["auto", "720p", "1080p",
                                                                                        "1440p", "2160p"]


@pytest.mark.parametrize("model_id", [LTX23_V2V_ID, RETAKE_ID, SEEDANCE_ID, GPT_IMAGE_ID, LORA_ID])
async def test_other_models_retrieve(sdk: AsyncScenario, model_id: str) -> None:
    """models.retrieve answers each other model the emulator serves in the SDK's types, no unknown field;
    Seedance's file arrays, item counts, -1 sentinel and ifDefined rule survive the SDK's parse."""
    status, raw = await raw_json(sdk.models.with_raw_response.retrieve(model_id))
    model = strictly(ModelRetrieveResponse, raw).model
    assert status == 200 and model.id == model_id
    if model_id == SEEDANCE_ID:
        inputs = {i.name: i for i in model.inputs or []}
        videos = inputs["referenceVideos"]
        assert (videos.type, videos.kind, videos.max_length) == ("file_array", "video", 3)
        assert inputs["duration"].allowed_values and -1 in inputs["duration"].allowed_values
        assert inputs["image"].required is not None and "lastFrameImage" in inputs["image"].required.if_defined  # type: ignore[operator]


async def test_model_listing(sdk: AsyncScenario) -> None:
    """models.list(privacy=public) pages through every served model (rows in the SDK's ModelListResponse,
    without inputs); the account's own listing is empty."""
    status, raw = await raw_json(sdk.models.with_raw_response.list(privacy="public", page_size=2))
    rows = [strictly(ModelListResponse, row) for row in raw["models"]]
    assert status == 200 and len(rows) == 2 and all(row.inputs is None for row in rows)
    listed = [row.id async for row in sdk.models.list(privacy="public", page_size=2)]  # the SDK's paginator
    assert listed == [MODEL_ID, LTX23_V2V_ID, RETAKE_ID, SEEDANCE_ID, GPT_IMAGE_ID, LORA_ID]
    assert [row async for row in sdk.models.list()] == []


async def test_off_schema_generate_is_a_bad_request_for_the_sdk(sdk: AsyncScenario) -> None:
    """A body its model's schema refuses raises the SDK's BadRequestError (400), nothing created."""
    video = await upload_video(sdk, CLIP)
    with pytest.raises(BadRequestError) as caught:
        await sdk.generate.run_model(LTX23_V2V_ID, body={"prompt": "p", "video": video, "cameraMotion": "static"})
    assert caught.value.status_code == 400 and "cameraMotion" in str(caught.value.body)
