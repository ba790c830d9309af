"""Media bytes as segments, never copied: in-memory pieces, zero runs and spans of files on disk.

An output is `input bytes + free box`, where the box holds the job id, seed and
prompt hash (so each output is distinct and deterministic) and, optionally,
`pad_bytes` zeros. Players skip `free` boxes, so the file stays playable. The
bytes are produced on the fly from the stored input (in memory for small JSON
uploads, part files on disk for multipart uploads) and a shared zero chunk, so
thousands of outputs cost nothing and a 2 GB output is streamed, not built.

Reading: `Layout.iter_range` reads files synchronously (worker threads and tests
only); `stream_range` is the event loop's way, reading files in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import struct
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

CHUNK_BYTES = 256 * 1024
FILE_CHUNK_BYTES = 1 << 20  # one worker-thread read
MARKER = b"ltx-batch-emulator "
_ZEROS = memoryview(bytes(CHUNK_BYTES))


@dataclass(frozen=True, slots=True)
class Zeros:
    """A run of `size` zero bytes (padding), never materialised."""

    size: int


@dataclass(frozen=True, slots=True)
class FileSpan:
    """`size` bytes of the file at `path` from `offset` (a multipart upload's part)."""

    path: str
    offset: int
    size: int


Segment = bytes | bytearray | memoryview | Zeros | FileSpan


@dataclass(frozen=True, slots=True)
class Layout:
    """A file as a sequence of segments; its first `prefix` segments are an untouched input (0: none)."""

    segments: tuple[Segment, ...]
    prefix: int = 0

    @property
    def size(self) -> int:
        return sum(_len(s) for s in self.segments)

    @property
    def verbatim_prefix(self) -> bool:
        return self.prefix > 0

    def slice(self, start: int, end: int) -> tuple[Segment, ...]:
        """The segments holding bytes `start..end` (end exclusive), cut at the edges, nothing read."""
        out: list[Segment] = []
        offset = 0
        for segment in self.segments:
            length = _len(segment)
            lo, hi = max(start, offset) - offset, min(end, offset + length) - offset
            offset += length
            if lo < hi:
                out.append(_cut(segment, lo, hi))
        return tuple(out)

    def iter_range(self, start: int, end: int, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes | memoryview]:
        """The bytes `start..end` (end exclusive) in chunks of at most `chunk_bytes`; reads files synchronously."""
        for segment in self.slice(start, end):
            if isinstance(segment, FileSpan):
                yield from _read_span(segment, chunk_bytes)
                continue
            step = min(chunk_bytes, CHUNK_BYTES) if isinstance(segment, Zeros) else chunk_bytes
            for pos in range(0, _len(segment), step):
                upto = min(_len(segment), pos + step)
                yield _ZEROS[: upto - pos] if isinstance(segment, Zeros) else memoryview(segment)[pos:upto]

    def read(self) -> bytes:
        """The whole file as bytes (for tests and small files only)."""
        return b"".join(bytes(c) for c in self.iter_range(0, self.size))


async def stream_range(layout: Layout, start: int, end: int) -> AsyncIterator[bytes | memoryview]:
    """`layout.iter_range` for the event loop: file spans are read 1 MiB at a time in a worker thread."""
    for segment in layout.slice(start, end):
        if isinstance(segment, FileSpan):
            for pos in range(0, segment.size, FILE_CHUNK_BYTES):
                n = min(FILE_CHUNK_BYTES, segment.size - pos)
                yield await asyncio.to_thread(_pread, segment.path, segment.offset + pos, n)
        else:
            for chunk in Layout((segment,)).iter_range(0, _len(segment)):
                yield chunk


def _len(segment: Segment) -> int:
    return segment.size if isinstance(segment, (Zeros, FileSpan)) else len(segment)


def _cut(segment: Segment, lo: int, hi: int) -> Segment:
    if isinstance(segment, Zeros):
        return Zeros(hi - lo)
    if isinstance(segment, FileSpan):
        return FileSpan(segment.path, segment.offset + lo, hi - lo)
    return memoryview(segment)[lo:hi]


def _pread(path: str, offset: int, size: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(size)
    if len(data) != size:
        raise OSError(f"{path}: expected {size} bytes at {offset}, found {len(data)}")
    return data


def _read_span(span: FileSpan, chunk_bytes: int) -> Iterator[bytes]:
    with open(span.path, "rb") as handle:
        handle.seek(span.offset)
        left = span.size
        while left > 0:
            data = handle.read(min(chunk_bytes, left))
            if not data:
                raise OSError(f"{span.path}: ends {left} bytes early")
            left -= len(data)
            yield data


def top_level_boxes(data: Layout | bytes | bytearray | memoryview) -> Iterator[tuple[int, int, bytes]]:
    """(offset, size, type) of each top-level MP4 box; size 0 means "to the end"; stops at anything malformed.

    Reads only box headers (a few bytes each): cheap in memory, a few small reads for files."""
    layout = data if isinstance(data, Layout) else Layout((data,))
    offset, total = 0, layout.size
    while offset + 8 <= total:
        head = b"".join(bytes(c) for c in layout.iter_range(offset, min(total, offset + 16)))
        size, kind = struct.unpack_from(">I4s", head)
        header = 8
        if size == 1:
            if len(head) < 16:
                return
            size = struct.unpack_from(">Q", head, 8)[0]
            header = 16
        if size != 0 and (size < header or offset + size > total):
            return
        yield offset, size, bytes(kind)
        if size == 0:
            return
        offset += size


def open_ended_box(layout: Layout) -> int | None:
    """The offset of a last top-level box whose size says "to the end of the file" (0), if any."""
    boxes = list(top_level_boxes(layout))  # a handful of (offset, size, type) tuples
    last = boxes[-1] if boxes else None
    return last[0] if last is not None and last[1] == 0 and layout.size - last[0] <= 0xFFFFFFFF else None


def looks_like_mp4(head: bytes | bytearray | memoryview) -> bool:
    """Whether the data starts with an MP4 `ftyp` box."""
    return len(head) >= 8 and bytes(head[4:8]) == b"ftyp"


IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")


def looks_like_image(head: bytes | bytearray | memoryview) -> bool:
    """Whether the data starts like a PNG, JPEG, GIF or WebP file."""
    start = bytes(head[:12])
    return start.startswith(IMAGE_MAGIC) or (start[:4] == b"RIFF" and start[8:12] == b"WEBP")


AUDIO_MAGIC = (b"ID3", b"OggS", b"fLaC")


def looks_like_audio(head: bytes | bytearray | memoryview) -> bool:
    """Whether the data starts like an MP3 (ID3 tag or frame sync), WAV, Ogg, FLAC or MP4/M4A file."""
    start = bytes(head[:12])
    frame_sync = len(start) >= 2 and start[0] == 0xFF and start[1] & 0xE0 == 0xE0
    return (start.startswith(AUDIO_MAGIC) or frame_sync or (start[:4] == b"RIFF" and start[8:12] == b"WAVE")
            or looks_like_mp4(head))


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


def output_layout(source: Layout, *, job_id: str, seed: int | None, prompt: str, pad_bytes: int = 0,
                  open_box_at: int | None = None) -> Layout:
    """The output of a job: `source` (its input video) with the stamped `free` box appended.

    `open_box_at`: the offset of the input's last box when its size says "to the end of the file"
    (see `open_ended_box`); that size is patched to the real value so the appended box stays separate.
    """
    head, pad = free_box(stamp(job_id=job_id, seed=seed, prompt=prompt), pad_bytes)
    tail: tuple[Segment, ...] = (head, pad) if pad_bytes else (head,)
    if open_box_at is not None:
        patched = struct.pack(">I", source.size - open_box_at)
        return Layout((*source.slice(0, open_box_at), patched, *source.slice(open_box_at + 4, source.size), *tail))
    return Layout((*source.segments, *tail), prefix=len(source.segments))


def png_bytes(text: bytes) -> bytes:
    """A small valid PNG (8x8, grey) carrying `text` in a tEXt chunk (an image model's output, distinct per job)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x80" * 8 for _ in range(8))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
            + chunk(b"tEXt", b"Comment\x00" + text) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def delivery_layout(original: Layout, asset_id: str) -> Layout:
    """The transformed copy the default CDN URL serves: the original plus a `free` box marking the re-mux.

    Different bytes (and size) from the original, still playable; `originalAssets=true` serves the original."""
    box, _ = free_box(MARKER + json.dumps({"delivery": "transformed", "assetId": asset_id}).encode(), 0)
    return Layout((*original.segments, box), prefix=original.prefix)


def layout_sha256(layout: Layout, prefix_hash: hashlib._Hash | None = None) -> str:
    """The sha256 of a layout (reads files: call from a worker thread for file-backed layouts);
    `prefix_hash` (the finished hash object of its verbatim prefix) skips rehashing that prefix."""
    if prefix_hash is not None and layout.prefix:
        digest = prefix_hash.copy()
        rest = Layout(layout.segments[layout.prefix:])
    else:
        digest, rest = hashlib.sha256(), layout
    for chunk in rest.iter_range(0, rest.size, FILE_CHUNK_BYTES):
        digest.update(chunk)
    return digest.hexdigest()


def has_files(segments: tuple[Segment, ...]) -> bool:
    """Whether any segment is read from disk."""
    return any(isinstance(s, FileSpan) for s in segments)
