"""Multipart uploads (`POST /v1/uploads`): create, PUT parts to presigned URLs, complete, then validate in time.

The flow of api-notes "Uploading inputs" (confirmed): `pending` until `complete`,
then `validating`, `validated` and `imported` with `entityId` (the new asset id),
or `failed` with `errorMessage`. The upload's fields are those of scenario-sdk 2.4.0
`types/upload_create_response.py` (`Upload`). The timeline is lazy: the status is
computed from timestamps when asked. The one piece of real work, reading the parts
back to hash and check them, runs once in a worker thread as soon as the upload
is completed; the upload is never shown `validated` before that work is done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.emulator.assets import Asset
from pipeline.emulator.media import looks_like_audio, looks_like_image, looks_like_mp4
from pipeline.emulator.replies import ErrorReply
from pipeline.emulator.s3 import MAX_PARTS, MIN_PART_BYTES
from pipeline.emulator.spool import Inspection, Spool, inspect, spans_of

log = logging.getLogger(__name__)

UPLOAD_KINDS = ("3d", "asset", "audio", "avatar", "image", "model", "text", "video")  # scenario-sdk: Upload.kind
IMPORTED_KINDS = ("video", "image", "audio")  # what this emulator turns into assets
VALIDATING_SHARE = 0.6  # of the processing time spent `validating`; the rest `validated`


@dataclass(slots=True, eq=False)
class MultipartUpload:
    """One upload: what was declared, the parts received (number -> (path, size)) and its fate."""

    upload_id: str
    file_name: str
    content_type: str
    kind: str
    file_size: int
    parts_count: int
    created_s: float
    parts: list[dict[str, Any]]  # [{"number", "url", "expires"}], as created
    received: dict[int, tuple[str, int]] = field(default_factory=dict)
    completed_s: float | None = None
    processing_s: float = 0.0  # the knob's value when completed
    done_s: float | None = None  # when validation finished
    asset_id: str | None = None
    error: str | None = None
    job_id: str | None = None  # the `upload` job that imports it, from `complete` on

    def status(self, now_s: float) -> tuple[str, float]:
        """The status shown at `now_s` and when it began (`updatedAt`)."""
        if self.completed_s is None:
            return "pending", self.created_s
        ready_s = self.completed_s + VALIDATING_SHARE * self.processing_s
        if self.done_s is None or now_s < ready_s:
            return "validating", self.completed_s
        ready_s = max(ready_s, self.done_s)
        if self.error is not None:
            return "failed", ready_s
        imported_s = max(ready_s, self.completed_s + self.processing_s)
        return ("validated", ready_s) if now_s < imported_s else ("imported", imported_s)


def check_create(body: Any, *, max_bytes: int) -> dict[str, Any]:
    """The checked fields of a create body; ErrorReply 400 naming every faulty field (all five are required)."""
    if not isinstance(body, dict):
        raise ErrorReply(400, "request body must be a JSON object")
    problems = []
    for name in ("fileName", "contentType"):
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{name}: is required (a non-empty string)")
    content_type = body.get("contentType")
    if isinstance(content_type, str) and content_type.strip() and "/" not in content_type:
        problems.append(f"contentType: {content_type!r} is not a MIME type such as video/mp4")
    if body.get("kind") not in UPLOAD_KINDS:
        problems.append(f"kind: is required, one of {', '.join(UPLOAD_KINDS)}")
    for name, low, high in (("parts", 1, MAX_PARTS), ("fileSize", 0, max_bytes)):
        value = body.get(name)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if name not in body:
            problems.append(f"{name}: is required (a whole number)")
        elif isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{name}: must be a whole number, not {value!r}")
        elif not low <= value <= high:
            problems.append(f"{name}: {value} is out of range {low}..{high}")
    if problems:
        raise ErrorReply(400, "Invalid upload: " + "; ".join(problems), details=problems)
    return {"file_name": body["fileName"], "content_type": body["contentType"], "kind": body["kind"],
            "parts_count": int(body["parts"]), "file_size": int(body["fileSize"])}


def parts_problem(upload: MultipartUpload) -> str | None:
    """Why the received parts cannot make the file (missing, or too small but the last), as S3 would say."""
    missing = [n for n in range(1, upload.parts_count + 1) if n not in upload.received]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        return f"Missing parts: {shown} (of {upload.parts_count}); every part must be uploaded before completing"
    for number in range(1, upload.parts_count):
        size = upload.received[number][1]
        if size < MIN_PART_BYTES:
            return (f"EntityTooSmall: Your proposed upload is smaller than the minimum allowed size (part {number} "
                    f"is {size} bytes; every part but the last must be at least {MIN_PART_BYTES} bytes)")
    return None


def media_problem(upload: MultipartUpload, found: Inspection) -> str | None:
    """Why the file is not a valid asset of its `kind`, or None."""
    kind, name = upload.kind, upload.file_name
    if kind not in IMPORTED_KINDS:
        return f"{name}: kind {kind!r} cannot be imported here (the emulator imports video, image and audio files)"
    if found.size == 0:
        return f"{name}: the file is empty"
    if not upload.content_type.startswith(f"{kind}/"):
        return f"{name}: contentType {upload.content_type!r} is not a {kind} type ({kind}/...)"
    if kind == "video" and not looks_like_mp4(found.head):
        return f"{name}: not a valid video file (no MP4 'ftyp' box at the start)"
    if kind == "image" and not looks_like_image(found.head):
        return f"{name}: not a valid image file (not PNG, JPEG, GIF or WebP)"
    if kind == "audio" and not looks_like_audio(found.head):
        return f"{name}: not a valid audio file (not MP3, WAV, Ogg, FLAC or M4A)"
    return None


class UploadValidator:
    """Runs each completed upload's validation as a task (kept here until it ends; `close` cancels them)."""

    def __init__(self, spool: Spool, *, now: Callable[[], float],
                 on_valid: Callable[[MultipartUpload, Inspection], str],
                 on_failed: Callable[[MultipartUpload], None]) -> None:
        self._spool, self._now, self._on_valid, self._on_failed = spool, now, on_valid, on_failed
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, upload: MultipartUpload, *, fated_error: str | None) -> None:
        task = asyncio.get_running_loop().create_task(self._validate(upload, fated_error))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _validate(self, upload: MultipartUpload, fated_error: str | None) -> None:
        try:
            error = fated_error or parts_problem(upload)
            if error is None:
                layout = spans_of([upload.received[n] for n in range(1, upload.parts_count + 1)])
                found = await asyncio.to_thread(inspect, layout, video=upload.kind == "video")
                error = media_problem(upload, found)
                if error is None:
                    upload.asset_id = self._on_valid(upload, found)
        except OSError as exc:
            error = f"{upload.file_name}: the parts could not be read back ({exc})"
        upload.error = error
        upload.done_s = self._now()
        if error is not None:
            log.info("upload %s failed: %s", upload.upload_id, error)
            self._on_failed(upload)
            await self._spool.remove([path for path, _ in upload.received.values()])

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def upload_json(upload: MultipartUpload, now_s: float, *, iso: Callable[[float], str | None], author_id: str,
                owner_id: str) -> dict[str, Any]:
    """The upload as `GET /v1/uploads/{id}` shows it at `now_s` (scenario-sdk `Upload`)."""
    status, updated_s = upload.status(now_s)
    out: dict[str, Any] = {
        "id": upload.upload_id, "status": status, "source": "multipart", "kind": upload.kind,
        "fileName": upload.file_name, "originalFileName": upload.file_name, "contentType": upload.content_type,
        "fileSize": upload.file_size, "partsCount": upload.parts_count, "authorId": author_id, "ownerId": owner_id,
        "createdAt": iso(upload.created_s), "updatedAt": iso(updated_s),
        "entityId": upload.asset_id if status == "imported" else None,
    }
    if upload.job_id is not None:
        out["jobId"] = upload.job_id
    if status == "pending":
        out["parts"] = upload.parts
    if status == "failed":
        out["errorMessage"] = upload.error
    return out


def imported_asset(upload: MultipartUpload, found: Inspection, *, asset_id: str, now_s: float) -> Asset:
    """The asset a valid upload becomes: its parts on disk, in order, are its bytes."""
    layout = spans_of([upload.received[n] for n in range(1, upload.parts_count + 1)])
    return Asset(asset_id, upload.file_name, upload.kind, upload.content_type, now_s,  # type: ignore[arg-type]
                 found.size, body=layout, sha256=found.digest.hexdigest(), digest=found.digest,
                 open_box_at=found.open_box_at)
