"""Remake the README's screenshots of the contact sheet: the demo, the seed study and the overnight grid.

    .venv/bin/python samples/screenshots/shoot.py [--out DIR]

Runs each sample manifest against the emulator (a separate process with short jobs, so the overnight
grid's 1,584 jobs take about half a minute; 1% of jobs fail, as real ones do), writes its report, opens
it in headless Chromium (tests/browser.py), sets the view, plays the table for a moment and takes a
PNG, reduced to 128 colours with ffmpeg (no dithering) to stay small. Needs chromium and ffmpeg.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "bench"), str(ROOT)]

from benchlib import KEY, SECRET, emulator  # noqa: E402
from browser import Browser  # noqa: E402

# sample -> (the page's query: what the view shows, script run before the shot, window height in px)
PLAY_FIRST_TABLE = "document.querySelector('.tbl .th .play').click()"
SHOTS = {
    "demo": ("?side=prompt&size=2", PLAY_FIRST_TABLE, 700),
    "seed-study": ("", PLAY_FIRST_TABLE, 640),
    "overnight-grid": ("?size=2", PLAY_FIRST_TABLE, 1000),
}
WIDTH_PX = 1280
PLAY_S = 1.2


async def shoot(page_path: Path, query: str, script: str, height_px: int, target: Path) -> None:
    with tempfile.TemporaryDirectory() as profile:
        async with Browser.launch(Path(profile)) as page:
            await page.send("Emulation.setDeviceMetricsOverride", width=WIDTH_PX, height=height_px,
                            deviceScaleFactor=1, mobile=False)
            await page.goto(page_path.as_uri() + query, until="Page.domContentEventFired")
            await page.evaluate("new Promise(r => setTimeout(r, 800))")
            await page.evaluate(script)
            await page.evaluate(f"new Promise(r => setTimeout(r, {PLAY_S * 1000:.0f}))")
            png = await page.screenshot()
            if page.errors:
                raise SystemExit(f"{page_path}: browser errors: {page.errors}")
    raw = target.with_suffix(".raw.png")
    raw.write_bytes(png)
    try:
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(raw), "-vf",
                        "split[a][b];[a]palettegen=max_colors=128:stats_mode=full[p];[b][p]paletteuse=dither=none",
                        str(target)], check=True, timeout=60)
    finally:
        raw.unlink(missing_ok=True)
    print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}: {target.stat().st_size:,} bytes")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="where the PNGs go (default: next to this script)")
    args = parser.parse_args()
    env = {**os.environ, "SCENARIO_API_KEY": KEY, "SCENARIO_API_SECRET": SECRET}
    with tempfile.TemporaryDirectory() as runs, emulator(job_time_s=0.05, max_running_jobs=400,
                                                        upload_processing_s=0.02, fault_job_failure_rate=0.01,
                                                        seed=3) as server:
        for sample, (query, script, height_px) in SHOTS.items():
            command = [sys.executable, "-m", "pipeline", "run", str(ROOT / "samples" / f"{sample}.yaml"), "-q",
                       "--api-url", f"http://127.0.0.1:{server.port}", "--out", runs, "--rate", "200",
                       "--max-in-flight", "200", "--downloaders", "8"]
            done = subprocess.run(command, cwd=ROOT, env=env, check=False)
            if done.returncode not in (0, 1):  # 1: some jobs failed, as asked
                raise SystemExit(f"{sample}: run exited {done.returncode}")
            asyncio.run(shoot(Path(runs) / sample / "report.html", query, script, height_px,
                              args.out / f"{sample}.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
