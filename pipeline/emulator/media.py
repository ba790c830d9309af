"""Output media: the input video plus a top-level MP4 `free` box, described as segments, never copied.

An output is `input bytes + free box`, where the box holds the job id, seed and
prompt hash (so each output is distinct and deterministic) and, optionally,
`pad_bytes` zeros. Players skip `free` boxes, so the file stays playable. The
bytes are produced on the fly from the stored input and a shared zero chunk,
so thousands of outputs cost nothing and a 1 GB output is streamed, not built.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass

CHUNK_BYTES = 256 * 1024
MARKER = b"ltx-batch-emulator "
_ZEROS = memoryview(bytes(CHUNK_BYTES))


@dataclass(frozen=True, slots=True)
class Zeros:
    """A run of `size` zero bytes (padding), never materialised."""

    size: int


Segment = bytes | bytearray | memoryview | Zeros


@dataclass(frozen=True, slots=True)
class Layout:
    """A file as a sequence of segments; `verbatim_prefix` is True when it starts with the untouched input."""

    segments: tuple[Segment, ...]
    verbatim_prefix: bool = True

    @property
    def size(self) -> int:
        return sum(_len(s) for s in self.segments)

    def iter_range(self, start: int, end: int, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes | memoryview]:
        """The bytes `start..end` (end exclusive) in chunks of at most `chunk_bytes`, without copying input."""
        offset = 0
        for segment in self.segments:
            length = _len(segment)
            lo, hi = max(start, offset), min(end, offset + length)
            offset += length
            if lo >= hi:
                continue
            lo -= offset - length
            hi -= offset - length
            for pos in range(lo, hi, chunk_bytes):
                upto = min(hi, pos + chunk_bytes)
                if isinstance(segment, Zeros):
                    yield _ZEROS[: upto - pos]
                else:
                    yield memoryview(segment)[pos:upto]

    def read(self) -> bytes:
        """The whole file as bytes (for tests and small files only)."""
        return b"".join(bytes(c) for c in self.iter_range(0, self.size))


def _len(segment: Segment) -> int:
    return segment.size if isinstance(segment, Zeros) else len(segment)


def top_level_boxes(data: bytes | bytearray | memoryview) -> Iterator[tuple[int, int, bytes]]:
    """(offset, size, type) of each top-level MP4 box; size 0 means "to the end"; stops at anything malformed."""
    offset, total = 0, len(data)
    while offset + 8 <= total:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            if offset + 16 > total:
                return
            size = struct.unpack_from(">Q", data, offset + 8)[0]
            header = 16
        if size != 0 and (size < header or offset + size > total):
            return
        yield offset, size, bytes(kind)
        if size == 0:
            return
        offset += size


def looks_like_mp4(data: bytes | bytearray | memoryview) -> bool:
    """Whether the data starts with an MP4 `ftyp` box (a lenient check: uploads are never refused for it)."""
    return len(data) >= 8 and bytes(data[4:8]) == b"ftyp"


def free_box(payload: bytes, pad_bytes: int) -> tuple[bytes, Zeros]:
    """The header+payload of a `free` box holding `payload` and `pad_bytes` zeros (64-bit size when needed)."""
    body = len(payload) + pad_bytes
    if body + 8 <= 0xFFFFFFFF:
        header = struct.pack(">I4s", body + 8, b"free")
    else:
        header = struct.pack(">I4sQ", 1, b"free", body + 16)
    return header + payload, Zeros(pad_bytes)


def stamp(*, job_id: str, seed: int | None, prompt: str) -> bytes:
    """The free box payload that makes an output distinct and deterministic."""
    prompt_sha256 = hashlib.sha256(prompt.encode("utf-8")).hexdigest()
    return MARKER + json.dumps({"jobId": job_id, "seed": seed, "promptSha256": prompt_sha256},
                               sort_keys=True).encode()


def output_layout(
    source: bytes | bytearray, *, job_id: str, seed: int | None, prompt: str, pad_bytes: int = 0
) -> Layout:
    """The output of a job: `source` (its input video) with the stamped `free` box appended.

    If the input's last top-level box says "size 0: to the end of the file", its
    size is patched to the real value so the appended box stays a separate box.
    """
    head, pad = free_box(stamp(job_id=job_id, seed=seed, prompt=prompt), pad_bytes)
    tail: tuple[Segment, ...] = (head, pad) if pad_bytes else (head,)
    boxes = list(top_level_boxes(source))  # a handful of (offset, size, type) tuples
    last = boxes[-1] if boxes else None
    if last is not None and last[1] == 0 and len(source) - last[0] <= 0xFFFFFFFF:
        offset = last[0]
        view = memoryview(source)
        patched = struct.pack(">I", len(source) - offset)
        return Layout((view[:offset], patched, view[offset + 4:], *tail), verbatim_prefix=False)
    return Layout((source, *tail))


def layout_sha256(layout: Layout, source_hash: hashlib._Hash | None = None) -> str:
    """The sha256 of a layout; `source_hash` (the input's finished hash object) skips rehashing the input."""
    if source_hash is not None and layout.verbatim_prefix:
        digest = source_hash.copy()
        rest = layout.segments[1:]
    else:
        digest = hashlib.sha256()
        rest = layout.segments
    for segment in rest:
        if isinstance(segment, Zeros):
            for pos in range(0, segment.size, CHUNK_BYTES):
                digest.update(_ZEROS[: min(CHUNK_BYTES, segment.size - pos)])
        else:
            digest.update(segment)
    return digest.hexdigest()
