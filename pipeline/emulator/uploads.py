"""Reading `POST /v1/assets` bodies: `{"name", "image": "data:<mime>;base64,..."}` into bytes.

api-notes "Uploading inputs" (confirmed): this route takes images under 6 MB only;
videos of any size and bigger images go through `POST /v1/uploads` (see `multipart`).
A body with a `video` field is refused with 400 saying so.

Not blocking the loop: bodies over `THREAD_DECODE_BYTES` are handled in a worker
thread, and in small steps, because the C routines involved (JSON scanning,
base64 decoding) hold the GIL for as long as one call lasts: the base64 text is
cut out of the body before the JSON parser sees it, then decoded and hashed
1 MiB at a time. Smaller bodies take well under a
millisecond and are handled in the loop.
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from pipeline.emulator.assets import AssetKind
from pipeline.emulator.replies import ErrorReply

log = logging.getLogger(__name__)

THREAD_DECODE_BYTES = 256 * 1024
STEP_BYTES = 1 << 20  # base64 text per decoding step (a multiple of 4)
_MARKER = b";base64,"
_MARKER_WITHIN_BYTES = 64 * 1024  # the data URL starts near the top of any sane body


@dataclass(frozen=True, slots=True)
class Upload:
    """A checked, decoded upload."""

    name: str
    kind: AssetKind
    mime_type: str
    data: bytes | bytearray
    digest: Any  # the finished hashlib sha256 object of `data`


async def receive_upload(raw: bytes | bytearray, *, max_bytes: int, image_max_bytes: int) -> Upload:
    """Parse, check and decode an upload body (in a worker thread when big).

    ErrorReply: 400 naming the faulty field (not JSON, missing `name`, a `video` field, no
    `image`, not a base64 data URL of an image mime type, bad base64, empty data, an image of
    `image_max_bytes` or more), 413 when the decoded data would exceed `max_bytes`.
    """
    if len(raw) > THREAD_DECODE_BYTES:
        return await asyncio.to_thread(read_upload, raw, max_bytes=max_bytes, image_max_bytes=image_max_bytes)
    return read_upload(raw, max_bytes=max_bytes, image_max_bytes=image_max_bytes)


def read_upload(raw: bytes | bytearray, *, max_bytes: int, image_max_bytes: int | None = None) -> Upload:
    """`receive_upload`'s work, synchronously."""
    body, cut = _parse(raw)
    if not isinstance(body, dict):
        raise ErrorReply(400, "request body must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ErrorReply(400, "name: is required (the file name, a non-empty string)")
    if "video" in body:
        raise ErrorReply(400, "video: videos must be uploaded with POST /v1/uploads (multipart upload), "
                              "not POST /v1/assets")
    if "image" not in body:
        raise ErrorReply(400, "image: is required (a base64 data URL of an image under 6 MB)")
    kind: AssetKind = "image"
    value = body[kind]
    if not isinstance(value, str) or not value.startswith("data:") or ";base64," not in value:
        raise ErrorReply(400, f"{kind}: must be a data URL 'data:<mime type>;base64,<data>'")
    mime_type, _, inline = value[5:].partition(";base64,")
    if not mime_type.startswith(f"{kind}/"):
        raise ErrorReply(400, f"{kind}: mime type {mime_type!r} is not a {kind} type ({kind}/...)")
    if inline or cut is None:
        try:
            text: bytes | memoryview = inline.encode("ascii")
        except UnicodeEncodeError:
            raise ErrorReply(400, f"{kind}: the data is not valid base64") from None
    else:
        text = cut
    if len(text) // 4 * 3 - 2 > max_bytes:
        raise ErrorReply(413, f"{kind}: upload exceeds the {max_bytes}-byte limit")
    data, digest = decode_base64(text, field=kind)
    if len(data) > max_bytes:
        raise ErrorReply(413, f"{kind}: upload exceeds the {max_bytes}-byte limit")
    if not data:
        raise ErrorReply(400, f"{kind}: the data is empty")
    if image_max_bytes is not None and len(data) >= image_max_bytes:
        raise ErrorReply(400, f"{kind}: images of {image_max_bytes} bytes or more must be uploaded with "
                              "POST /v1/uploads (multipart upload)")
    return Upload(name=name, kind=kind, mime_type=mime_type, data=data, digest=digest)


def _parse(raw: bytes | bytearray) -> tuple[Any, memoryview | None]:
    """The JSON body and, for big bodies, the base64 text cut out of it (its value left as `data:<mime>;base64,`)."""
    span = _payload_span(raw) if len(raw) > THREAD_DECODE_BYTES else None
    try:
        if span is None:
            return json.loads(raw), None
        start, end = span
        return json.loads(raw[:start] + raw[end:]), memoryview(raw)[start:end]
    except (ValueError, UnicodeDecodeError):
        raise ErrorReply(400, "request body is not valid JSON") from None


def _payload_span(raw: bytes | bytearray) -> tuple[int, int] | None:
    """Where the first data URL's base64 text lies, or None (then the whole body is parsed as JSON)."""
    marker = raw.find(_MARKER, 0, _MARKER_WITHIN_BYTES)
    if marker < 0:
        return None
    start = marker + len(_MARKER)
    end = _find_byte(raw, b'"', start)
    if end < 0 or _find_byte(raw, b"\\", start, end) >= 0:
        return None  # unterminated, or JSON escapes inside: let the parser judge it
    return start, end


def _find_byte(raw: bytes | bytearray, byte: bytes, start: int, end: int | None = None) -> int:
    """`raw.find(byte, start, end)` in 1 MiB steps, so the GIL is free between them."""
    stop = len(raw) if end is None else end
    for lo in range(start, stop, STEP_BYTES):
        hit = raw.find(byte, lo, min(stop, lo + STEP_BYTES))
        if hit >= 0:
            return hit
    return -1


def decode_base64(text: bytes | memoryview, *, field: str) -> tuple[bytearray, Any]:
    """Strictly decode base64 text in 1 MiB steps, hashing as it goes; ErrorReply(400) names `field`."""
    if len(text) % 4:
        raise ErrorReply(400, f"{field}: the data is not valid base64 (length not a multiple of 4)")
    out = bytearray()  # grown step by step: large reallocs remap pages instead of copying or zeroing them
    digest = hashlib.sha256()
    for lo in range(0, len(text), STEP_BYTES):
        step = text[lo:lo + STEP_BYTES]
        try:
            if lo + STEP_BYTES < len(text) and step[-1:] == b"=":
                raise binascii.Error("padding before the end")
            piece = binascii.a2b_base64(step, strict_mode=True)
        except binascii.Error:
            raise ErrorReply(400, f"{field}: the data is not valid base64") from None
        out += piece
        digest.update(piece)
    return out, digest
