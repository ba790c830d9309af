"""The report in a real browser: a real run's report.html opened by headless chromium over CDP."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from browser import CHROMIUM, Browser
from run_helpers import run
from runfolder import job, make_clip, write_run

from pipeline.cli.run import _write_report
from pipeline.emulator import EmulatorServer
from pipeline.report.page import write_report
from pipeline.run.runner import RunOptions
from pipeline.report.sheet import EAGER_VIDEOS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]

MANIFEST = """\
name: look
inputs:
  video: {clip}
prompts:
  - "A neon city at night, rain on the streets"
  - "</video><script>alert('x')</script> & \\"quotes\\" 🎬"
sweep:
  videoStrength: [0.5, 0.8, 1.0]
  modality: [none, depth]
seeds: [7]
"""

# Every <video>: give it its source if it is lazy, load its metadata, and report what went wrong.
CHECK_VIDEOS = """
(async () => {
  const videos = [...document.querySelectorAll('video')];
  const check = v => new Promise(resolve => {
    const finish = () => resolve(v.error ? `error ${v.error.code}: ${v.currentSrc}` :
                                 v.readyState >= 1 ? null : `readyState ${v.readyState}: ${v.currentSrc}`);
    if (v.readyState >= 1 && !v.error) return finish();
    v.addEventListener('loadedmetadata', finish, {once: true});
    v.addEventListener('error', finish, {once: true});
    setTimeout(finish, 8000);
    if (!v.getAttribute('src')) v.src = v.dataset.src;
    v.preload = 'metadata';
    v.load();
  });
  const problems = (await Promise.all(videos.map(check))).filter(Boolean);
  const posters = await Promise.all(videos.filter(v => v.poster).map(v => new Promise(resolve => {
    const image = new Image();
    image.onload = () => resolve(image.naturalWidth);
    image.onerror = () => resolve(0);
    image.src = v.poster;
  })));
  return {videos: videos.length, problems, posters};
})()
"""

FILTER = """
(() => {
  const select = [...document.querySelectorAll('#filters select')]
    .find(s => s.parentElement.textContent.startsWith('prompt'));
  select.value = '0';
  select.dispatchEvent(new Event('change'));
  const visible = [...document.querySelectorAll('.card')].filter(c => !c.hidden && c.offsetParent !== null).length;
  select.value = '';
  select.dispatchEvent(new Event('change'));
  return [visible, document.querySelectorAll('.card').length];
})()
"""

COUNT_SOURCES = "document.querySelectorAll('video[src]').length"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG (asserting its signature and IHDR chunk)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


async def test_real_run_report_plays_in_chromium(tmp_path: Path, emulator_factory: Any) -> None:
    """A real run writes report.html at its end; chromium loads every video and poster with no console error."""
    server: EmulatorServer = await emulator_factory(fault_job_failure_rate=0.2, seed=5)
    manifest = tmp_path / "look.yaml"
    manifest.write_text(MANIFEST.format(clip=make_clip(tmp_path / "clip.mp4")))
    summary = await run(manifest, server, tmp_path / "out", options=RunOptions(progress="off",
                                                                                on_finish=_write_report))
    report = summary.run_dir / "report.html"
    assert report.is_file(), "run should write the report at its end (RunOptions.on_finish)"
    downloaded = summary.counts["downloaded"]
    assert 0 < downloaded < 12 and summary.counts["failed"] > 0

    async with Browser.launch(tmp_path) as page:
        await page.goto(report.as_uri())
        result = await page.evaluate(CHECK_VIDEOS)
        assert result == {"videos": downloaded, "problems": [], "posters": result["posters"]}
        assert len(result["posters"]) == downloaded and all(width > 0 for width in result["posters"])
        assert await page.evaluate(FILTER) == [6, 12]
        assert await page.evaluate("document.querySelectorAll('.card.c-failed .error').length") == \
            summary.counts["failed"]
        assert await page.evaluate("document.scripts.length") == 1
        screenshot = await page.screenshot(captureBeyondViewport=True)
        assert page.errors == []
    (tmp_path / "report.png").write_bytes(screenshot)
    width, height = png_size(screenshot)
    assert width > 0 and height > 0 and len(screenshot) > 10_000


async def test_many_videos_attach_sources_near_the_viewport(tmp_path: Path) -> None:
    """200 jobs served over 127.0.0.1: only the first videos have a src; scrolling attaches nearby ones and
    releases far ones, so the page never holds hundreds of players; every attached one loads."""
    clip = make_clip(tmp_path / "clip.mp4")
    modalities = ("none", "canny", "depth", "pose")
    jobs = [job(i, swept={"videoStrength": round(0.02 * (i // 4 + 1), 2), "modality": modalities[i % 4]})
            for i in range(200)]
    run_dir = write_run(tmp_path / "run", jobs, videos=clip)
    write_report(run_dir, posters=False)
    app = web.Application()
    app.router.add_static("/", run_dir)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with Browser.launch(tmp_path) as page:
            # media elements hold the load event until their metadata is in: DOMContentLoaded is enough here
            await page.goto((run_dir / "report.html").as_uri(), until="Page.domContentEventFired")
            assert await page.evaluate(COUNT_SOURCES) == EAGER_VIDEOS
            await page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
            await page.evaluate("new Promise(r => setTimeout(r, 300))")
            at_bottom = await page.evaluate(COUNT_SOURCES)
            last = await page.evaluate("(() => { const v = [...document.querySelectorAll('video')].pop();"
                                       " return v.getAttribute('src') === v.dataset.src; })()")
            await page.evaluate("window.scrollTo(0, document.body.scrollHeight / 2)")
            await page.evaluate("new Promise(r => setTimeout(r, 300))")
            middle = await page.evaluate(COUNT_SOURCES)
            checked = await page.evaluate(CHECK_VIDEOS.replace("document.querySelectorAll('video')",
                                                               "document.querySelectorAll('video[src]')"))
            assert page.errors == []
    finally:
        await runner.cleanup()
    assert last and EAGER_VIDEOS < at_bottom < EAGER_VIDEOS + 40
    assert middle < EAGER_VIDEOS + 40, "videos scrolled far away give their source back"
    assert checked["problems"] == []
