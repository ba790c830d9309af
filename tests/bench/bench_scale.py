"""Scale: `plan`, `run`, journal replay, `status` and a no-op resume for 100,000 jobs: time and peak RSS.

Not part of the test suite. Each step is its own process (peak RSS from os.wait4); the run goes against the
fast emulator (T=0.01 s, no rate limit) in another process. The run writes 100,000 outputs of 54 kB
(about 5.4 GB) into a temporary folder, removed at the end.

    python tests/bench/bench_scale.py                  # 100,000 jobs
    python tests/bench/bench_scale.py --jobs 20000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchlib import ROOT, emulator, launch, longest_gc_pause_ms, machine, run_client, run_process, seed_manifest, table

REPLAY = """
import json, sys, time
from pathlib import Path
from pipeline.ledger.journal import Journal
from pipeline.ledger.replay import replay
path = Path(sys.argv[1])
started = time.perf_counter()
if sys.argv[2] == "journal":  # what a resumed run does: cut a torn tail, replay without specs
    journal = Journal(path, keep_specs=False)
    state = journal.state
    journal.close()
else:
    state = replay(path, keep_specs=sys.argv[2] == "keep-specs")
print(json.dumps({"s": time.perf_counter() - started, "jobs": len(state.jobs)}))
"""


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def step(name: str, argv: list[str], **extra: Any) -> dict[str, Any]:
    run = run_process(argv, cwd=ROOT)
    if run.exit_status != 0:
        sys.stderr.write(f"{name} exited {run.exit_status}:\n{run.stderr}\n")
    print(f"  {name}: {run.wall_s:.1f} s", file=sys.stderr, flush=True)
    return {"step": name, "exit": run.exit_status, "wall_s": run.wall_s, "peak_rss_mib": run.peak_rss_mib, **extra}


def replay_step(name: str, journal: Path, mode: str) -> dict[str, Any]:
    """Replay in a fresh process; wall_s is the whole process, replay_s the replay alone."""
    import subprocess

    row = step(name, _python("-c", REPLAY, str(journal), mode))
    done = subprocess.run(_python("-c", REPLAY, str(journal), mode), cwd=ROOT, capture_output=True, text=True,
                          check=True, timeout=600)
    row["replay_s"] = json.loads(done.stdout)["s"]
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--max-in-flight", type=int, default=64)
    args = parser.parse_args()
    print(machine())
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ltx-bench-scale-") as tmp:
        folder = Path(tmp)
        manifest = seed_manifest(folder, args.jobs, name="scale")
        out = folder / "out"
        run_dir = out / "scale"
        rows.append(step("ltx-batch --version (baseline)", _python("-m", "pipeline", "--version")))
        rows.append(step("plan", _python("-m", "pipeline", "plan", str(manifest))))
        rows.append(step("plan --json", _python("-m", "pipeline", "plan", str(manifest), "--json")))
        with emulator(job_time_s=0.01, max_running_jobs=args.jobs) as server:
            gc_stats = folder / "gc.json"
            run = run_client(manifest, server.port, out, rate=100_000, in_flight=args.max_in_flight,
                             settings={"poll_first_delay_s": 0.05, "poll_min_interval_s": 0.02,
                                       "poll_max_interval_s": 0.5},
                             python=launch(gc_stats=gc_stats))
            pauses = json.loads(gc_stats.read_text()) if gc_stats.exists() else {}
            rows.append({"step": "run", "exit": run.exit_status, "wall_s": run.wall_s, "peak_rss_mib": run.peak_rss_mib,
                         "jobs_per_s": args.jobs / run.wall_s,
                         "longest_gc_pause_ms": longest_gc_pause_ms(gc_stats),
                         "gc_ms_total": sum(p["total_ms"] for p in pauses.values()) if pauses else None})
            created = server.stats()["jobs_created"]
            resume = run_client(manifest, server.port, out, rate=100_000, in_flight=args.max_in_flight)
            rows.append({"step": "run again (resume: nothing to do)", "exit": resume.exit_status,
                         "wall_s": resume.wall_s, "peak_rss_mib": resume.peak_rss_mib,
                         "jobs_resent": server.stats()["jobs_created"] - created})
        journal = run_dir / "ledger.jsonl"
        lines = sum(1 for _ in journal.open("rb"))
        size_mb = journal.stat().st_size / 1e6
        rows.append(replay_step("ledger.replay (specs kept, as status)", journal, "keep-specs"))
        rows.append(replay_step("ledger.replay (no specs)", journal, "no-specs"))
        rows.append(replay_step("Journal() open (as a resumed run)", journal, "journal"))
        rows.append(step("ltx-batch status", _python("-m", "pipeline", "status", str(run_dir))))
        rows.append(step("ltx-batch status --json", _python("-m", "pipeline", "status", str(run_dir), "--json")))
        results_mb = (run_dir / "results.json").stat().st_size / 1e6
    print(f"{args.jobs:,} jobs; journal {lines:,} events, {size_mb:.1f} MB; results.json {results_mb:.1f} MB")
    columns = ["step", "exit", "wall_s", "peak_rss_mib", "jobs_per_s", "replay_s", "longest_gc_pause_ms",
               "gc_ms_total", "jobs_resent"]
    print(table(rows, columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
