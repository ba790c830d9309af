"""The emulator's multipart uploads over real sockets: create, presigned part PUTs, complete, statuses in time."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import random
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pipeline.emulator import EmulatorServer
from emulator_helpers import (
    AUTH,
    CLIP,
    FAST_UPLOADS,
    MIB,
    PNG,
    call,
    complete,
    create_upload,
    data_url,
    put_parts,
    settled,
    upload_file,
)

GOOD = {"fileName": "clip.mp4", "contentType": "video/mp4", "kind": "video", "parts": 1, "fileSize": len(CLIP)}


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession(headers=AUTH) as session:
        yield session


@pytest.fixture
async def server(emulator_factory: Any) -> EmulatorServer:
    return await emulator_factory(**FAST_UPLOADS)


async def raw_put(url: str, body: bytes, **headers: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as anonymous, anonymous.put(url, data=io.BytesIO(body), headers=headers) as r:
        return r.status, await r.text()


# -- create --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "named"), [
    *[({name: None}, name) for name in GOOD],
    ({"kind": "movie"}, "kind"), ({"contentType": "mp4"}, "contentType"), ({"parts": 0}, "parts"),
    ({"parts": 10_001}, "parts"), ({"parts": 1.5}, "parts"), ({"parts": True}, "parts"), ({"fileSize": -1}, "fileSize"),
    ({"fileSize": "60"}, "fileSize"), ({"fileName": ""}, "fileName"),
])
async def test_create_needs_all_five_fields(server: EmulatorServer, http: aiohttp.ClientSession,
                                            change: dict[str, Any], named: str) -> None:
    """fileName, contentType, kind, parts and fileSize are all required and checked: 400 naming the field."""
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    status, reply = await call(http, "POST", server.url + "/v1/uploads", json=body)
    assert status == 400 and named in reply["error"] and any(named in d for d in reply["details"])
    assert server.emulator.stats()["multipart_created"] == 0


async def test_create_answers_a_pending_upload_with_one_presigned_url_per_part(
        server: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """The answer is {"upload": {id upload_..., status pending, entityId null, parts [{number, url, expires}]}}."""
    upload = await create_upload(http, server, size=12 * MIB, parts=3)
    assert upload["id"].startswith("upload_") and upload["status"] == "pending" and upload["entityId"] is None
    assert [p["number"] for p in upload["parts"]] == [1, 2, 3]
    assert all("/_s3/" in p["url"] and "Signature=" in p["url"] and p["expires"].endswith("Z")
               for p in upload["parts"])
    assert (upload["source"], upload["fileSize"], upload["partsCount"]) == ("multipart", 12 * MIB, 3)


async def test_a_file_over_max_upload_bytes_is_refused_at_create(emulator_factory: Any,
                                                                 http: aiohttp.ClientSession) -> None:
    """fileSize over max_upload_bytes is a 400 naming fileSize."""
    server = await emulator_factory(max_upload_bytes=1000)
    status, reply = await call(http, "POST", server.url + "/v1/uploads", json={**GOOD, "fileSize": 1001})
    assert status == 400 and "fileSize" in reply["error"]


# -- part PUTs -----------------------------------------------------------------------------------


async def test_part_put_with_an_authorization_header_is_refused_like_s3(
        server: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """A part PUT carrying Authorization gets S3's 400 XML "only one auth mechanism allowed"; nothing is stored."""
    upload = await create_upload(http, server, size=len(CLIP))
    status, text = await raw_put(upload["parts"][0]["url"], CLIP, **AUTH)
    assert status == 400 and "<Code>InvalidArgument</Code>" in text and "Only one auth mechanism allowed" in text
    await complete(http, server, upload["id"])
    done = await settled(http, server, upload["id"])
    assert done["status"] == "failed" and "Missing parts: 1" in done["errorMessage"]
    figures = server.emulator.stats()
    assert (figures["parts_refused"], figures["parts_received"], figures["multipart_failed"]) == (1, 0, 1)


async def test_forged_and_expired_part_urls_are_403(emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """A part URL with an altered signature or past upload_url_ttl_s gets S3's 403; create again for new URLs."""
    server = await emulator_factory(upload_url_ttl_s=0.3, **FAST_UPLOADS)
    url = (await create_upload(http, server, size=len(CLIP)))["parts"][0]["url"]
    status, text = await raw_put(url.replace("Signature=", "Signature=0"), CLIP)
    assert status == 403 and "SignatureDoesNotMatch" in text
    await asyncio.sleep(0.35)
    status, text = await raw_put(url, CLIP)
    assert status == 403 and "Request has expired" in text


async def test_part_put_needs_content_length(server: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """A chunked part PUT (no Content-Length) gets S3's 411 MissingContentLength."""
    url = (await create_upload(http, server, size=len(CLIP)))["parts"][0]["url"]

    async def chunks() -> Any:
        yield CLIP

    async with aiohttp.ClientSession() as anonymous, anonymous.put(url, data=chunks()) as response:
        assert response.status == 411 and "MissingContentLength" in await response.text()


async def test_a_cut_off_part_is_not_kept_and_a_retried_part_replaces_the_first(
        server: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """A PUT whose body stops short of its Content-Length stores nothing; a part PUT twice keeps the last bytes."""
    upload = await create_upload(http, server, size=len(CLIP))
    url = upload["parts"][0]["url"]
    target = url.removeprefix("http://").split("/", 1)
    host, port = target[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"PUT /{target[1]} HTTP/1.1\r\nHost: {target[0]}\r\nContent-Length: 1000\r\n\r\n".encode() + CLIP)
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.1)
    assert server.emulator.stats()["parts_received"] == 0
    assert list(Path(server.emulator.uploads.spool.folder()).iterdir()) == []
    assert await put_parts(upload, [b"first version"]) == [200]
    assert await put_parts(upload, [CLIP]) == [200]
    await complete(http, server, upload["id"])
    done = await settled(http, server, upload["id"])
    assert done["status"] == "imported" and server.emulator.asset(done["entityId"]).body.read() == CLIP
    assert len(list(Path(server.emulator.uploads.spool.folder()).iterdir())) == 1  # the first copy is gone


async def test_a_part_still_arriving_at_complete_is_refused_and_never_used(
        server: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """A part PUT whose last bytes arrive after `complete` gets 404 NoSuchUpload; the upload fails on the missing
    part and no file of it is left."""
    upload = await create_upload(http, server, size=len(CLIP))
    halfway = asyncio.Event()

    async def slow_body() -> Any:
        yield CLIP[:10]
        halfway.set()
        await asyncio.sleep(0.3)
        yield CLIP[10:]

    async def slow_put() -> tuple[int, str]:
        async with aiohttp.ClientSession() as anonymous, anonymous.put(
                upload["parts"][0]["url"], data=slow_body(), headers={"Content-Length": str(len(CLIP))}) as r:
            return r.status, await r.text()

    put = asyncio.create_task(slow_put())
    await halfway.wait()
    await asyncio.sleep(0.05)
    await complete(http, server, upload["id"])
    status, text = await put
    assert status == 404 and "NoSuchUpload" in text
    done = await settled(http, server, upload["id"])
    assert done["status"] == "failed" and "Missing parts: 1" in done["errorMessage"]
    assert list(Path(server.emulator.uploads.spool.folder()).iterdir()) == []


async def test_part_puts_are_not_api_calls(emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """Part PUTs are outside the request rate limit and the API counts: many in a row get no 429."""
    server = await emulator_factory(rate_limit_per_s=1, rate_limit_burst=2, **FAST_UPLOADS)
    upload = await create_upload(http, server, size=6 * 10, parts=6, content_type="video/mp4")
    assert await put_parts(upload, [b"x" * 10] * 6) == [200] * 6
    figures = server.emulator.stats()
    assert figures["rate_limited"] == 0 and figures["requests"]["PUT /_s3"] == 6


async def test_faults_hit_part_puts_with_s3_bodies(emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """fault_5xx_rate applies to part PUTs too, answered in S3's XML."""
    server = await emulator_factory(**FAST_UPLOADS)
    upload = await create_upload(http, server, size=len(CLIP))
    server.emulator.configure(fault_5xx_rate=1)
    status, text = await raw_put(upload["parts"][0]["url"], CLIP)
    assert status in (500, 502, 503) and text.startswith("<?xml")


# -- complete and the statuses after --------------------------------------------------------------


async def test_complete_answers_validating_then_the_upload_moves_on_to_imported(
        emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """complete -> validating with entityId null; then validated, then imported with entityId = a new video asset,
    after upload_processing_s; updatedAt moves with each status."""
    server = await emulator_factory(upload_processing_s=0.4)
    upload = await create_upload(http, server, size=len(CLIP))
    assert await put_parts(upload, [CLIP]) == [200]
    answer = await complete(http, server, upload["id"])
    assert (answer["status"], answer["entityId"]) == ("validating", None) and "parts" not in answer
    await asyncio.sleep(0.1)
    assert (await call(http, "GET", f"{server.url}/v1/uploads/{upload['id']}"))[1]["upload"]["status"] == "validating"
    done = await settled(http, server, upload["id"])
    assert done["_seen"] == ["validating", "validated", "imported"]
    assert done["entityId"].startswith("asset_") and done["updatedAt"] > answer["updatedAt"] > upload["createdAt"]
    status, body = await call(http, "GET", f"{server.url}/v1/assets/{done['entityId']}?originalAssets=true")
    assert status == 200 and body["asset"]["kind"] == "video" and body["asset"]["properties"]["size"] == len(CLIP)


async def test_completing_again_answers_the_current_state(server: EmulatorServer,
                                                          http: aiohttp.ClientSession) -> None:
    """A second complete does not start over (unconfirmed on the real service); a wrong action is a 400."""
    upload = await create_upload(http, server, size=len(CLIP))
    await put_parts(upload, [CLIP])
    await complete(http, server, upload["id"])
    await settled(http, server, upload["id"])
    assert (await complete(http, server, upload["id"]))["status"] == "imported"
    status, reply = await call(http, "POST", f"{server.url}/v1/uploads/{upload['id']}/action", json={"action": "x"})
    assert status == 400 and "complete" in reply["error"]
    assert (await call(http, "GET", f"{server.url}/v1/uploads/upload_nope"))[0] == 404
    assert server.emulator.stats()["multipart_imported"] == 1


async def test_a_part_after_complete_gets_no_such_upload(server: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """Once completed, the upload takes no more parts (S3's 404 NoSuchUpload)."""
    upload = await create_upload(http, server, size=len(CLIP))
    await put_parts(upload, [CLIP])
    await complete(http, server, upload["id"])
    status, text = await raw_put(upload["parts"][0]["url"], CLIP)
    assert status == 404 and "NoSuchUpload" in text


@pytest.mark.parametrize(("sizes", "problem"), [
    ([MIB, 10], "EntityTooSmall"),
    ([5 * MIB - 1, 5 * MIB], "part 1 is 5242879 bytes"),
    ([5 * MIB, 5 * MIB - 1, 3], "part 2"),
])
async def test_parts_under_5_mib_but_the_last_fail_the_upload(
        server: EmulatorServer, http: aiohttp.ClientSession, sizes: list[int], problem: str) -> None:
    """Every part but the last must be at least 5 MiB (S3's EntityTooSmall): otherwise `failed` + errorMessage."""
    data = CLIP + bytes(sum(sizes) - len(CLIP))
    chunks, at = [], 0
    for size in sizes:
        chunks.append(data[at:at + size])
        at += size
    upload = await create_upload(http, server, size=len(data), parts=len(chunks))
    assert await put_parts(upload, chunks) == [200] * len(chunks)
    await complete(http, server, upload["id"])
    done = await settled(http, server, upload["id"])
    assert done["status"] == "failed" and problem in done["errorMessage"] and done["entityId"] is None


async def test_parts_of_exactly_5_mib_and_a_short_last_import(server: EmulatorServer,
                                                              http: aiohttp.ClientSession) -> None:
    """Parts of exactly 5 MiB and a 1-byte last part make a valid upload, reassembled in order."""
    data = CLIP + os.urandom(10 * MIB + 1 - len(CLIP))
    asset_id = await upload_file(http, server, data)
    assert server.emulator.asset(asset_id).sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(("data", "kind", "content_type", "problem"), [
    (random.Random(100).randbytes(100), "video", "video/mp4", "not a valid video"),
    (CLIP, "image", "image/png", "not a valid image"),
    (PNG, "video", "video/mp4", "not a valid video"),
    (CLIP, "video", "image/png", "is not a video type"),
    (CLIP, "model", "application/octet-stream", "cannot be imported"),
    (b"", "video", "video/mp4", "empty"),
], ids=["noise-as-video", "clip-as-image", "png-as-video", "clip-typed-png", "clip-as-model", "empty"])
async def test_a_file_that_is_not_its_kind_fails(server: EmulatorServer, http: aiohttp.ClientSession,
                                                 data: bytes, kind: str, content_type: str, problem: str) -> None:
    """The file must be a valid video/image of its `kind` (and contentType): otherwise `failed` naming the file."""
    upload = await create_upload(http, server, size=len(data), kind=kind, content_type=content_type)
    await put_parts(upload, [data])
    await complete(http, server, upload["id"])
    done = await settled(http, server, upload["id"])
    assert done["status"] == "failed" and problem in done["errorMessage"] and "clip.mp4" in done["errorMessage"]


async def test_an_image_upload_imports_an_image(server: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """kind image with a PNG becomes an image asset."""
    asset_id = await upload_file(http, server, PNG, kind="image", content_type="image/png")
    assert server.emulator.asset(asset_id).kind == "image"


async def test_fault_upload_failure_fails_a_good_upload(emulator_factory: Any, http: aiohttp.ClientSession) -> None:
    """fault_upload_failure_rate=1: a valid upload ends `failed` with an errorMessage."""
    server = await emulator_factory(fault_upload_failure_rate=1, **FAST_UPLOADS)
    upload = await create_upload(http, server, size=len(CLIP))
    await put_parts(upload, [CLIP])
    await complete(http, server, upload["id"])
    done = await settled(http, server, upload["id"])
    assert done["status"] == "failed" and "emulated" in done["errorMessage"]
    assert server.emulator.stats()["faults"]["upload_failure"] == 1


async def test_parts_live_in_upload_dir_and_go_when_the_server_closes(
        emulator_factory: Any, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    """Parts are files under upload_dir (never kept in memory) and are removed when the emulator closes; a
    failed upload's parts are removed at once."""
    server = await emulator_factory(upload_dir=str(tmp_path), **FAST_UPLOADS)
    asset_id = await upload_file(http, server, CLIP)
    folders = list(tmp_path.iterdir())
    assert len(folders) == 1 and len(list(folders[0].iterdir())) == 1
    assert server.emulator.asset(asset_id).body.segments[0].path.startswith(str(folders[0]))  # type: ignore[union-attr]
    bad = await create_upload(http, server, size=100)
    await put_parts(bad, [bytes(100)])
    await complete(http, server, bad["id"])
    assert (await settled(http, server, bad["id"]))["status"] == "failed"
    assert len(list(folders[0].iterdir())) == 1
    await server.close()
    assert list(tmp_path.iterdir()) == []


# -- POST /v1/assets now takes small images only -----------------------------------------------------------------


async def test_json_asset_route_refuses_videos_and_images_of_6_mb(
        server: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """POST /v1/assets: a video is a 400 "videos must be uploaded with POST /v1/uploads"; an image of 6 MB is
    a 400 too; one byte less is accepted."""
    status, reply = await call(http, "POST", server.url + "/v1/assets", json={"name": "a.mp4", "video": data_url(CLIP)})
    assert status == 400 and "videos must be uploaded with POST /v1/uploads" in reply["error"]
    big = PNG + bytes(6_000_000 - len(PNG))
    for data, expect in ((big, 400), (big[:-1], 200)):
        payload = json.dumps({"name": "big.png", "image": data_url(data, "image/png")}).encode()
        status, reply = await call(http, "POST", server.url + "/v1/assets", data=io.BytesIO(payload),
                                   headers={"Content-Type": "application/json"})
        assert status == expect, reply
    assert "POST /v1/uploads" not in str(reply) and reply["asset"]["kind"] == "image"
