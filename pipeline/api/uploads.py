"""Uploading one local input file; its asset id (api-notes.md, "Uploading inputs", confirmed).

Images under 6 MB: base64 JSON to `POST /v1/assets`. Videos, audio (any kind but image) and bigger images: the
multipart flow, declaring the asset `kind` of the input the file is for, with the
fields of the official SDK `scenario-sdk` 2.4.0 (`types/upload_*.py`) in the order of the official Blender
plugin (scenario-labs/blender-plugin `docs/SDK_UPLOADS.md`): create the upload, PUT each part to its presigned
URL (`pipeline.api.parts`: storage, outside the request budget), `complete`, poll until `imported` and take
`entityId`. Create, complete and status are API calls (`ApiClient.call`: budget, retries, projectId).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import mimetypes
import os
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import aiofiles
import aiohttp

from pipeline.api.budget import POLL, SUBMIT, sleep_unless
from pipeline.api.parts import PartFile, UrlExpired, send_parts
from pipeline.api.retry import backoff_s
from pipeline.config import Settings
from pipeline.errors import ApiError, BadResponse, RunHalted, TransientApiError

log = logging.getLogger(__name__)


class Caller(Protocol):
    """What an upload needs of `client.ApiClient` (named here so that the client may import this module)."""

    @property
    def base_url(self) -> str: ...

    @property
    def session(self) -> aiohttp.ClientSession: ...

    async def call(self, method: str, path: str, priority: int, *, body: Any = None,
                   params: Mapping[str, str] | None = None, idempotent: bool = True) -> Any: ...

JSON_IMAGE_MAX_BYTES = 6_000_000  # "images under 6 MB" may go as JSON (MB read as 10**6: the safe side)
MAX_PARTS = 10_000
IMPORT_TIMEOUT_S = 3600.0  # an upload not imported after this long fails in this session (a resume polls on)
IMPORT_POLL_MAX_S = 5.0
FRESH_UPLOADS = 3  # uploads created for one file in one session while its part URLs keep expiring
STILL_IMPORTING = frozenset({"complete", "validating", "validated"})

Started = Callable[[str], Awaitable[None]]


class UploadFailed(ApiError):
    """The service did not import the file (`failed` with its errorMessage, or not in time, or URLs expiring)."""

    def __init__(self, upload_id: str, message: str, *, url: str = "") -> None:
        super().__init__(200, message, url=url)
        self.args = (f"{message} (upload {upload_id})",)


@dataclass(frozen=True, slots=True)
class UploadView:
    """What an upload answer says: its id, status, part URLs by number, asset id and error message."""

    upload_id: str
    status: str
    part_urls: dict[int, str]
    entity_id: str | None
    error_message: str | None


def uses_multipart(kind: str, size_bytes: int) -> bool:
    """Whether a file takes the multipart flow: every video, and images of 6 MB or more."""
    return kind != "image" or size_bytes >= JSON_IMAGE_MAX_BYTES


def content_type(name: str, kind: str) -> str:
    """The MIME type to declare for a file of this kind: as its name says, else the kind's usual one (an .mp4
    or .webm sent as audio is declared audio/...: those containers hold either)."""
    mime = mimetypes.guess_type(name)[0] or ""
    major, _, minor = mime.partition("/")
    if major == kind:
        return mime
    if {major, kind} == {"video", "audio"}:
        return f"{kind}/{minor}"
    return {"image": "image/png", "audio": "audio/mpeg"}.get(kind, "video/mp4")


def part_plan(size_bytes: int, *, part_bytes: int) -> tuple[int, int]:
    """(part size, part count): parts of `part_bytes`, larger when needed to keep to 10,000 parts."""
    size = max(part_bytes, math.ceil(size_bytes / MAX_PARTS))
    return size, max(1, math.ceil(size_bytes / size))


def parse_upload(data: Any, *, url: str) -> UploadView:
    """Read an `{"upload": {...}}` answer; BadResponse naming what is missing or malformed."""
    upload = data.get("upload") if isinstance(data, dict) else None
    if not isinstance(upload, dict):
        raise BadResponse(200, "upload answer lacks an 'upload' object", url=url)
    upload_id, status, parts = upload.get("id"), upload.get("status"), upload.get("parts")
    if not isinstance(upload_id, str) or not upload_id:
        raise BadResponse(200, "upload answer lacks upload.id", url=url)
    if not isinstance(status, str) or not status:
        raise BadResponse(200, f"upload {upload_id} answer lacks upload.status", url=url)
    if parts is not None and not isinstance(parts, list):
        raise BadResponse(200, f"upload {upload_id} answer: upload.parts is not a list", url=url)
    part_urls: dict[int, str] = {}
    for part in parts or ():
        number, part_url = (part.get("number"), part.get("url")) if isinstance(part, dict) else (None, None)
        whole = type(number) is int or (isinstance(number, float) and number.is_integer())
        if not whole or number < 1 or not isinstance(part_url, str) or not part_url.startswith(("http://", "https://")):
            raise BadResponse(200, f"upload {upload_id} answer has a malformed part: {str(part)[:120]}", url=url)
        part_urls[int(number)] = part_url
    entity, error = upload.get("entityId"), upload.get("errorMessage")
    return UploadView(upload_id, status.lower(), part_urls, entity if isinstance(entity, str) and entity else None,
                      error if isinstance(error, str) and error else None)


async def upload_input(api: Caller, settings: Settings, path: Path, *, kind: str, halted: asyncio.Event,
                       upload_id: str | None = None, started: Started | None = None,
                       rng: random.Random | None = None) -> str:
    """Upload one local input file; its asset id.

    `upload_id` is an upload an earlier session began: imported gives its asset, still importing is polled
    on, anything else (pending, failed, unknown) starts again. `started` is told each new upload id the
    moment it exists (the caller journals it). A halted run sends nothing more (RunHalted)."""
    size = (await asyncio.to_thread(path.stat)).st_size
    if not uses_multipart(kind, size):
        return await _post_image(api, path)
    fd = await asyncio.to_thread(os.open, path, os.O_RDONLY)
    try:
        sender = _Multipart(api, settings, path, fd, size, kind, halted, rng or random.Random())
        return await sender.upload(upload_id, started)
    finally:
        os.close(fd)


async def _post_image(api: Caller, path: Path) -> str:
    """An image under 6 MB: `POST /v1/assets {"name", "image": <data URL>}`; `asset.id`."""
    async with aiofiles.open(path, "rb") as handle:
        raw = await handle.read()
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    encoded = (await asyncio.to_thread(base64.b64encode, raw)).decode()
    body = {"name": path.name, "image": f"data:{mime};base64,{encoded}"}
    data = await api.call("POST", "/v1/assets", SUBMIT, body=body)
    asset = data.get("asset") if isinstance(data, dict) else None
    asset_id = asset.get("id") if isinstance(asset, dict) else None
    if not isinstance(asset_id, str) or not asset_id:
        raise BadResponse(200, "asset upload answer lacks asset.id", url=api.base_url + "/v1/assets")
    return asset_id


@dataclass(slots=True)
class _Multipart:
    """One file's multipart upload: the four steps, the part workers, the import poll."""

    api: Caller
    settings: Settings
    path: Path
    fd: int
    size: int
    kind: str  # the asset kind: video, image, audio, ...
    halted: asyncio.Event
    rng: random.Random

    async def upload(self, upload_id: str | None, started: Started | None) -> str:
        if upload_id is not None and (view := await self._resumed(upload_id)) is not None:
            return await self._imported(view)
        part_size, count = part_plan(self.size, part_bytes=self.settings.upload_part_bytes)
        kind = self.kind
        mime = content_type(self.path.name, kind)
        body = {"fileName": self.path.name, "contentType": mime, "kind": kind, "parts": count, "fileSize": self.size}
        for attempt in range(1, FRESH_UPLOADS + 1):
            # creating an upload makes no billed job: retried like a GET
            view = await self._ask("POST", "/v1/uploads", SUBMIT, body=body, parts=count)
            if started is not None:
                await started(view.upload_id)
            log.info("uploading %s: %d bytes in %d part(s) (upload %s)", self.path.name, self.size, count,
                     view.upload_id)
            source = PartFile(self.fd, self.path.name, self.size, part_size, mime)
            try:
                await send_parts(self.api.session, view.part_urls, source, self.settings, halted=self.halted,
                                 rng=self.rng)
            except UrlExpired as exc:
                log.warning("%s: %s; creating the upload again (%d/%d)", self.path.name, exc, attempt, FRESH_UPLOADS)
                continue
            return await self._imported(await self._complete(view.upload_id))
        raise UploadFailed(view.upload_id, f"storage refused the part URLs of {FRESH_UPLOADS} uploads in a row "
                           "(403: expired?)", url=self._url("/v1/uploads"))

    async def _resumed(self, upload_id: str) -> UploadView | None:
        """The earlier session's upload if it is imported or importing; None to start again."""
        try:
            view = await self._status(upload_id)
        except ApiError as exc:
            if isinstance(exc, TransientApiError) or exc.status not in (400, 404, 410):
                raise
            view = None
        if view is not None and (view.status == "imported" or view.status in STILL_IMPORTING):
            log.info("%s: continuing upload %s (%s)", self.path.name, upload_id, view.status)
            return view
        log.info("%s: upload %s is %s; starting again", self.path.name, upload_id, view and view.status or "gone")
        return None

    async def _complete(self, upload_id: str) -> UploadView:
        try:
            return await self._ask("POST", f"/v1/uploads/{quote(upload_id, safe='')}/action", SUBMIT,
                                   body={"action": "complete"}, upload_id=upload_id)
        except ApiError as exc:  # a retried complete whose first answer was lost may be refused as done
            if isinstance(exc, TransientApiError) or exc.status not in (400, 409, 422):
                raise
            view = await self._status(upload_id)
            if view.status == "pending":
                raise
            return view

    async def _imported(self, view: UploadView) -> str:
        """Poll the upload until it is imported (its asset id) or failed (UploadFailed with errorMessage)."""
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + IMPORT_TIMEOUT_S, self.settings.poll_min_interval_s
        while not (view.status == "imported" and view.entity_id):
            if view.status == "failed":
                raise UploadFailed(view.upload_id, "the service refused it: "
                                   + (view.error_message or "failed, no errorMessage given"), url=self._url())
            if loop.time() + delay > deadline:
                raise UploadFailed(view.upload_id, f"not imported after {IMPORT_TIMEOUT_S:.0f} s (still "
                                   f"{view.status}); a resume polls it again", url=self._url())
            if await sleep_unless(self.halted, delay):
                raise RunHalted(f"the run is stopping: upload {view.upload_id} of {self.path.name} not polled")
            delay = min(delay * 1.5, max(IMPORT_POLL_MAX_S, self.settings.poll_min_interval_s))
            view = await self._status(view.upload_id)
        return view.entity_id

    async def _status(self, upload_id: str) -> UploadView:
        return await self._ask("GET", f"/v1/uploads/{quote(upload_id, safe='')}", POLL, upload_id=upload_id)

    async def _ask(self, method: str, path: str, priority: int, *, body: Any = None, upload_id: str | None = None,
                   parts: int | None = None) -> UploadView:
        """One upload API call, its answer checked; a malformed one is asked again, up to max_retries times."""
        url, attempt = self._url(path), 0
        while True:
            attempt += 1
            data = await self.api.call(method, path, priority, body=body)  # retries what is transient itself
            try:
                view = parse_upload(data, url=url)
                if upload_id is not None and view.upload_id != upload_id:
                    raise BadResponse(200, f"asked for upload {upload_id}, answered {view.upload_id}", url=url)
                if parts is not None and set(view.part_urls) != set(range(1, parts + 1)):
                    raise BadResponse(200, f"upload {view.upload_id} answer has {len(view.part_urls)} part URLs "
                                      f"for {parts} parts", url=url)
                if view.status == "imported" and view.entity_id is None:
                    raise BadResponse(200, f"upload {view.upload_id} is imported but lacks entityId", url=url)
                return view
            except BadResponse as exc:
                if attempt > self.settings.max_retries:
                    raise
                delay = backoff_s(attempt, base_s=self.settings.backoff_base_s, max_s=self.settings.backoff_max_s,
                                  rng=self.rng)
                log.debug("%s %s: %s; asking again in %.2fs", method, path, exc.message, delay)
            if await sleep_unless(self.halted, delay):
                raise RunHalted(f"the run is stopping: {method} {path} not asked again")

    def _url(self, path: str = "/v1/uploads") -> str:
        return self.api.base_url + path
