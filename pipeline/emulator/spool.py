"""The emulator's folder of uploaded parts: each part streamed to its own file, never held in memory.

Every file operation runs in a worker thread (the event loop never blocks on the
disk). Each PUT writes a file of its own (a cut-off one is removed), so a file,
once the upload records it, is never written again: a retried part is a new file
that replaces the old one in the record. After `complete`, the recorded parts in
order are the asset's bytes (a `Layout` of `FileSpan`s): nothing is copied.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from typing import Any, BinaryIO

from aiohttp import StreamReader

from pipeline.emulator.media import FILE_CHUNK_BYTES, FileSpan, Layout, open_ended_box

log = logging.getLogger(__name__)

HEAD_BYTES = 64  # what media checks look at


@dataclass(frozen=True, slots=True)
class Inspection:
    """What validation learns from an upload's bytes (read once, in a worker thread)."""

    size: int
    digest: Any  # finished hashlib sha256 object
    head: bytes
    open_box_at: int | None


class Spool:
    """A private temporary folder (under `root`, or the system's) created on first use, removed by `close`."""

    def __init__(self, root: str = "") -> None:
        self._root = root or None
        self._path: str | None = None
        self._finalizer: weakref.finalize[Any, Spool] | None = None

    def folder(self) -> str:
        """The folder (created now if needed: a tiny, one-off mkdir)."""
        if self._path is None:
            self._path = tempfile.mkdtemp(prefix="ltx-emulator-uploads-", dir=self._root)
            self._finalizer = weakref.finalize(self, shutil.rmtree, self._path, True)
        return self._path

    def part_path(self, upload_id: str, number: int) -> str:
        """A new file name for one PUT of a part."""
        return os.path.join(self.folder(), f"{upload_id}.part{number:05d}.{os.urandom(6).hex()}")

    async def receive(self, content: StreamReader, path: str, *, length: int) -> tuple[int, str]:
        """Stream a part body of `length` bytes to the new file `path`; (bytes written, md5 hex for the ETag).

        ValueError when the body ended early; the file is removed then (and on any other error)."""
        handle: BinaryIO = await asyncio.to_thread(open, path, "xb")
        md5, size = hashlib.md5(usedforsecurity=False), 0
        try:
            buffer = bytearray()
            async for chunk in content.iter_chunked(256 * 1024):
                buffer += chunk
                if len(buffer) >= FILE_CHUNK_BYTES:
                    size += await asyncio.to_thread(_write, handle, md5, buffer)
                    buffer = bytearray()
            if buffer:
                size += await asyncio.to_thread(_write, handle, md5, buffer)
            await asyncio.to_thread(handle.close)
            if size != length:
                raise ValueError(f"the body ended after {size} of its {length} bytes")
        except BaseException:
            # not awaited: a cancelled handler must not wait; the executor runs it to the end
            asyncio.get_running_loop().run_in_executor(None, _discard, handle, path)
            raise
        return size, md5.hexdigest()

    async def remove(self, paths: list[str]) -> None:
        """Delete part files (a failed upload's)."""
        await asyncio.to_thread(_remove_all, paths)

    async def close(self) -> None:
        """Remove the folder and everything in it."""
        path, self._path = self._path, None
        if path is not None:
            if self._finalizer is not None:
                self._finalizer.detach()
            await asyncio.to_thread(shutil.rmtree, path, True)


def _write(handle: BinaryIO, md5: Any, data: bytearray) -> int:
    handle.write(data)
    md5.update(data)
    return len(data)


def _discard(handle: BinaryIO, path: str) -> None:
    handle.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _remove_all(paths: list[str]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def spans_of(parts: list[tuple[str, int]]) -> Layout:
    """The parts (path, size), in order, as one file."""
    return Layout(tuple(FileSpan(path, 0, size) for path, size in parts))


def inspect(layout: Layout, *, video: bool) -> Inspection:
    """Hash an upload's bytes and read its head (and, for a video, its top-level boxes). Blocking: a worker
    thread's job."""
    digest = hashlib.sha256()
    for chunk in layout.iter_range(0, layout.size, FILE_CHUNK_BYTES):
        digest.update(chunk)
    head = b"".join(bytes(c) for c in layout.iter_range(0, min(HEAD_BYTES, layout.size)))
    return Inspection(layout.size, digest, head, open_ended_box(layout) if video else None)
