"""Time and peak memory of `ltx-batch plan` on 100,000-job manifests (not part of the test run).

    .venv/bin/python tests/bench/bench_plan.py

Each case runs `ltx-batch plan ...` in a fresh Python process and prints its wall time and that
process's peak RSS. The input is a 4 MiB file, hashed once per run. Output goes to /dev/null.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
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


CHILD = ("import resource, sys\n"
         "from pipeline.cli import main\n"
         "try:\n"
         "    sys.exit(main(sys.argv[1:]))\n"
         "finally:\n"
         "    print('peak_rss_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n")


def measure(args: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of `ltx-batch ARGS` in a fresh process, stdout discarded."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    elapsed = time.perf_counter() - started
    kib = int(done.stderr.split("peak_rss_kib")[-1].split()[0])
    return elapsed, kib / 1024  # ru_maxrss is KiB on Linux


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "clip.mp4").write_bytes(os.urandom(4 << 20))
        seconds, mib = measure(["--version"], folder)
        print(f"{'ltx-batch --version (baseline)':<32} {seconds:6.2f} s  {mib:6.1f} MiB peak RSS")
        for label, text in MANIFESTS.items():
            path = folder / f"{label.replace(' ', '-')}.yaml"
            path.write_text(text)
            for run, flags in RUNS.items():
                seconds, mib = measure(["plan", str(path), *flags], folder)
                print(f"{label + ', ' + run:<32} {seconds:6.2f} s  {mib:6.1f} MiB peak RSS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
