"""The report in a real browser: a real run's report.html opened by headless chromium over CDP; players only near
the screen, synchronised playback of a row and a table, the selectors and their state in the URL."""

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

# Every tile with a video: load it in a <video> of our own, and its poster; report what went wrong.
CHECK_VIDEOS = """
(async () => {
  const tiles = [...document.querySelectorAll('a.t[href]')];
  const check = tile => new Promise(resolve => {
    const v = document.createElement('video');
    const finish = () => resolve(v.error ? `error ${v.error.code}: ${v.currentSrc}` :
                                 v.readyState >= 1 ? null : `readyState ${v.readyState}: ${v.currentSrc}`);
    v.addEventListener('loadedmetadata', finish, {once: true});
    v.addEventListener('error', finish, {once: true});
    setTimeout(finish, 8000);
    v.muted = true;
    v.preload = 'metadata';
    v.src = tile.getAttribute('href');
  });
  const problems = (await Promise.all(tiles.map(check))).filter(Boolean);
  const posters = await Promise.all([...document.querySelectorAll('.t img')].map(img => new Promise(resolve => {
    const image = new Image();
    image.onload = () => resolve(image.naturalWidth);
    image.onerror = () => resolve(0);
    image.src = img.getAttribute('src');
  })));
  return {videos: tiles.length, problems, posters};
})()
"""

SHOWN = "[...document.querySelectorAll('.t')].filter(t => !t.hidden && t.offsetParent !== null).length"
SIDE_BY_SIDE = """
(() => {
  const box = document.querySelector('#bar input[name=side][value=prompt]');
  box.click();
  const shown = %s;
  box.click();
  return [shown, %s];
})()
""" % (SHOWN, SHOWN)

COUNT_PLAYERS = "document.querySelectorAll('video').length"
SLEEP = "new Promise(r => setTimeout(r, %d))"


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
        assert await page.evaluate(SHOWN) == 6  # one prompt per cell: 3 strengths x 2 modalities
        assert await page.evaluate(SIDE_BY_SIDE) == [12, 6]
        assert await page.evaluate("document.querySelectorAll('.t.x-failed[data-e]').length") == \
            summary.counts["failed"]
        assert await page.evaluate("document.scripts.length") == 1
        screenshot = await page.screenshot(captureBeyondViewport=True)
        assert page.errors == []
    (tmp_path / "report.png").write_bytes(screenshot)
    width, height = png_size(screenshot)
    assert width > 0 and height > 0 and len(screenshot) > 10_000


async def test_players_exist_only_near_the_screen(tmp_path: Path) -> None:
    """200 jobs served over 127.0.0.1: the markup holds no player; the script gives the tiles near the screen one,
    takes it back from those scrolled far away, and every player it made loads."""
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
            await page.goto(f"http://127.0.0.1:{port}/report.html")
            await page.evaluate(SLEEP % 200)
            at_top = await page.evaluate(COUNT_PLAYERS)
            await page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
            await page.evaluate(SLEEP % 200)
            at_bottom = await page.evaluate(COUNT_PLAYERS)
            last = await page.evaluate("(() => { const t = [...document.querySelectorAll('.t')].pop();"
                                       " const v = t.querySelector('video');"
                                       " return !!v && v.getAttribute('src') === t.getAttribute('href'); })()")
            first_released = await page.evaluate("!document.querySelector('.t').querySelector('video')")
            await page.evaluate("window.scrollTo(0, document.body.scrollHeight / 2)")
            await page.evaluate(SLEEP % 200)
            middle = await page.evaluate(COUNT_PLAYERS)
            loaded = await page.evaluate("Promise.all([...document.querySelectorAll('video')].map(v => new Promise("
                                         "r => v.readyState >= 1 ? r(!v.error) : (v.onloadedmetadata = () => r(true),"
                                         " v.onerror = () => r(false)))))")
            assert page.errors == []
    finally:
        await runner.cleanup()
    assert all(0 < n < 70 for n in (at_top, at_bottom, middle)), (at_top, at_bottom, middle)  # of 200
    assert last, "the last tile gets a player once scrolled to"
    assert first_released, "a tile scrolled far away gives its player back"
    assert loaded and all(loaded)


def sync_run(tmp_path: Path) -> Path:
    """16 real clips: 2 prompts x videoStrength (0.4, 0.8) x modality (none, depth) x seeds (5, 6)."""
    clip = make_clip(tmp_path / "clip.mp4")
    jobs = []
    for p, prompt in enumerate(("a city", "a harbour")):
        for strength in (0.4, 0.8):
            for modality in ("none", "depth"):
                for seed in (5, 6):
                    jobs.append(job(len(jobs), prompt=prompt, seed=seed, swept={
                        "prompt": p, "videoStrength": strength, "modality": modality, "seed": seed}))
    run_dir = write_run(tmp_path / "run", jobs, videos=clip)
    write_report(run_dir, posters=False)
    return run_dir / "report.html"


# Play a scope (a row or a table) with its button, sample its players' clocks, scrub it, pause it.
SYNC = """
(async (scopeSelector, buttonSelector) => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const scope = document.querySelector(scopeSelector);
  const players = () => [...scope.querySelectorAll('.t:not([hidden]) video')];
  await Promise.all(players().map(v => v.readyState >= 1 ? 0 : new Promise(r => v.onloadedmetadata = r)));
  const others = [...document.querySelectorAll('video')].filter(v => !scope.contains(v));
  scope.querySelector(buttonSelector + ' .play').click();
  const spreads = [], times = [];
  for (let i = 0; i < 4; i++) {
    await sleep(150);
    const t = players().map(v => v.currentTime);
    times.push(Math.min(...t));
    spreads.push(Math.max(...t) - Math.min(...t));
  }
  const playing = players().every(v => !v.paused);
  const othersStill = others.every(v => v.paused);
  const scrub = scope.querySelector(buttonSelector + ' .scrub');
  scrub.value = '800';
  scrub.dispatchEvent(new Event('input', {bubbles: true}));
  await sleep(50);
  const scrubbed = players().map(v => v.currentTime);
  scope.querySelector(buttonSelector + ' .play').click();
  await sleep(150);
  const paused = players().map(v => [v.paused, v.currentTime]);
  const space = () => document.body.dispatchEvent(new KeyboardEvent('keydown', {key: ' ', bubbles: true}));
  space();
  await sleep(150);
  const resumed = players().every(v => !v.paused);
  space();
  return {count: players().length, spreads, times, playing, othersStill, scrubbed, paused, resumed,
          duration: players()[0].duration};
})
"""


async def test_rows_and_tables_play_in_sync(tmp_path: Path) -> None:
    """A row's play button plays its players on one clock (within 50 ms of each other while they run), its
    scrubber moves all of them to the same moment, and pause stops them together; a table's controls do the
    same for every player of the table, and the rest of the page stays still; Space resumes the last one."""
    report = sync_run(tmp_path)
    async with Browser.launch(tmp_path) as page:
        await page.goto(report.as_uri(), until="Page.domContentEventFired")
        row = await page.evaluate(SYNC + "('tbody tr:nth-child(2)', 'th')")
        table = await page.evaluate(SYNC + "('.tbl', '.th')")
        assert page.errors == []
    for result, count in ((row, 2), (table, 4)):
        assert result["count"] == count and result["playing"] and result["othersStill"]
        assert max(result["spreads"]) < 0.05, result["spreads"]
        assert result["times"][-1] - result["times"][0] > 0.35, result["times"]  # the clock runs
        at = 0.8 * result["duration"]
        assert all(abs(t - at) < 0.1 for t in result["scrubbed"]), (at, result["scrubbed"])
        assert all(paused for paused, _ in result["paused"]) and result["resumed"], "Space plays it again"
        times = [t for _, t in result["paused"]]
        assert max(times) - min(times) < 0.02, times


# The selectors: what each cell shows; their state in the URL; the tile size.
CELLS = """
(() => [...document.querySelectorAll('.cell')].map(cell =>
  [...cell.querySelectorAll('.t')].filter(t => !t.hidden).map(t => [t.dataset.p, t.dataset.s, t.getAttribute('href')])))()
"""
CHOOSE = """
(() => {
  const seed = document.querySelector('#bar select[name=seed]');
  seed.value = '6';
  seed.dispatchEvent(new Event('change', {bubbles: true}));
  const prompt = document.querySelector('#bar select[name=prompt]');
  prompt.value = '2';
  prompt.dispatchEvent(new Event('change', {bubbles: true}));
  const size = document.querySelector('#bar input[name=size]');
  size.value = '1';
  size.dispatchEvent(new Event('input', {bubbles: true}));
  return [location.search, document.documentElement.dataset.size,
          document.querySelector('.tbl .now').textContent];
})()
"""


async def test_selectors_choose_each_cells_job_and_live_in_the_url(tmp_path: Path) -> None:
    """Each cell shows one job: the first prompt and seed at first; choosing seed 6 and prompt 2 shows those
    jobs' videos instead, the choice (and tile size) goes into the URL, and opening that URL restores it."""
    report = sync_run(tmp_path)
    async with Browser.launch(tmp_path) as page:
        await page.goto(report.as_uri(), until="Page.domContentEventFired")
        before = await page.evaluate(CELLS)
        query, size, now = await page.evaluate(CHOOSE)
        after = await page.evaluate(CELLS)
        await page.goto(report.as_uri() + query, until="Page.domContentEventFired")
        restored = await page.evaluate(CELLS)
        state = await page.evaluate("[document.querySelector('#bar select[name=seed]').value,"
                                    " document.querySelector('#bar select[name=prompt]').value,"
                                    " document.documentElement.dataset.size]")
        assert page.errors == []
    assert all(len(cell) == 1 and cell[0][:2] == ["1", "5"] for cell in before), before
    assert all(len(cell) == 1 and cell[0][:2] == ["2", "6"] for cell in after), after
    assert all(b[0][2] != a[0][2] for b, a in zip(before, after)), "each cell shows another video"
    assert query == "?prompt=2&seed=6&size=1" and size == "1"
    assert now == "each cell shows prompt 2: a harbour · seed 6"
    assert restored == after and state == ["6", "2", "1"]
