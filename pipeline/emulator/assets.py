"""Assets of the emulated account: uploaded inputs (bytes kept once) and job outputs (built on demand).

The upload format is the JSON one of the API notes, which is *unconfirmed* on
the real service (large videos may need a multipart flow there):
`POST /v1/assets {"name": "<file name>", "video"|"image": "data:<mime>;base64,..."}`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.emulator.media import looks_like_mp4
from pipeline.emulator.replies import ErrorReply

log = logging.getLogger(__name__)

AssetKind = Literal["video", "image"]
THREAD_DECODE_BYTES = 256 * 1024
"""Uploads bigger than this are base64-decoded and hashed in a worker thread; smaller ones take
well under a millisecond and are done in the event loop."""


@dataclass(slots=True, eq=False)
class Asset:
    """One asset: an upload (with its bytes) or a job output (`job_id` set, bytes built from the job)."""

    asset_id: str
    name: str
    kind: AssetKind
    mime_type: str
    created_s: float
    size: int
    data: bytes | None = None
    sha256: str | None = None
    digest: Any = None  # the finished hashlib object of `data`, copied to hash outputs cheaply
    job_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.asset_id, "name": self.name, "kind": self.kind, "mimeType": self.mime_type,
            "size": self.size, "status": "success",
        }
        if self.job_id is not None:
            out["jobId"] = self.job_id
        return out


@dataclass(frozen=True, slots=True)
class Upload:
    """A checked upload body, not yet decoded."""

    name: str
    kind: AssetKind
    mime_type: str
    payload: str  # base64 text


def parse_upload(body: Any) -> Upload:
    """Check an upload body's shape; ErrorReply(400) names the faulty field."""
    if not isinstance(body, dict):
        raise ErrorReply(400, "request body must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ErrorReply(400, "name: is required (the file name, a non-empty string)")
    kinds = [k for k in ("video", "image") if k in body]
    if len(kinds) != 1:
        raise ErrorReply(400, "video: exactly one of 'video' or 'image' is required (a base64 data URL)")
    kind: AssetKind = kinds[0]  # type: ignore[assignment]
    value = body[kind]
    if not isinstance(value, str) or not value.startswith("data:") or ";base64," not in value:
        raise ErrorReply(400, f"{kind}: must be a data URL 'data:<mime type>;base64,<data>'")
    mime_type, _, payload = value[5:].partition(";base64,")
    if not mime_type.startswith(f"{kind}/"):
        raise ErrorReply(400, f"{kind}: mime type {mime_type!r} is not a {kind} type ({kind}/...)")
    return Upload(name=name, kind=kind, mime_type=mime_type, payload=payload)


async def decode_upload(upload: Upload, *, max_bytes: int) -> tuple[bytes, Any]:
    """The upload's bytes and their finished sha256 object; 400 on bad base64, 413 when too big."""
    if len(upload.payload) // 4 * 3 - 2 > max_bytes:
        raise ErrorReply(413, f"{upload.kind}: upload exceeds the {max_bytes}-byte limit")
    if len(upload.payload) > THREAD_DECODE_BYTES:
        data, digest = await asyncio.to_thread(_decode_and_hash, upload)
    else:
        data, digest = _decode_and_hash(upload)
    if len(data) > max_bytes:
        raise ErrorReply(413, f"{upload.kind}: upload exceeds the {max_bytes}-byte limit")
    if not data:
        raise ErrorReply(400, f"{upload.kind}: the data is empty")
    if upload.kind == "video" and not looks_like_mp4(data):
        log.warning("upload %r does not start with an MP4 'ftyp' box; accepted anyway", upload.name)
    return data, digest


def _decode_and_hash(upload: Upload) -> tuple[bytes, Any]:
    try:
        data = base64.b64decode(upload.payload, validate=True)
    except (binascii.Error, ValueError):
        raise ErrorReply(400, f"{upload.kind}: the data is not valid base64") from None
    return data, hashlib.sha256(data)


class AssetStore:
    """Assets by id."""

    def __init__(self) -> None:
        self._assets: dict[str, Asset] = {}

    def __len__(self) -> int:
        return len(self._assets)

    def add(self, asset: Asset) -> Asset:
        self._assets[asset.asset_id] = asset
        return asset

    def get(self, asset_id: str) -> Asset | None:
        return self._assets.get(asset_id)
