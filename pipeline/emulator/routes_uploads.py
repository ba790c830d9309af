"""The multipart upload routes (api-notes "Uploading inputs", confirmed; the state lives in `desk`).

API (HTTP Basic auth):
    POST /v1/uploads                     {fileName, contentType, kind, parts, fileSize} -> {"upload": {..., parts}}
    GET  /v1/uploads/{uploadId}          -> {"upload": {...}}: pending, validating, validated, imported | failed
    POST /v1/uploads/{uploadId}/action   {"action": "complete"} -> {"upload": {"status": "validating", ...}}
Object store (no Basic auth: the presigned URL is the credential; an Authorization header gets 400):
    PUT  /_s3/{bucket}/{uploadId}?partNumber=N&uploadId=..&Expires=..&Signature=..   -> 200, ETag
"""

from __future__ import annotations

from aiohttp import web

from pipeline.emulator.s3 import S3_PREFIX, S3Error
from pipeline.emulator.wire import base_url, emulator_of, read_json


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/uploads", create_upload)
    app.router.add_get("/v1/uploads/{uploadId}", get_upload, allow_head=False)
    app.router.add_post("/v1/uploads/{uploadId}/action", upload_action)
    app.router.add_put(S3_PREFIX + "{bucket}/{key}", put_part)


async def create_upload(request: web.Request) -> web.Response:
    """POST /v1/uploads: a pending upload and its presigned part URLs."""
    desk = emulator_of(request).uploads
    upload = desk.create(await read_json(request), base_url=base_url(request))
    return web.json_response({"upload": desk.to_json(upload)})


async def get_upload(request: web.Request) -> web.Response:
    """GET /v1/uploads/{uploadId}: the upload's status now (`entityId` once imported)."""
    desk = emulator_of(request).uploads
    return web.json_response({"upload": desk.to_json(desk.get(request.match_info["uploadId"]))})


async def upload_action(request: web.Request) -> web.Response:
    """POST /v1/uploads/{uploadId}/action: `complete` starts the validation."""
    desk = emulator_of(request).uploads
    desk.get(request.match_info["uploadId"])  # 404 before reading the body
    upload = desk.complete(request.match_info["uploadId"], await read_json(request))
    return web.json_response({"upload": desk.to_json(upload)})


async def put_part(request: web.Request) -> web.StreamResponse:
    """PUT one part's bytes to its presigned URL; streamed to disk, never held in memory."""
    emulator = emulator_of(request)
    try:
        etag = await emulator.uploads.receive_part(request.match_info["key"], request.query, request.headers,
                                                   request.content)
    except S3Error as exc:
        emulator.counters.parts_refused += 1
        return exc.response()
    return web.Response(status=200, headers={"ETag": etag})
