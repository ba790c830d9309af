"""The download stage: a fixed pool of workers saving each finished job's outputs.

Each asset's URL comes resolved in a batch just before (`resolve`), or is resolved on its own when the
batch did not give it; the file is streamed to `<file>.part`, checked against Content-Length, hashed,
fsynced and renamed (its extension the one the response's Content-Type gives, `storage.media_suffix`; the
`downloaded` event records the real path); an expired URL (403) is resolved again on its own, a truncated
download retried (resumed with Range).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from pipeline.api.retry import backoff_s
from pipeline.errors import ApiError, AuthError, PipelineError, RunHalted, TransientApiError
from pipeline.ledger.replay import DOWNLOAD_FAILED
from pipeline.run.context import Completion, RunContext
from pipeline.run.storage import VIDEOS_DIR, Saved, StorageError, UrlExpired, download as stream_download
from pipeline.run.storage import part_path, safe_path

log = logging.getLogger(__name__)


async def download(ctx: RunContext, finished: asyncio.Queue[Completion | None]) -> None:
    """One download worker: until the queue closes (None)."""
    while (item := await finished.get()) is not None:
        if ctx.stop.halted.is_set():
            continue  # not started before the halt: the resume fetches it
        try:
            await _save_job(ctx, item)
        except AuthError as exc:
            ctx.stop.halt("auth", f"the API refused the credentials ({exc.message})")
        except StorageError as exc:
            ctx.stop.halt("storage", f"cannot write the outputs: {exc} (free some space, then resume)")
        except RunHalted:
            pass  # the asset's URL was not looked up again: the job stays succeeded, the resume fetches it


async def _save_job(ctx: RunContext, item: Completion) -> None:
    state = ctx.journal.state.job(item.key)
    first = state.file or f"{VIDEOS_DIR}/{item.key[:16]}.mp4"  # journals always record `file` with the intent
    for part, asset_id in enumerate(item.asset_ids):
        if asset_id in state.files:
            continue
        relative = part_path(first, part)
        error = await _save_asset(ctx, item.key, asset_id, relative, safe_path(ctx.run_dir, relative),
                                  url=item.urls.get(asset_id))
        if error is not None:
            await ctx.journal.write("failed", key=item.key, reason=DOWNLOAD_FAILED, error=error)
            log.warning("job %s: download of %s gave up: %s (a resume tries again)", state.index, asset_id, error)
            return


def saved_path(relative: str, saved: Saved) -> str:
    """The run-folder relative path of a file saved for the planned `relative` (its extension may differ)."""
    folder = relative.rpartition("/")[0]
    return f"{folder}/{saved.path.name}" if folder else saved.path.name


class DownloadGaveUp(PipelineError):
    """An asset could not be downloaded within its retries (the message is the last error)."""


async def _save_asset(ctx: RunContext, key: str, asset_id: str, relative: str, target: Path, *,
                      url: str | None = None) -> str | None:
    """Download one of a job's assets and journal it; None on success, else the last error."""
    try:
        saved, attempts = await fetch_asset(ctx, asset_id, relative, target, url=url)
    except DownloadGaveUp as exc:
        return str(exc)
    ctx.downloaded_bytes += saved.bytes
    await ctx.journal.write("downloaded", key=key, asset_id=asset_id, path=saved_path(relative, saved),
                            bytes=saved.bytes, sha256=saved.sha256, mtime_ns=saved.mtime_ns, attempts=attempts)
    return None


async def fetch_asset(ctx: RunContext, asset_id: str, relative: str, target: Path, *,
                      url: str | None = None) -> tuple[Saved, int]:
    """Download one asset to `target` (its extension as the response's Content-Type says) with retries (from
    `url` when it was resolved already, else from a URL resolved now; a fresh URL after an expired one, an
    outage waited out at no cost of attempts); the file and the attempts it took. Raises DownloadGaveUp,
    AuthError or StorageError."""
    settings = ctx.settings
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where the folder goes, no space for it, a read-only mount
        raise StorageError(f"cannot make the folder {relative.rpartition('/')[0] or '.'}: "
                           f"{exc.strerror or exc}") from None
    last_error, attempt = "no attempt", 0
    while attempt <= settings.max_retries:
        attempt += 1
        ctx.downloading += 1
        try:
            if url is None:
                url = await ctx.api.asset_url(asset_id)
            saved = await stream_download(ctx.session, url, target, timeout_s=settings.download_timeout_s,
                                          connect_timeout_s=settings.connect_timeout_s, gate=ctx.journal.outputs)
        except (AuthError, StorageError):
            raise
        except UrlExpired as exc:
            last_error, url = str(exc), None
            log.info("%s: %s; resolving the URL again", asset_id, exc)
            continue  # the next attempt resolves a fresh URL at once
        except TransientApiError as exc:
            last_error = exc.message
            if exc.status == 0 and ctx.api.connectivity.down:  # an outage: wait it out, it costs no attempt
                attempt -= 1
                log.info("%s: %s; waiting until the API answers again", asset_id, exc.message)
                await ctx.api.connectivity.wait_up(ctx.stop.halted)
                continue
        except ApiError as exc:  # 404 on the asset itself and the like: not worth retrying
            raise DownloadGaveUp(str(exc)) from None
        else:
            return saved, attempt
        finally:
            ctx.downloading -= 1
        delay = backoff_s(attempt, base_s=settings.backoff_base_s, max_s=settings.backoff_max_s)
        log.debug("%s: %s; retry %d in %.1fs", asset_id, last_error, attempt, delay)
        await asyncio.sleep(delay)
    raise DownloadGaveUp(last_error)
