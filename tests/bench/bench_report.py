"""The contact sheet at scale: build time, page size and time to first render in headless Chromium, at 1,584
jobs (samples/overnight-grid.yaml) and 10,000 jobs (not part of the test run).

    .venv/bin/python tests/bench/bench_report.py [--jobs 1584 10000] [--keep DIR]

Each case expands a manifest (the real loader), writes a run folder whose every job is downloaded (every
output a hard link to the sample clip; no posters, so the build is the page's alone), times
`write_report` (and its layout and render parts), then opens report.html over file:// in a fresh headless
Chromium and reads: first contentful paint, DOMContentLoaded, the moment the page's script is done
(`performance.mark('ltx-sheet-ready')`) and how long it ran, <video> elements once settled (players exist only near the
screen), DOM nodes, JS heap, and how long switching the seed selector takes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the CDP driver
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the project

from benchlib import CLIP, ROOT, machine, table  # noqa: E402
from browser import CHROMIUM, Browser  # noqa: E402

from pipeline.ledger.results import job_record, write_results  # noqa: E402
from pipeline.ledger.rundir import load_run  # noqa: E402
from pipeline.manifest.load import load_manifest  # noqa: E402
from pipeline.report.grid import layout  # noqa: E402
from pipeline.report.page import write_report  # noqa: E402
from pipeline.report.sheet import render  # noqa: E402
from pipeline.run.storage import output_name  # noqa: E402

TEN_THOUSAND = """\
name: ten-thousand
inputs: {{video: {clip}}}
prompts: [A fantasy landscape at dawn, A neon city at night, A watercolor harbour, A claymation scene, A desert]
sweep:
  videoStrength: [0.2, 0.4, 0.6, 0.8, 1.0]
  modality: [none, canny, depth, pose, detailer]
  guidanceScale: [2, 3, 4, 5]
zip:
  width: [1280, 768, 1024, 960, 640]
  height: [768, 1280, 1024, 540, 640]
seeds: [1, 2, 3, 4]
"""

READ_PAGE = """
(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  await sleep(1500);
  const paint = performance.getEntriesByName('first-contentful-paint')[0];
  const ready = performance.getEntriesByName('ltx-sheet-ready')[0];
  const start = performance.getEntriesByName('ltx-sheet-start')[0];
  const nav = performance.getEntriesByType('navigation')[0];
  const select = document.querySelector('#bar select[name=seed]');
  let switch_ms = null;
  if (select) {
    const started = performance.now();
    select.value = select.options[select.options.length - 1].value;
    select.dispatchEvent(new Event('change', {bubbles: true}));
    switch_ms = performance.now() - started;
  }
  return {fcp_ms: paint ? paint.startTime : null, dcl_ms: nav.domContentLoadedEventEnd,
          ready_ms: ready ? ready.startTime : null, script_ms: ready && start ? ready.startTime - start.startTime : null,
          switch_ms,
          videos: document.querySelectorAll('video').length, tiles: document.querySelectorAll('.t').length,
          shown: document.querySelectorAll('.t:not([hidden])').length,
          nodes: document.getElementsByTagName('*').length};
})()
"""


def build_run(manifest_path: Path, run_dir: Path) -> int:
    """A run folder where every job of the manifest is downloaded; returns the job count."""
    manifest = load_manifest(manifest_path)
    (run_dir / "videos").mkdir(parents=True)
    master = run_dir / "clip.mp4"
    shutil.copyfile(CLIP, master)
    size = master.stat().st_size
    records = []
    for spec in manifest.jobs():
        record = job_record(spec, None, {})
        path = f"videos/{output_name(spec.index, spec.params['prompt'], spec.swept, spec.params['seed'], key=spec.key)}"
        os.link(master, run_dir / path)
        record.update(status="downloaded", job_id=f"job_{spec.index:08x}", server_status="success", cost_cu=20.0,
                      files=[{"asset_id": f"asset_{spec.index}", "path": path, "bytes": size, "sha256": "0" * 64}])
        records.append(record)
    write_results(run_dir, {"name": manifest.name, "model": manifest.model, "job_count": len(records)}, records)
    return len(records)


async def in_browser(page_path: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as profile:
        async with Browser.launch(Path(profile)) as page:
            started = time.monotonic()
            await page.goto(page_path.as_uri(), until="Page.domContentEventFired", timeout_s=120)
            figures = await page.evaluate(READ_PAGE)
            figures["wall_dcl_s"] = time.monotonic() - started
            metrics = {m["name"]: m["value"] for m in (await page.send("Performance.getMetrics"))["metrics"]} \
                if await page.send("Performance.enable") is not None else {}
            figures["heap_mb"] = metrics.get("JSHeapUsedSize", 0) / 1e6
            figures["errors"] = page.errors
            return figures


def case(jobs: int, work: Path) -> dict[str, Any]:
    if jobs == 1584:
        manifest = ROOT / "samples" / "overnight-grid.yaml"
    else:
        manifest = work / f"m{jobs}.yaml"
        manifest.write_text(TEN_THOUSAND.format(clip=CLIP))
    run_dir = work / f"run{jobs}"
    count = build_run(manifest, run_dir)
    result = write_report(run_dir, posters=False, csv=False)
    view = load_run(run_dir)
    started = time.monotonic()
    sheet = layout(view.jobs)
    layout_s = time.monotonic() - started
    started = time.monotonic()
    render(view.run, view.jobs, sheet, lambda job: [])
    render_s = time.monotonic() - started
    browser = asyncio.run(in_browser(result.path))
    return {"jobs": count, "tables": len(sheet.grids), "build_s": result.build_s, "layout_s": layout_s,
            "render_s": render_s, "html_mb": result.bytes / 1e6, **browser}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1584, 10000],
                        help="1584 is samples/overnight-grid.yaml; any other count must be 10000 (built in)")
    parser.add_argument("--keep", type=Path, help="build the run folders here and keep them")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is not installed", file=sys.stderr)
        return 1
    print(machine())
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        work = args.keep or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        for jobs in args.jobs:
            figures = case(jobs, work)
            rows.append(figures)
            if figures["errors"]:
                print(f"{jobs} jobs: browser errors: {figures['errors']}", file=sys.stderr)
    print(table([{"jobs": r["jobs"], "tables": r["tables"], "write_report": f"{r['build_s']:.2f} s",
                   "layout": f"{r['layout_s']:.2f} s", "render": f"{r['render_s']:.2f} s",
                   "HTML": f"{r['html_mb']:.2f} MB", "first paint": f"{r['fcp_ms']:.0f} ms",
                   "DOMContentLoaded": f"{r['dcl_ms']:.0f} ms", "script done": f"{r['ready_ms']:.0f} ms", "script ran": f"{r['script_ms']:.0f} ms",
                   "<video> settled": r["videos"], "tiles": r["tiles"], "shown": r["shown"], "DOM nodes": r["nodes"],
                   "JS heap": f"{r['heap_mb']:.1f} MB", "seed switch": f"{r['switch_ms']:.0f} ms"} for r in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
