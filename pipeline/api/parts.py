"""The multipart upload's second step: a file's parts PUT to their presigned storage URLs.

Not API calls: storage, outside the request budget (like downloads), with `Content-Type` and
`Content-Length` only, never the Authorization header (S3 refuses a second auth mechanism; the official
Blender plugin's part transfer sends only these: scenario-labs/blender-plugin `docs/SDK_UPLOADS.md`). Each
part is streamed from disk a chunk at a time, never held whole, `upload_parts_in_flight` of them at once,
and retried on its own (5xx, 408, 429, a broken connection). A 403 is an expired URL: `UrlExpired`, the
caller creates a new upload.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp

from pipeline.api.budget import sleep_unless
from pipeline.api.retry import backoff_s, parse_retry_after
from pipeline.config import Settings
from pipeline.errors import ApiError, PipelineError, RunHalted, TransientApiError

log = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024  # read from disk and handed to the socket this much at a time (1 MiB reads: +15 MiB RSS)
_NOT_OURS = frozenset({"Accept", "Accept-Encoding", "User-Agent"})  # headers aiohttp would add on its own


class UrlExpired(PipelineError):
    """Storage refused a part URL (403): its signature expired; the upload must be created again."""


@dataclass(frozen=True, slots=True)
class PartFile:
    """The open file the parts are cut from: parts of `part_bytes`, the last one shorter."""

    fd: int
    name: str
    size_bytes: int
    part_bytes: int
    mime: str

    def span(self, number: int) -> tuple[int, int]:
        """(offset, length) of part `number` (1-based)."""
        offset = (number - 1) * self.part_bytes
        return offset, max(0, min(self.part_bytes, self.size_bytes - offset))


async def send_parts(session: aiohttp.ClientSession, urls: Mapping[int, str], source: PartFile,
                     settings: Settings, *, halted: asyncio.Event, rng: random.Random) -> None:
    """PUT every part to its URL, `upload_parts_in_flight` at once; the first failure cancels the others.

    Raises UrlExpired (403), ApiError (refused), TransientApiError (retries spent), RunHalted."""
    numbers = iter(sorted(urls))

    async def worker() -> None:
        for number in numbers:
            await _put_part(session, number, urls[number], source, settings, halted=halted, rng=rng)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(settings.upload_parts_in_flight, len(urls))):
                group.create_task(worker())
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None


async def _put_part(session: aiohttp.ClientSession, number: int, url: str, source: PartFile, settings: Settings,
                    *, halted: asyncio.Event, rng: random.Random) -> None:
    offset, length = source.span(number)
    where, failures = url.split("?", 1)[0], 0  # the query holds the signature: never shown
    timeout = aiohttp.ClientTimeout(total=settings.download_timeout_s, connect=settings.connect_timeout_s)
    while True:
        if halted.is_set():
            raise RunHalted(f"the run is stopping: part {number} of {source.name} not sent")
        retry_after = None
        try:
            async with session.put(url, data=_read(source, offset, length), timeout=timeout,
                                   headers={"Content-Type": source.mime, "Content-Length": str(length)},
                                   skip_auto_headers=_NOT_OURS) as resp:
                if 200 <= resp.status < 300:
                    return
                status, retry_after = resp.status, resp.headers.get("Retry-After")
                reason = (await resp.content.read(300)).decode("utf-8", "replace").strip() or str(resp.reason)
        except (aiohttp.ClientError, ConnectionError, asyncio.TimeoutError) as exc:
            status, reason = 0, f"connection lost ({type(exc).__name__})"
        if status == 403:
            raise UrlExpired(f"storage refused part {number} (403: its URL expired?)")
        if status and status < 500 and status not in (408, 429):
            raise ApiError(status, f"storage refused part {number} of {source.name}: {reason}", url=where)
        failures += 1
        if failures > settings.max_retries:
            raise TransientApiError(status, f"part {number} of {source.name}: {reason}", url=where)
        delay = parse_retry_after(retry_after)
        if delay is None:
            delay = backoff_s(failures, base_s=settings.backoff_base_s, max_s=settings.backoff_max_s, rng=rng)
        log.debug("part %d of %s: %s; retry %d in %.2fs", number, source.name, reason, failures, delay)
        await sleep_unless(halted, delay)


async def _read(source: PartFile, offset: int, length: int) -> AsyncIterator[bytes]:
    """The part's bytes from disk, a chunk at a time (a new reader for every attempt)."""
    end = offset + length
    while offset < end:
        chunk = await asyncio.to_thread(os.pread, source.fd, min(CHUNK_BYTES, end - offset), offset)
        if not chunk:
            raise OSError(f"{source.name} became shorter while it was being uploaded")
        offset += len(chunk)
        yield chunk
