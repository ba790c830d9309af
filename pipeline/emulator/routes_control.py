"""The control routes (no auth, never faulted, not counted): stats, the job ledger and live knobs.

    GET  /_emulator/stats         counters and live job figures
    GET  /_emulator/jobs          every job: body, status, cost, original output sha256/size
    POST /_emulator/reset-stats   zero the counters
    GET  /_emulator/config        the knobs in force
    POST /_emulator/config        JSON of knob changes, e.g. {"cooldown_s": 60} or {"job_concurrency_limit": 4}
"""

from __future__ import annotations

from aiohttp import web

from pipeline.emulator.replies import ErrorReply
from pipeline.emulator.wire import emulator_of, read_json

CONFIG_BODY_MAX_BYTES = 64 * 1024


def add_routes(app: web.Application) -> None:
    app.router.add_get("/_emulator/stats", get_stats)
    app.router.add_get("/_emulator/jobs", get_jobs)
    app.router.add_post("/_emulator/reset-stats", reset_stats)
    app.router.add_get("/_emulator/config", get_config)
    app.router.add_post("/_emulator/config", post_config)


async def get_stats(request: web.Request) -> web.Response:
    """GET /_emulator/stats: counters and live job figures."""
    return web.json_response(emulator_of(request).stats())


async def get_jobs(request: web.Request) -> web.Response:
    """GET /_emulator/jobs: every job with its body, status, times, cost and output sha256/size."""
    return web.json_response({"jobs": await emulator_of(request).job_records()})


async def reset_stats(request: web.Request) -> web.Response:
    """POST /_emulator/reset-stats: zero the counters."""
    emulator = emulator_of(request)
    emulator.reset_stats()
    return web.json_response(emulator.stats())


async def get_config(request: web.Request) -> web.Response:
    """GET /_emulator/config: the knobs in force."""
    return web.json_response({"knobs": emulator_of(request).knobs.to_json()})


async def post_config(request: web.Request) -> web.Response:
    """POST /_emulator/config: change knobs live, e.g. {"revoke_auth": true} or {"credits_jobs": 0}."""
    emulator = emulator_of(request)
    try:
        changes = await read_json(request, max_bytes=CONFIG_BODY_MAX_BYTES)
        if not isinstance(changes, dict):
            raise ErrorReply(400, "body must be a JSON object of knob: value")
        knobs = emulator.configure(**changes)
    except ErrorReply as exc:
        return exc.response()
    except (TypeError, ValueError) as exc:
        return ErrorReply(400, str(exc)).response()
    return web.json_response({"knobs": knobs.to_json()})
