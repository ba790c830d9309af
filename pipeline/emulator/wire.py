"""What every route module shares: the app keys, request-body readers and the connection-dropping reply."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from pipeline.emulator.faults import reset_connection
from pipeline.emulator.replies import ErrorReply
from pipeline.emulator.service import Emulator
from pipeline.gcpause import IdleFreezer

EMULATOR_KEY: web.AppKey[Emulator] = web.AppKey("emulator", Emulator)
FREEZER_KEY: web.AppKey[IdleFreezer | None] = web.AppKey("freezer")
DROPPED: web.ResponseKey[bool] = web.ResponseKey("dropped", bool)  # marks a reply never sent (connection reset)
THREAD_PARSE_BYTES = 256 * 1024


def emulator_of(request: web.Request) -> Emulator:
    return request.app[EMULATOR_KEY]


def base_url(request: web.Request) -> str:
    """The origin the client reached us on (for URLs we hand out)."""
    return str(request.url.origin())


def query_flag(request: web.Request, name: str) -> bool:
    """A boolean query parameter: true only when it says `true`."""
    return request.query.get(name, "").lower() == "true"


def dropped(request: web.Request) -> web.Response:
    """Reset the connection; the returned response is never sent (aiohttp sees the client gone)."""
    reset_connection(request)
    response = web.Response()
    response[DROPPED] = True
    return response


async def read_body(request: web.Request, *, max_bytes: int) -> bytearray:
    """The raw request body (not copied again); 413 as soon as it is known to exceed `max_bytes`."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise ErrorReply(413, f"request body exceeds {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > max_bytes:
            raise ErrorReply(413, f"request body exceeds {max_bytes} bytes")
    return body


async def read_json(request: web.Request, *, max_bytes: int | None = None) -> Any:
    """The request body parsed as JSON (at most `max_bytes`, default the gateway's cap; parsed in a worker
    thread when big); 400 when not JSON."""
    limit = max_bytes if max_bytes is not None else emulator_of(request).knobs.max_json_body_bytes
    raw = await read_body(request, max_bytes=limit)
    try:
        return await asyncio.to_thread(json.loads, raw) if len(raw) > THREAD_PARSE_BYTES else json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ErrorReply(400, "request body is not valid JSON") from None
