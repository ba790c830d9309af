"""`UploadDesk`: the multipart uploads of one emulated account (the routes are in `routes_uploads`).

Create hands out one presigned part URL per part; each part PUT is streamed to the
spool; `complete` starts the validation; the upload's status then moves on in time
(see `multipart`). Part PUTs are not API calls: no Basic auth, no rate limit, not in
the request counts of the API routes (they are counted as `PUT /_s3`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import StreamReader

from pipeline.emulator.faults import UPLOAD_FAILURE
from pipeline.emulator.multipart import (
    MultipartUpload,
    UploadValidator,
    check_create,
    imported_asset,
    upload_json,
)
from pipeline.emulator.replies import ErrorReply
from pipeline.emulator.s3 import MAX_PART_BYTES, PartSigner, S3Error, no_such_upload, two_auth_mechanisms
from pipeline.emulator.spool import Inspection, Spool

if TYPE_CHECKING:
    from pipeline.emulator.assets import Asset
    from pipeline.emulator.clock import LoopClock
    from pipeline.emulator.faults import FaultDice
    from pipeline.emulator.knobs import EmulatorKnobs
    from pipeline.emulator.stats import Stats


class Account(Protocol):
    """What the desk needs of `service.Emulator`, which owns it (named here, so the desk does not import it)."""

    author_id: str
    clock: LoopClock
    counters: Stats

    @property
    def knobs(self) -> EmulatorKnobs: ...

    @property
    def dice(self) -> FaultDice: ...

    @property
    def owner_id(self) -> str: ...

    def now_s(self) -> float: ...

    def fault(self, kind: str) -> bool: ...

    def add_upload_asset(self, asset: Asset) -> Asset: ...


class UploadDesk:
    """Multipart uploads by id, their part files and their validation tasks."""

    def __init__(self, emulator: Account) -> None:
        self._emulator = emulator
        self._uploads: dict[str, MultipartUpload] = {}
        self._by_job: dict[str, MultipartUpload] = {}  # completed uploads by the id of their `upload` job
        self._signer = PartSigner(os.urandom(32))
        self.spool = Spool(emulator.knobs.upload_dir)
        self._validator = UploadValidator(self.spool, now=emulator.now_s, on_valid=self._import,
                                          on_failed=self._failed)

    def __len__(self) -> int:
        return len(self._uploads)

    def create(self, body: Any, *, base_url: str) -> MultipartUpload:
        """`POST /v1/uploads`: a pending upload with one presigned URL per part (ErrorReply 400 on a bad body)."""
        emulator = self._emulator
        fields = check_create(body, max_bytes=emulator.knobs.max_upload_bytes)
        upload_id, now_s = emulator.dice.new_id("upload"), emulator.now_s()
        expires_s = now_s + emulator.knobs.upload_url_ttl_s
        expires_ms, expires_iso = emulator.clock.wall_ms(expires_s), emulator.clock.iso(expires_s)
        parts = [{"number": n, "url": self._signer.url(base_url, upload_id, n, expires_ms), "expires": expires_iso}
                 for n in range(1, fields["parts_count"] + 1)]
        upload = MultipartUpload(upload_id, created_s=now_s, parts=parts, **fields)
        self._uploads[upload_id] = upload
        emulator.counters.multipart_created += 1
        return upload

    def get(self, upload_id: str) -> MultipartUpload:
        """An upload by id; 404 otherwise."""
        upload = self._uploads.get(upload_id)
        if upload is None:
            raise ErrorReply(404, f"Upload not found: {upload_id}")
        return upload

    def job_of(self, job_id: str) -> MultipartUpload | None:
        """The completed upload whose `upload` job this is, if any."""
        return self._by_job.get(job_id)

    def completed(self) -> list[MultipartUpload]:
        """Every completed upload (each has an `upload` job)."""
        return list(self._by_job.values())

    def to_json(self, upload: MultipartUpload) -> dict[str, Any]:
        emulator = self._emulator
        return upload_json(upload, emulator.now_s(), iso=emulator.clock.iso, author_id=emulator.author_id,
                           owner_id=emulator.owner_id)

    def complete(self, upload_id: str, body: Any) -> MultipartUpload:
        """`POST /v1/uploads/{id}/action {"action": "complete"}`: validation starts; the answer says `validating`.

        Completing an upload again answers its current state (unconfirmed on the real service)."""
        upload = self.get(upload_id)
        action = body.get("action") if isinstance(body, dict) else None
        if action != "complete":
            raise ErrorReply(400, f"action: must be 'complete', not {action!r}")
        if upload.completed_s is None:
            emulator = self._emulator
            upload.completed_s = emulator.now_s()
            upload.processing_s = emulator.knobs.upload_processing_s
            upload.job_id = emulator.dice.new_id("job")
            self._by_job[upload.job_id] = upload
            self._validator.start(upload, fated_error=UPLOAD_FAILURE if emulator.fault("upload_failure") else None)
        return upload

    async def receive_part(self, key: str, query: Mapping[str, str], headers: Mapping[str, str],
                           content: StreamReader) -> str:
        """`PUT` one part to its presigned URL: stream it to the spool; its ETag. S3Error when refused."""
        if "Authorization" in headers:
            raise two_auth_mechanisms()
        emulator = self._emulator
        grant = self._signer.check(key, query, emulator.clock.wall_ms(emulator.now_s()))
        upload = self._uploads.get(grant.upload_id)
        if upload is None or upload.completed_s is not None:
            raise no_such_upload()
        length_text = headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            raise S3Error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
        length = int(length_text)
        if length > min(MAX_PART_BYTES, emulator.knobs.max_upload_bytes):
            raise S3Error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
        path = self.spool.part_path(upload.upload_id, grant.number)
        try:
            size, md5 = await self.spool.receive(content, path, length=length)
        except ValueError as exc:
            raise S3Error(400, "IncompleteBody", f"You did not provide the number of bytes specified by the "
                                                 f"Content-Length HTTP header ({exc})") from None
        if upload.completed_s is not None:  # completed while this part was arriving: too late for it
            await self.spool.remove([path])
            raise no_such_upload()
        earlier = upload.received.get(grant.number)
        upload.received[grant.number] = (path, size)  # no await since the check: the record and state agree
        emulator.counters.parts_received += 1
        emulator.counters.part_bytes += size
        if earlier is not None:
            await self.spool.remove([earlier[0]])
        return f'"{md5}"'

    def _import(self, upload: MultipartUpload, found: Inspection) -> str:
        emulator = self._emulator
        asset = imported_asset(upload, found, asset_id=emulator.dice.new_id("asset"), now_s=emulator.now_s())
        emulator.add_upload_asset(asset)
        emulator.counters.multipart_imported += 1
        if found.size != upload.file_size:
            emulator.counters.multipart_size_mismatch += 1
        return asset.asset_id

    def _failed(self, upload: MultipartUpload) -> None:
        self._emulator.counters.multipart_failed += 1

    async def close(self) -> None:
        """Stop validations and remove every part file."""
        await self._validator.close()
        await self.spool.close()
