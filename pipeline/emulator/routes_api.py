"""The API routes of assets, generate, jobs and models (HTTP Basic auth; see `app` for the middleware).

    POST /v1/assets                      an image under 6 MB as base64 JSON -> {"asset": {...}}
    GET  /v1/assets/{assetId}            -> {"asset": {..., "url"}}; ?originalAssets=true: the original
    POST /v1/assets/get-bulk             {"assetIds": [...]} (<= 200) -> {"assets": [...]}
    POST /v1/generate/custom/{modelId}   -> {"job": {...}, "creativeUnitsCost", ...}; ?dryRun=true: 269 + cost
    GET  /v1/jobs                        -> {"jobs": [...], "nextPaginationToken"?} (see `listing`)
    GET  /v1/jobs/{jobId}                -> {"job": {...}} (generate jobs, and upload jobs of completed uploads)
    POST /v1/jobs/{jobId}/action         {"action": "cancel"} -> 400 for generate/custom jobs (observed)
    GET  /v1/models/{modelId}            -> {"model": {..., "inputs": [...]}} (see `model` and `catalog`)
    GET  /v1/models                      -> {"models": [...], "nextPaginationToken"?}; ?privacy=public: public ones
    GET  /v1/models/public               -> the public models, as ?privacy=public
"""

from __future__ import annotations

from aiohttp import web

from pipeline.emulator.model import list_models, model_json
from pipeline.emulator.pricing import cost_answer
from pipeline.emulator.replies import ErrorReply
from pipeline.emulator.wire import base_url, dropped, emulator_of, query_flag, read_body, read_json

DRY_RUN_STATUS = 269  # scenario-sdk: "the call returns a 269 response carrying the creative units cost"


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/assets", upload_asset)
    app.router.add_post("/v1/assets/get-bulk", get_assets)
    app.router.add_get("/v1/assets/{assetId}", get_asset, allow_head=False)
    app.router.add_post("/v1/generate/custom/{modelId}", generate)
    app.router.add_get("/v1/jobs", list_jobs, allow_head=False)
    app.router.add_get("/v1/jobs/{jobId}", get_job, allow_head=False)
    app.router.add_post("/v1/jobs/{jobId}/action", job_action)
    app.router.add_get("/v1/models", get_models, allow_head=False)
    app.router.add_get("/v1/models/public", get_public_models, allow_head=False)  # before {modelId}
    app.router.add_get("/v1/models/{modelId}", get_model, allow_head=False)


async def upload_asset(request: web.Request) -> web.Response:
    """POST /v1/assets: store an uploaded image (videos: 400, they go through POST /v1/uploads)."""
    emulator = emulator_of(request)
    asset = await emulator.upload(await read_body(request, max_bytes=emulator.knobs.max_json_body_bytes))
    return web.json_response({"asset": emulator.asset_json(asset, base_url(request), original=True)})


async def get_asset(request: web.Request) -> web.Response:
    """GET /v1/assets/{assetId}: the asset with a temporary signed download URL."""
    emulator = emulator_of(request)
    asset = emulator.asset(request.match_info["assetId"])
    original = query_flag(request, "originalAssets")
    return web.json_response({"asset": emulator.asset_json(asset, base_url(request), original=original)})


async def get_assets(request: web.Request) -> web.Response:
    """POST /v1/assets/get-bulk: many assets at once (`originalAssets` in the query, as scenario-sdk sends it,
    or in the body)."""
    emulator = emulator_of(request)
    body = await read_json(request)
    original = query_flag(request, "originalAssets") or (isinstance(body, dict) and body.get("originalAssets") is True)
    return web.json_response(emulator.assets_json(body, base_url(request), original=original))


async def generate(request: web.Request) -> web.Response:
    """POST /v1/generate/custom/{modelId}: validate and queue a job, or price it (`?dryRun=true`)."""
    emulator = emulator_of(request)
    body = await read_json(request)
    model_id = request.match_info["modelId"]
    if request.query.get("dryRun") in ("true", "api"):
        return web.json_response(emulator.dry_run(model_id, body), status=DRY_RUN_STATUS)
    job = emulator.create_job(model_id, body)
    if emulator.fault("lost_response"):
        return dropped(request)
    return web.json_response({"job": emulator.job_json(job), **cost_answer(job.cost_cu)})


async def list_jobs(request: web.Request) -> web.Response:
    """GET /v1/jobs: a page of the account's jobs."""
    emulator = emulator_of(request)
    if (refused := emulator.knobs.list_jobs_refused) is not None:
        raise ErrorReply(refused, "this API key may not list jobs")
    return web.json_response(emulator.list_jobs(request.query))


async def get_job(request: web.Request) -> web.Response:
    """GET /v1/jobs/{jobId}: the job's status now (a generate job or an upload's `upload` job)."""
    return web.json_response({"job": emulator_of(request).job_answer(request.match_info["jobId"])})


async def job_action(request: web.Request) -> web.Response:
    """POST /v1/jobs/{jobId}/action: generate/custom jobs cannot be canceled (400, observed); nor can uploads."""
    emulator = emulator_of(request)
    emulator.job_answer(request.match_info["jobId"])
    body = await read_json(request)
    action = body.get("action") if isinstance(body, dict) else None
    if action == "cancel":
        raise ErrorReply(400, "Cannot cancel this type of job")
    raise ErrorReply(400, f"action: {action!r} is not a job action (cancel)")


async def get_model(request: web.Request) -> web.Response:
    """GET /v1/models/{modelId}: a model and its inputs (404 for one the emulator does not serve)."""
    return web.json_response({"model": model_json(request.match_info["modelId"])})


async def get_models(request: web.Request) -> web.Response:
    """GET /v1/models: a page of the account's models, or of the public ones with ?privacy=public."""
    return web.json_response(list_models(request.query))


async def get_public_models(request: web.Request) -> web.Response:
    """GET /v1/models/public: a page of the public models."""
    return web.json_response(list_models(request.query, public=True))
