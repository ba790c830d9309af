"""Stray jobs: a second server job made for one job's body (it was paid twice before reconciling adopted the
first). They are never lost: the journal keeps their ids, `status` lists them, and `run --download-strays`
saves their outputs under `videos/strays/<job id>.mp4` (`.png`... when the CDN's Content-Type says so),
journaled like any download (`stray-downloaded`).
"""

from __future__ import annotations

import asyncio
import logging

from pipeline.api.answers import FINAL_FAILED, FINAL_OK, JobView
from pipeline.api.retry import backoff_s
from pipeline.errors import ApiError, RunHalted
from pipeline.run.context import RunContext
from pipeline.run.download import DownloadGaveUp, fetch_asset, saved_path
from pipeline.run.storage import VIDEOS_DIR, StorageError, safe_path

log = logging.getLogger(__name__)

STRAYS_DIR = f"{VIDEOS_DIR}/strays"


async def download_strays(ctx: RunContext) -> None:
    """Save the outputs of every stray job not saved yet; a stray that cannot be saved is logged, not fatal."""
    state = ctx.journal.state
    for job_id in [j for j in state.strays if j not in state.stray_files]:
        try:
            view = await _until_final(ctx, job_id)
            if view is None:
                continue
            for part, asset_id in enumerate(view.asset_ids):
                relative = f"{STRAYS_DIR}/{job_id}" + (f"-{part}" if part else "") + ".mp4"
                saved, _ = await fetch_asset(ctx, asset_id, relative, safe_path(ctx.run_dir, relative))
                await ctx.journal.write("stray-downloaded", job_id=job_id, asset_id=asset_id,
                                        path=saved_path(relative, saved),
                                        bytes=saved.bytes, sha256=saved.sha256)
            log.info("stray job %s saved under %s", job_id, STRAYS_DIR)
        except RunHalted:
            return
        except (ApiError, DownloadGaveUp, StorageError) as exc:
            log.warning("stray job %s could not be saved: %s (the next --download-strays tries again)", job_id, exc)


async def _until_final(ctx: RunContext, job_id: str) -> JobView | None:
    """Poll the stray until it ends; its view on success, None (logged) on failure or after job_timeout_s."""
    loop = asyncio.get_running_loop()
    started, polls = loop.time(), 0
    while True:
        view = await ctx.api.job(job_id)
        if view.status in FINAL_OK:
            return view
        if view.status in FINAL_FAILED:
            log.info("stray job %s ended %r: nothing to save", job_id, view.status)
            return None
        polls += 1
        if ctx.settings.job_timeout_s and loop.time() - started > ctx.settings.job_timeout_s:
            log.warning("stray job %s still %r after job_timeout_s: the next --download-strays looks again",
                        job_id, view.status)
            return None
        await asyncio.sleep(backoff_s(polls, base_s=ctx.settings.poll_min_interval_s,
                                      max_s=ctx.settings.poll_max_interval_s))
