"""Time and peak memory of `ltx-batch plan` on 100,000-job manifests (not part of the test run).

    .venv/bin/python tests/bench/bench_plan.py

Each case runs `ltx-batch plan ...` in a fresh Python process and prints its wall time and that
process's peak RSS (os.wait4). The input is a 4 MiB file, hashed once per run. Output goes to /dev/null.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from benchlib import machine, run_process, table

SWEEP = """
inputs: {{video: clip.mp4}}
prompts: [a, b, c, d, e]
sweep:
  videoStrength: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
  modality: [none, canny, depth, pose, detailer]
  guidanceScale: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
  cameraMotion: [none, static, dolly_in, dolly_out]
  {last}
"""
MANIFESTS = {
    "explicit seeds": SWEEP.format(last="") + "seeds: {count: 10, from: 0}\n",
    "derived seeds": SWEEP.format(last="numInferenceSteps: [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]"),
}
RUNS = {"plan": [], "plan --json": ["--json"], "plan --all": ["--all"]}


def measure(label: str, args: list[str], cwd: Path) -> dict[str, object]:
    """Wall seconds and peak RSS of `ltx-batch ARGS` in a fresh process, stdout discarded."""
    run = run_process([sys.executable, "-m", "pipeline", *args], cwd=cwd,
                      env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    if run.exit_status != 0:
        sys.stderr.write(run.stderr)
    return {"case": label, "exit": run.exit_status, "wall_s": run.wall_s, "peak_rss_mib": run.peak_rss_mib}


def main() -> int:
    print(machine())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "clip.mp4").write_bytes(os.urandom(4 << 20))
        rows.append(measure("ltx-batch --version (baseline)", ["--version"], folder))
        for label, text in MANIFESTS.items():
            path = folder / f"{label.replace(' ', '-')}.yaml"
            path.write_text(text)
            for run, flags in RUNS.items():
                rows.append(measure(f"100,000 jobs, {label}, {run}", ["plan", str(path), *flags], folder))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
