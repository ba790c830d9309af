"""Output paths and streaming writes: `<file>.part` written through the journal's `OutputGate`, verify, fsync,
atomic rename.

File names follow the template `{index:05d}_{prompt slug}_{swept values}_s{seed}_{key[:10]}.mp4`
(no `_s{seed}` for a model that takes no seed; `-{n}` added when a job has several outputs): ASCII
letters, digits, `-`, `_`, `.` and `=` only, at most 120 characters (a long name trims its swept values, never
the key), so they are safe on every OS and can never escape the run folder. The job key in the name keeps
two jobs that differ only in a value that is not swept (an edited default) apart; and a path
the journal records for one key is never given to another (`claim_output_path`). Journals
record each job's path with its intent, so runs begun before keys were in the names keep their names.

The intent's `.mp4` is a default: at download time the extension follows the CDN's Content-Type
(`media_suffix`: image/png -> `.png`, video/webm -> `.webm`...; unknown or missing -> `.mp4`), the intent's
name kept as the stem; the `downloaded` event records the real path.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import hashlib
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import aiofiles
import aiofiles.os
import aiohttp

from pipeline.errors import PipelineError, TransientApiError
from pipeline.ledger.reserve import OutputGate
from pipeline.spec import JobSpec

CHUNK_BYTES = 256 * 1024
MAX_NAME_CHARS = 120
KEY_NAME_CHARS = 10  # of the job key, in every file name
PART_SUFFIX = ".part"
VIDEOS_DIR = "videos"
DEFAULT_SUFFIX = ".mp4"
MEDIA_SUFFIXES = {
    "video/mp4": ".mp4", "video/webm": ".webm", "video/quicktime": ".mov", "video/x-matroska": ".mkv",
    "image/png": ".png", "image/jpeg": ".jpg", "image/jpg": ".jpg", "image/webp": ".webp", "image/gif": ".gif",
    "audio/mpeg": ".mp3", "audio/mp3": ".mp3", "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav",
    "audio/mp4": ".m4a", "audio/ogg": ".ogg", "audio/flac": ".flac",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")


class UrlExpired(PipelineError):
    """The download URL answered 403/404/410: resolve the asset again."""


class StorageError(PipelineError):
    """The output folder cannot be written (disk full, permissions): the run stops cleanly."""

    exit_status = 1


@dataclass(frozen=True, slots=True)
class Saved:
    """A finished download: where, how many bytes, their sha256, and the file's mtime once in place."""

    path: Path
    bytes: int
    sha256: str
    mtime_ns: int


def slug(text: str, max_chars: int) -> str:
    """Lower-case ASCII words joined by '-', e.g. 'A neon city!' -> 'a-neon-city'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    out = "-".join(words)[:max_chars].strip("-")
    return out or "x"


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def output_name(index: int, prompt: str, swept: Mapping[str, Any], seed: int | None, *, key: str = "",
                part: int = 0) -> str:
    """The file name of a job's output (pure; see the module docstring for the template; a model that takes no
    seed: no `_s<seed>`).

    `key` is the job key (JobSpec.key): its first characters end the name. Only the names of
    journals written before keys were in the names lack it (`key=""`).
    """
    values = "_".join(f"{_UNSAFE.sub('-', k)}={_UNSAFE.sub('-', _value_text(v))}"
                      for k, v in swept.items() if k not in ("seed", "prompt"))
    head = f"{index:05d}_{slug(prompt, 40)}"
    marker = f"_{_UNSAFE.sub('-', key[:KEY_NAME_CHARS])}" if key else ""
    tail = ("" if seed is None else f"_s{seed}") + marker + (f"-{part}" if part else "") + ".mp4"
    room = MAX_NAME_CHARS - len(head) - len(tail) - 1
    middle = f"_{values[:room]}" if values and room > 0 else ""
    name = head + middle + tail
    return name.replace("..", ".")


def output_path(spec: JobSpec, part: int = 0) -> str:
    """Where a job's output goes, relative to the run folder: `videos/<output_name>`."""
    name = output_name(spec.index, spec.prompt, spec.swept, spec.seed, key=spec.key, part=part)
    return f"{VIDEOS_DIR}/{name}"


def claim_output_path(spec: JobSpec, claimed: Mapping[str, str]) -> str:
    """The path a job's intent records: `output_path(spec)`, unless the journal records it for another key.

    `claimed` maps each path the journal records to the key that recorded it first
    (`LedgerState.paths`). A path taken by another key gives way, deterministically, to
    `videos/{index:05d}_{full key}.mp4`, then `..._{full key}_2.mp4`, `_3`... (pure).
    """
    candidate = output_path(spec)
    fallback = f"{VIDEOS_DIR}/{spec.index:05d}_{_UNSAFE.sub('-', spec.key)}"
    number = 1
    while claimed.get(candidate, spec.key) != spec.key:
        candidate = fallback + (f"_{number}" if number > 1 else "") + ".mp4"
        number += 1
    return candidate


def media_suffix(content_type: str | None) -> str:
    """The file extension for a Content-Type (`image/png; x=y` -> `.png`); `.mp4` when unknown or missing (pure)."""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    return MEDIA_SUFFIXES.get(mime, DEFAULT_SUFFIX)


def with_suffix(name: str, suffix: str) -> str:
    """A name (or path) planned as `<stem>.mp4` given the extension the download found (pure):
    `a/b.mp4` + `.png` -> `a/b.png`; a name without `.mp4` keeps its name and gets the suffix appended,
    unless it is the default."""
    if name.endswith(DEFAULT_SUFFIX):
        return name[: -len(DEFAULT_SUFFIX)] + suffix
    return name if suffix == DEFAULT_SUFFIX else name + suffix


def part_path(first: str, part: int) -> str:
    """The path of output number `part` of a job whose first output goes to `first`."""
    return first if part == 0 else first.removesuffix(DEFAULT_SUFFIX) + f"-{part}{DEFAULT_SUFFIX}"


def safe_path(run_dir: Path, relative: str) -> Path:
    """`run_dir / relative`, refusing anything that would land outside the run folder."""
    root = run_dir.resolve()
    target = (root / relative).resolve()
    if target == root or root not in target.parents:
        raise PipelineError(f"refusing to write outside the run folder: {relative!r}")
    return target


async def _hash_prefix(path: Path, size: int) -> hashlib._Hash:
    digest = hashlib.sha256()
    async with aiofiles.open(path, "rb") as handle:
        remaining = size
        while remaining > 0:
            chunk = await handle.read(min(CHUNK_BYTES, remaining))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
    return digest


async def download(session: aiohttp.ClientSession, url: str, target: Path, *, timeout_s: float,
                   connect_timeout_s: float, gate: OutputGate | None = None) -> Saved:
    """Stream `url` to `<final>.part` (resuming it with Range when served), verify, fsync, rename to `<final>`.

    `target` is the planned path (`<stem>.mp4`); `<final>` is it with the extension the response's Content-Type
    gives (`with_suffix`, `media_suffix`): the returned Saved's path. Every write passes `gate` (the journal's
    `outputs`: closed when the journal needs the disk's last space).
    Raises UrlExpired (403/404/410), TransientApiError (truncated body, reset, 5xx, timeout)
    or StorageError (the disk refused a write).
    """
    part, have = _partial(target)
    headers = {"Range": f"bytes={have}-"} if have else {}
    timeout = aiohttp.ClientTimeout(total=timeout_s, connect=connect_timeout_s, sock_read=min(timeout_s, 120))
    try:
        async with session.get(url, headers=headers, timeout=timeout, allow_redirects=True) as resp:
            if resp.status in (403, 404, 410):
                raise UrlExpired(f"download URL answered {resp.status}")
            if resp.status == 416 and have:
                part.unlink(missing_ok=True)
                raise TransientApiError(416, "stale partial file discarded", url=_strip_query(url))
            if resp.status >= 400:
                raise TransientApiError(resp.status, "download failed", url=_strip_query(url))
            resumed = resp.status == 206 and have > 0
            final = target.with_name(with_suffix(target.name, media_suffix(resp.headers.get("Content-Type"))))
            wanted = final.with_name(final.name + PART_SUFFIX)
            if wanted != part:  # a partial of another type (the asset changed?): never mix them
                part.unlink(missing_ok=True)
                if resumed:
                    raise TransientApiError(0, "stale partial file discarded", url=_strip_query(url))
                part = wanted
            expected = resp.content_length
            total = (have + expected) if (resumed and expected is not None) else expected
            return await _write(resp, part, final, resumed=resumed, have=have, total=total,
                                gate=gate if gate is not None else OutputGate())
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:  # resets, payload errors, redirect loops
        raise TransientApiError(0, f"download interrupted ({type(exc).__name__})", url=_strip_query(url)) from None


def _partial(target: Path) -> tuple[Path, int]:
    """The partial download of `target` left by an earlier attempt, under any of the extensions, and its size;
    else `<target>.part` and 0."""
    suffixes = dict.fromkeys((DEFAULT_SUFFIX, *MEDIA_SUFFIXES.values()))
    for suffix in suffixes:
        candidate = target.with_name(with_suffix(target.name, suffix) + PART_SUFFIX)
        try:
            return candidate, candidate.stat().st_size
        except FileNotFoundError:
            continue
    return target.with_name(target.name + PART_SUFFIX), 0


async def _write(resp: aiohttp.ClientResponse, part: Path, target: Path, *, resumed: bool, have: int,
                 total: int | None, gate: OutputGate) -> Saved:
    digest = await _hash_prefix(part, have) if resumed else hashlib.sha256()
    written = have if resumed else 0
    try:
        # unbuffered: every byte is written inside the gate, none left in a buffer to be flushed past it
        handle = await asyncio.to_thread(open, part, "ab" if resumed else "wb", buffering=0)
        try:
            async for chunk in resp.content.iter_any():
                # in a worker thread, through the gate: once the journal needs the disk's last space, no more
                await asyncio.to_thread(gate.guarded, functools.partial(write_all, handle, chunk))
                digest.update(chunk)
                written += len(chunk)
            await asyncio.to_thread(os.fsync, handle.fileno())
        finally:
            handle.close()
    except (aiohttp.ClientError, asyncio.TimeoutError):  # the connection (some are OSErrors), not the disk
        raise
    except OSError as exc:
        raise StorageError(f"cannot write {part.name}: {exc.strerror or exc}") from None
    if total is not None and written != total:
        raise TransientApiError(0, f"truncated download: {written} of {total} bytes")
    if written == 0:
        part.unlink(missing_ok=True)
        raise TransientApiError(0, "empty download")
    await aiofiles.os.replace(part, target)
    try:
        mtime_ns = (await aiofiles.os.stat(target)).st_mtime_ns
    except OSError as exc:
        raise StorageError(f"cannot read back {target.name}: {exc.strerror or exc}") from None
    return Saved(target, written, digest.hexdigest(), mtime_ns)


def write_all(handle: BinaryIO, data: bytes) -> None:
    """Write all of `data` to an unbuffered file (blocking; one write may take less than asked)."""
    view = memoryview(data)
    while view:
        written = handle.write(view)
        if not written:  # a regular file never takes nothing; do not spin
            raise OSError(errno.EIO, "the file took no bytes")
        view = view[written:]


def _strip_query(url: str) -> str:
    """A URL without its query string (signed CDN URLs carry tokens there)."""
    return url.split("?", 1)[0]
