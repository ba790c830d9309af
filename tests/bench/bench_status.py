"""Time and peak memory of `ltx-batch status` (text, and --json with every job listed) and of `plan` on a run
folder that exists, at 20,000 and 100,000 jobs (not part of the test run).

    .venv/bin/python tests/bench/bench_status.py

The journal is synthesised: 75% of the jobs downloaded (one file each), 10% failed, 5% submitted, the rest never
sent; the manifest is one prompt over the sample clip with N seeds. Each case runs in a fresh Python process
(wall time and that process's peak RSS, os.wait4); output goes to /dev/null.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from benchlib import ROOT, machine, run_process, seed_manifest, table

SIZES = (20_000, 100_000)


def write_journal(run_dir: Path, manifest: Path, jobs: int) -> None:
    """A finished session's journal over the manifest's jobs (keys from the manifest itself)."""
    sys.path.insert(0, str(ROOT))
    from pipeline.manifest.load import load_manifest

    run_dir.mkdir(parents=True)
    t = time.time() - 3600
    with (run_dir / "ledger.jsonl").open("w") as out:
        out.write(json.dumps({"t": t, "ev": "run", "manifest": str(manifest), "name": run_dir.name,
                              "job_count": jobs, "pid": 1}) + "\n")
        for spec in load_manifest(manifest).jobs():
            share = spec.index % 20
            if share >= 18:
                continue  # 10% never sent
            key = spec.key
            out.write(json.dumps({"t": t, "ev": "intent", "key": key, "attempt": 1, "spec": spec.to_json(),
                                  "file": f"videos/{spec.index:06d}.mp4"}) + "\n")
            if share == 17:
                out.write(json.dumps({"t": t, "ev": "failed", "key": key, "reason": "rejected",
                                      "error": "videoStrength is out of range"}) + "\n")
                continue
            out.write(json.dumps({"t": t, "ev": "submitted", "key": key, "job_id": f"job_{spec.index}",
                                  "cost_cu": 15}) + "\n")
            if share == 16:
                continue
            out.write(json.dumps({"t": t, "ev": "succeeded", "key": key, "asset_ids": [f"asset_{spec.index}"]})
                      + "\n")
            out.write(json.dumps({"t": t, "ev": "downloaded", "key": key, "asset_id": f"asset_{spec.index}",
                                  "path": f"videos/{spec.index:06d}.mp4", "bytes": 1000, "sha256": "0" * 64})
                      + "\n")
        out.write(json.dumps({"t": t + 60, "ev": "end", "reason": None}) + "\n")


def measure(label: str, args: list[str], cwd: Path) -> dict[str, object]:
    run = run_process([sys.executable, "-m", "pipeline", *args], cwd=cwd,
                      env={**os.environ, "PYTHONPATH": str(ROOT)})
    if run.exit_status != 0:
        sys.stderr.write(run.stderr)
    return {"case": label, "exit": run.exit_status, "wall_s": round(run.wall_s, 2),
            "peak_rss_mib": round(run.peak_rss_mib, 1)}


def main() -> int:
    print(machine())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows.append(measure("ltx-batch --version (baseline)", ["--version"], folder))
        for jobs in SIZES:
            manifest = seed_manifest(folder, jobs)
            run_dir = folder / "out" / manifest.stem
            write_journal(run_dir, manifest, jobs)
            rows.append(measure(f"{jobs:,} jobs: status", ["status", str(run_dir)], folder))
            rows.append(measure(f"{jobs:,} jobs: status --json (jobs listed)", ["status", str(run_dir), "--json"],
                                folder))
            rows.append(measure(f"{jobs:,} jobs: plan (folder exists)", ["plan", str(manifest), "--out",
                                                                           str(folder / "out")], folder))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
