"""The emulator's HTTP routes (aiohttp) and the middleware that applies auth, the rate limit and faults.

API routes (`/v1/*`, HTTP Basic auth):
    POST /v1/assets                          upload -> {"asset": {...}}
    GET  /v1/assets/{assetId}                -> {"asset": {..., "url", "size"}}
    POST /v1/generate/custom/{modelId}       -> {"job": {...}}
    GET  /v1/jobs/{jobId}                    -> {"job": {...}}
CDN (no auth): GET/HEAD /_cdn/{token}, with Range.
Control (no auth, never faulted, not counted):
    GET /_emulator/stats, GET /_emulator/jobs, POST /_emulator/reset-stats,
    GET /_emulator/config, POST /_emulator/config (JSON of knob changes).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from pipeline.emulator.access import retry_after_header
from pipeline.emulator.cdn import CDN_PREFIX, ByteRange, parse_range
from pipeline.emulator.faults import bad_json, close_connection, reset_connection, server_error
from pipeline.emulator.replies import ErrorReply
from pipeline.emulator.service import Emulator
from pipeline.emulator.stats import ROUTE_CDN, ROUTE_CDN_HEAD
from pipeline.gcpause import IdleFreezer

log = logging.getLogger(__name__)

EMULATOR_KEY: web.AppKey[Emulator] = web.AppKey("emulator", Emulator)
FREEZER_KEY: web.AppKey[IdleFreezer | None] = web.AppKey("freezer")
DROPPED: web.ResponseKey[bool] = web.ResponseKey("dropped", bool)  # marks a reply never sent (connection reset)
GENERATE_BODY_MAX_BYTES = 1 * 2**20
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(emulator: Emulator, *, freezer: IdleFreezer | None = None) -> web.Application:
    """The aiohttp application serving `emulator`; `freezer` keeps its jobs out of GC walks (see gcpause)."""
    app = web.Application(middlewares=[_guard])
    app[EMULATOR_KEY] = emulator
    app[FREEZER_KEY] = freezer
    app.router.add_post("/v1/assets", upload_asset)
    app.router.add_get("/v1/assets/{assetId}", get_asset, allow_head=False)
    app.router.add_post("/v1/generate/custom/{modelId}", generate)
    app.router.add_get("/v1/jobs/{jobId}", get_job, allow_head=False)
    app.router.add_get(CDN_PREFIX + "{token}", cdn_download)  # HEAD too
    app.router.add_get("/_emulator/stats", get_stats)
    app.router.add_get("/_emulator/jobs", get_jobs)
    app.router.add_post("/_emulator/reset-stats", reset_stats)
    app.router.add_get("/_emulator/config", get_config)
    app.router.add_post("/_emulator/config", post_config)
    return app


def _emulator(request: web.Request) -> Emulator:
    return request.app[EMULATOR_KEY]


def _route_key(request: web.Request) -> str:
    if request.path.startswith(CDN_PREFIX):
        return ROUTE_CDN_HEAD if request.method == "HEAD" else ROUTE_CDN
    resource = request.match_info.route.resource
    return f"{request.method} {resource.canonical if resource is not None else 'other'}"


def dropped(request: web.Request) -> web.Response:
    """Reset the connection; the returned response is never sent (aiohttp sees the client gone)."""
    reset_connection(request)
    response = web.Response()
    response[DROPPED] = True
    return response


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count, authorise, rate-limit and fault every `/v1/*` and `/_cdn/*` request; log it at debug level."""
    if request.path.startswith("/_emulator/"):
        return await handler(request)
    emulator = _emulator(request)
    freezer = request.app[FREEZER_KEY]
    started_s = asyncio.get_running_loop().time()
    route = _route_key(request)
    emulator.counters.requests[route] += 1
    outcome = "error"
    if freezer is not None:
        freezer.started()
    try:
        response = await _serve(emulator, request, handler)
        outcome = "reset" if response.get(DROPPED) else str(response.status)
        return response
    finally:
        if freezer is not None:
            freezer.finished(emulator.counters.jobs_created)
        emulator.counters.responses[outcome] += 1
        log.debug("%s %s -> %s in %.1f ms", request.method, request.path[:72], outcome,
                  (asyncio.get_running_loop().time() - started_s) * 1000)


async def _serve(emulator: Emulator, request: web.Request, handler: Handler) -> web.StreamResponse:
    api = request.path.startswith("/v1/")
    if not api and not request.path.startswith(CDN_PREFIX):
        return await handler(request)
    if api:
        if not emulator.authorized(request.headers.get("Authorization")):
            emulator.counters.unauthorized += 1
            return ErrorReply(401, "Unauthorized: missing or wrong API key",
                              headers={"WWW-Authenticate": 'Basic realm="Scenario API"'}).response()
        wait_s = emulator.rate_limit_wait_s()
        if wait_s > 0:
            emulator.counters.rate_limited += 1
            headers = {"Retry-After": retry_after_header(wait_s)} if emulator.knobs.send_retry_after else {}
            return ErrorReply(429, "Too many requests", headers=headers).response()
    if emulator.fault("reset"):
        return dropped(request)
    if emulator.fault("5xx"):
        return server_error(emulator.dice).response()
    if api and emulator.fault("bad_json"):
        return bad_json(emulator.dice).response()
    try:
        return await handler(request)
    except ErrorReply as exc:
        return exc.response()
    except web.HTTPException as exc:  # no such route, wrong method: JSON like the rest of the API
        if exc.status < 400:
            raise
        return ErrorReply(exc.status, exc.reason).response()


async def _read_body(request: web.Request, *, max_bytes: int) -> bytearray:
    """The raw request body (not copied again); 413 as soon as it is known to exceed `max_bytes`."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise ErrorReply(413, f"request body exceeds {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > max_bytes:
            raise ErrorReply(413, f"request body exceeds {max_bytes} bytes")
    return body


async def _read_json(request: web.Request, *, max_bytes: int) -> Any:
    """The request body parsed as JSON (small bodies only: the limit keeps parsing short); 400 when not JSON."""
    try:
        return json.loads(await _read_body(request, max_bytes=max_bytes))
    except (ValueError, UnicodeDecodeError):
        raise ErrorReply(400, "request body is not valid JSON") from None


async def upload_asset(request: web.Request) -> web.Response:
    """POST /v1/assets: store an uploaded video or image."""
    emulator = _emulator(request)
    limit = emulator.knobs.max_upload_bytes * 4 // 3 + 64 * 1024  # base64 plus the JSON around it
    asset = await emulator.upload(await _read_body(request, max_bytes=limit))
    return web.json_response({"asset": asset.to_json()})


async def get_asset(request: web.Request) -> web.Response:
    """GET /v1/assets/{assetId}: the asset with a temporary signed download URL."""
    emulator = _emulator(request)
    asset = emulator.asset(request.match_info["assetId"])
    return web.json_response({"asset": emulator.asset_json(asset, str(request.url.origin()))})


async def generate(request: web.Request) -> web.Response:
    """POST /v1/generate/custom/{modelId}: validate and queue a job."""
    emulator = _emulator(request)
    body = await _read_json(request, max_bytes=GENERATE_BODY_MAX_BYTES)
    job = emulator.create_job(request.match_info["modelId"], body)
    if emulator.fault("lost_response"):
        return dropped(request)
    return web.json_response({"job": emulator.job_json(job, fresh=True)})


async def get_job(request: web.Request) -> web.Response:
    """GET /v1/jobs/{jobId}: the job's status now."""
    emulator = _emulator(request)
    return web.json_response({"job": emulator.job_json(emulator.job(request.match_info["jobId"]))})


async def cdn_download(request: web.Request) -> web.StreamResponse:
    """GET/HEAD /_cdn/{token}: stream an asset (Range, Content-Length), 403 once the URL expired."""
    emulator = _emulator(request)
    asset, layout = emulator.download(request.match_info["token"])
    size = layout.size
    wanted = parse_range(request.headers.get("Range"), size)
    headers = {"Accept-Ranges": "bytes", "Content-Type": asset.mime_type}
    if wanted == "unsatisfiable":
        return web.Response(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    span = wanted if isinstance(wanted, ByteRange) else ByteRange(0, size)
    response = web.StreamResponse(status=206 if isinstance(wanted, ByteRange) else 200, headers=headers)
    if isinstance(wanted, ByteRange):
        response.headers["Content-Range"] = span.content_range(size)
    response.content_length = span.end - span.start
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    truncate = span.end > span.start and emulator.fault("truncate")
    stop = span.start + (span.end - span.start) // 2 if truncate else span.end
    for chunk in layout.iter_range(span.start, stop):
        await response.write(chunk)
        emulator.counters.cdn_bytes_sent += len(chunk)
    if truncate:
        close_connection(request)
    return response


async def get_stats(request: web.Request) -> web.Response:
    """GET /_emulator/stats: counters and live job figures."""
    return web.json_response(_emulator(request).stats())


async def get_jobs(request: web.Request) -> web.Response:
    """GET /_emulator/jobs: every job with its body, status, times and output sha256/size."""
    return web.json_response({"jobs": await _emulator(request).job_records()})


async def reset_stats(request: web.Request) -> web.Response:
    """POST /_emulator/reset-stats: zero the counters."""
    emulator = _emulator(request)
    emulator.reset_stats()
    return web.json_response(emulator.stats())


async def get_config(request: web.Request) -> web.Response:
    """GET /_emulator/config: the knobs in force."""
    return web.json_response({"knobs": _emulator(request).knobs.to_json()})


async def post_config(request: web.Request) -> web.Response:
    """POST /_emulator/config: change knobs live, e.g. {"revoke_auth": true} or {"credits_jobs": 0}."""
    emulator = _emulator(request)
    try:
        changes = await _read_json(request, max_bytes=GENERATE_BODY_MAX_BYTES)
        if not isinstance(changes, dict):
            raise ErrorReply(400, "body must be a JSON object of knob: value")
        knobs = emulator.configure(**changes)
    except ErrorReply as exc:
        return exc.response()
    except (TypeError, ValueError) as exc:
        return ErrorReply(400, str(exc)).response()
    return web.json_response({"knobs": knobs.to_json()})
