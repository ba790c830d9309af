"""The emulator's aiohttp application and the middleware that applies auth, the 429s, the project and faults.

Routes: `routes_api` (assets, generate, jobs, models), `routes_uploads` (multipart
uploads and the presigned part PUTs under `/_s3/`), `routes_cdn` (`/_cdn/`
downloads) and `routes_control` (`/_emulator/*`). In front of every `/v1/*`
request, in this order: Basic auth (401), a cooldown (429 + `remainingSeconds`),
the request rate limit (429 + `Retry-After` unless off), the `projectId` check,
then faults. CDN and part requests get faults only; `/_emulator/*` nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from pipeline.emulator import routes_api, routes_cdn, routes_control, routes_uploads
from pipeline.emulator.access import retry_after_header
from pipeline.emulator.cdn import CDN_PREFIX
from pipeline.emulator.faults import FIVE_XX_STATUSES, bad_json, server_error
from pipeline.emulator.gates import cooldown_reply
from pipeline.emulator.replies import ErrorReply
from pipeline.emulator.s3 import S3_PREFIX, s3_server_error
from pipeline.emulator.service import Emulator
from pipeline.emulator.stats import ROUTE_CDN, ROUTE_CDN_HEAD, ROUTE_PART
from pipeline.emulator.wire import DROPPED, EMULATOR_KEY, FREEZER_KEY, dropped, emulator_of
from pipeline.gcpause import IdleFreezer

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(emulator: Emulator, *, freezer: IdleFreezer | None = None) -> web.Application:
    """The aiohttp application serving `emulator`; `freezer` keeps its jobs out of GC walks (see gcpause)."""
    app = web.Application(middlewares=[_guard])
    app[EMULATOR_KEY] = emulator
    app[FREEZER_KEY] = freezer
    for module in (routes_api, routes_uploads, routes_cdn, routes_control):
        module.add_routes(app)
    return app


def _route_key(request: web.Request) -> str:
    if request.path.startswith(CDN_PREFIX):
        return ROUTE_CDN_HEAD if request.method == "HEAD" else ROUTE_CDN
    if request.path.startswith(S3_PREFIX):
        return ROUTE_PART
    resource = request.match_info.route.resource
    return f"{request.method} {resource.canonical if resource is not None else 'other'}"


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count, authorise, limit and fault every `/v1/*`, `/_cdn/*` and `/_s3/*` request; log it at debug level."""
    if request.path.startswith("/_emulator/"):
        return await handler(request)
    emulator = emulator_of(request)
    freezer = request.app[FREEZER_KEY]
    started_s = asyncio.get_running_loop().time()
    emulator.counters.requests[_route_key(request)] += 1
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
    api, part = request.path.startswith("/v1/"), request.path.startswith(S3_PREFIX)
    if not (api or part or request.path.startswith(CDN_PREFIX)):
        return await handler(request)
    try:
        if api:
            _admit(emulator, request)
        if emulator.fault("reset"):
            return dropped(request)
        if emulator.fault("5xx"):
            if part:
                return s3_server_error(emulator.dice.stream("5xx").choice(FIVE_XX_STATUSES)).response()
            return server_error(emulator.dice).response()
        if api and emulator.fault("bad_json"):
            return bad_json(emulator.dice).response()
        return await handler(request)
    except ErrorReply as exc:
        return exc.response(message_key=emulator.knobs.error_message_key, trace_id=emulator.trace_id())
    except web.HTTPException as exc:  # no such route, wrong method: JSON like the rest of the API
        if exc.status < 400:
            raise
        return ErrorReply(exc.status, exc.reason).response(message_key=emulator.knobs.error_message_key)


def _admit(emulator: Emulator, request: web.Request) -> None:
    """The checks before an API request does anything; ErrorReply when it may not."""
    if not emulator.authorized(request.headers.get("Authorization")):
        emulator.counters.unauthorized += 1
        raise ErrorReply(401, "Unauthorized: missing or wrong API key",
                         headers={"WWW-Authenticate": 'Basic realm="Scenario API"'})
    cooldown_s = emulator.cooldown_left_s()
    if cooldown_s > 0:
        emulator.counters.cooldown_refused += 1
        raise cooldown_reply(cooldown_s)
    wait_s = emulator.rate_limit_wait_s()
    if wait_s > 0:
        emulator.counters.rate_limited += 1
        headers = {"Retry-After": retry_after_header(wait_s)} if emulator.knobs.send_retry_after else {}
        raise ErrorReply(429, "Too many requests", headers=headers)
    emulator.check_project(request.query.get("projectId"))
