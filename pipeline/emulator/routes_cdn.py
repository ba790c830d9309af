"""The emulated CDN (no auth): `GET/HEAD /_cdn/{token}` with `Range`, 403 once the signed URL expired.

File-backed bytes (multipart uploads and the outputs built from them) are read in a
worker thread, 1 MiB at a time (see `media.stream_range`), and sent no faster than the
`cdn_bytes_per_s` knob says when it is set.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from pipeline.emulator.cdn import CDN_PREFIX, ByteRange, parse_range
from pipeline.emulator.faults import close_connection
from pipeline.emulator.media import stream_range
from pipeline.emulator.wire import emulator_of


def add_routes(app: web.Application) -> None:
    app.router.add_get(CDN_PREFIX + "{token}", cdn_download)  # HEAD too


async def cdn_download(request: web.Request) -> web.StreamResponse:
    """GET/HEAD /_cdn/{token}: stream an asset (Range, Content-Length), 403 once the URL expired."""
    emulator = emulator_of(request)
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
    pace = emulator.knobs.cdn_bytes_per_s
    began_s, sent = time.monotonic(), 0
    async for chunk in stream_range(layout, span.start, stop):
        await response.write(chunk)
        emulator.counters.cdn_bytes_sent += len(chunk)
        sent += len(chunk)
        if pace is not None:  # a download that goes no faster than `cdn_bytes_per_s`
            await asyncio.sleep(max(0.0, began_s + sent / pace - time.monotonic()))
    if truncate:
        close_connection(request)
    return response
