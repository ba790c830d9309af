"""Helpers of the emulator's HTTP tests: raw calls, the multipart upload flow, jobs polled to the end."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
from typing import Any

import aiohttp

from pipeline.emulator import EMULATOR_API_KEY, EMULATOR_API_SECRET, Emulator, EmulatorServer
from pipeline.manifest.params import MODEL_ID

AUTH = {"Authorization": aiohttp.encode_basic_auth(EMULATOR_API_KEY, EMULATOR_API_SECRET)}
GENERATE = f"/v1/generate/custom/{MODEL_ID}"
# a tiny file shaped like an MP4: ftyp, moov and mdat boxes
CLIP = (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
        + b"\x00\x00\x00\x10moov" + bytes(8) + b"\x00\x00\x00\x14mdat" + b"frame-bytes!")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(24)
MIB = 2**20
FINAL = ("success", "failure", "canceled")
FAST_UPLOADS: dict[str, Any] = {"upload_processing_s": 0.02}


def data_url(data: bytes, mime: str = "video/mp4") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


async def call(http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    """One request: (status, parsed JSON or raw text)."""
    async with http.request(method, url, **kwargs) as response:
        raw = await response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode("utf-8", "replace")


async def create_upload(http: aiohttp.ClientSession, server: EmulatorServer, *, size: int, parts: int = 1,
                        kind: str = "video", content_type: str = "video/mp4", name: str = "clip.mp4") -> dict[str, Any]:
    status, body = await call(http, "POST", server.url + "/v1/uploads", json={
        "fileName": name, "contentType": content_type, "kind": kind, "parts": parts, "fileSize": size})
    assert status == 200, body
    return body["upload"]


async def put_parts(upload: dict[str, Any], chunks: list[bytes], **headers: str) -> list[int]:
    """PUT each chunk to its part URL with no Authorization header (as S3 wants); the statuses."""
    statuses = []
    async with aiohttp.ClientSession() as anonymous:
        for part, chunk in zip(upload["parts"], chunks, strict=True):
            async with anonymous.put(part["url"], data=io.BytesIO(chunk),
                                     headers={"Content-Type": "video/mp4", "Content-Length": str(len(chunk)),
                                              **headers}) as r:
                statuses.append(r.status)
    return statuses


async def complete(http: aiohttp.ClientSession, server: EmulatorServer, upload_id: str) -> dict[str, Any]:
    status, body = await call(http, "POST", f"{server.url}/v1/uploads/{upload_id}/action", json={"action": "complete"})
    assert status == 200, body
    return body["upload"]


async def settled(http: aiohttp.ClientSession, server: EmulatorServer, upload_id: str) -> dict[str, Any]:
    """Poll the upload every 10 ms until imported or failed; the statuses seen are under `_seen`."""
    seen: list[str] = []
    for _ in range(1000):
        status, body = await call(http, "GET", f"{server.url}/v1/uploads/{upload_id}")
        assert status == 200, body
        if not seen or seen[-1] != body["upload"]["status"]:
            seen.append(body["upload"]["status"])
        if body["upload"]["status"] in ("imported", "failed"):
            return {**body["upload"], "_seen": seen}
        await asyncio.sleep(0.01)
    raise AssertionError(f"upload {upload_id} never settled: {seen}")


async def upload_file(http: aiohttp.ClientSession, server: EmulatorServer, data: bytes = CLIP, *,
                      part_bytes: int = 5 * MIB, kind: str = "video", content_type: str = "video/mp4") -> str:
    """The whole multipart flow for `data`; the imported asset's id."""
    chunks = [data[i:i + part_bytes] for i in range(0, len(data), part_bytes)] or [b""]
    upload = await create_upload(http, server, size=len(data), parts=len(chunks), kind=kind,
                                 content_type=content_type)
    assert await put_parts(upload, chunks) == [200] * len(chunks)
    await complete(http, server, upload["id"])
    done = await settled(http, server, upload["id"])
    assert done["status"] == "imported", done
    return str(done["entityId"])


async def upload_image(http: aiohttp.ClientSession, server: EmulatorServer, data: bytes = PNG) -> str:
    """An image under 6 MB through POST /v1/assets; its asset id."""
    payload = json.dumps({"name": "input.png", "image": data_url(data, "image/png")}).encode()
    status, body = await call(http, "POST", server.url + "/v1/assets", data=io.BytesIO(payload),
                              headers={"Content-Type": "application/json"})
    assert status == 200, body
    return str(body["asset"]["id"])


async def upload(http: aiohttp.ClientSession, server: EmulatorServer, data: bytes = CLIP, kind: str = "video") -> str:
    """An input of either kind, the way the notes say it goes (video: multipart; small image: JSON)."""
    return await upload_file(http, server, data) if kind == "video" else await upload_image(http, server, data)


async def generate(http: aiohttp.ClientSession, server: EmulatorServer, **params: Any) -> tuple[int, Any]:
    return await call(http, "POST", server.url + GENERATE, json=params)


async def new_job(http: aiohttp.ClientSession, server: EmulatorServer, video: str, **params: Any) -> str:
    status, body = await generate(http, server, prompt=params.pop("prompt", "a fox"), video=video, **params)
    assert status == 200, body
    return str(body["job"]["jobId"])


async def job(http: aiohttp.ClientSession, server: EmulatorServer, job_id: str) -> dict[str, Any]:
    status, body = await call(http, "GET", f"{server.url}/v1/jobs/{job_id}")
    assert status == 200, body
    return dict(body["job"])


async def finished(http: aiohttp.ClientSession, server: EmulatorServer, job_id: str) -> dict[str, Any]:
    """Poll every 10 ms until the job is final; the list of statuses seen is under `_seen`."""
    seen: list[str] = []
    for _ in range(1000):
        current = await job(http, server, job_id)
        if not seen or seen[-1] != current["status"]:
            seen.append(current["status"])
        if current["status"] in FINAL:
            return {**current, "_seen": seen}
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {job_id} never finished: {seen}")


async def output_url(http: aiohttp.ClientSession, server: EmulatorServer, job_id: str, *,
                     original: bool = True) -> str:
    done = await finished(http, server, job_id)
    asset_id = done["metadata"]["assetIds"][0]
    query = "?originalAssets=true" if original else ""
    status, body = await call(http, "GET", f"{server.url}/v1/assets/{asset_id}{query}")
    assert status == 200, body
    return str(body["asset"]["url"])


async def stats(http: aiohttp.ClientSession, server: EmulatorServer) -> dict[str, Any]:
    status, body = await call(http, "GET", server.url + "/_emulator/stats")
    assert status == 200
    return dict(body)


class Threaded:
    """An emulator serving from its own thread and loop (`url`, `server.emulator`, `stop()`), for commands that run
    synchronously (`asyncio.run` inside): `requests(route)` counts what reached it."""

    def __init__(self, **knobs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = EmulatorServer(Emulator(**knobs), host="127.0.0.1", port=0)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(5)
        self.url = self.server.url
        self.running = True

    def requests(self, route: str) -> int:
        return self.server.emulator.counters.requests[route]

    @property
    def fetches(self) -> int:
        """`GET /v1/models/{modelId}` requests."""
        return self.requests("GET /v1/models/{modelId}")

    def job_records(self) -> list[dict[str, Any]]:
        return asyncio.run_coroutine_threadsafe(self.server.emulator.job_records(), self.loop).result(5)

    def stop(self) -> None:
        if self.running:
            asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(5)
            self.running = False

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
