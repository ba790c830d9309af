"""A no-op resume (every job downloaded, the same command run again): wall time, peak RSS, API requests.

Not part of the test suite. This tree and a baseline (--baseline REF: its `pipeline/` extracted with
`git archive`) resume the same run in turns (ABBA...), in one run of this script, so their figures
compare; each client is its own process (peak RSS from os.wait4) against the fast emulator in another.
Each tree resumes its own copy of the run folder made after the first run (journal and results copied, the
outputs hard-linked), so what one tree leaves there (results.json, a snapshot of the journal) is what its own
next resume finds. After every resume the jobs of results.json and the whole of results.csv are hashed: both
trees must write the same ones. The first run writes N outputs of 54 kB (1.1 GB at 20,000 jobs) into a
temporary folder, removed at the end; --first-run-both also makes the baseline's own first run (its RSS), in a
second folder.

    python tests/bench/bench_resume.py --baseline b1769dc                  # 20,000 jobs, 3 rounds
    python tests/bench/bench_resume.py --baseline b1769dc --baseline main  # against two trees
    python tests/bench/bench_resume.py --baseline main --jobs 100000 --rounds 1 --first-run-both
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchlib import ROOT, api_requests, emulator, machine, run_client, seed_manifest, source_tree, table

FAST_POLLING = {"poll_first_delay_s": 0.05, "poll_min_interval_s": 0.02, "poll_max_interval_s": 0.5}
DIGEST = """
import hashlib, json, sys
from pathlib import Path
run_dir = Path(sys.argv[1])
results = json.loads((run_dir / "results.json").read_text())
digest = hashlib.sha256(json.dumps([results["schema"], results["jobs"]], sort_keys=True).encode())
digest.update((run_dir / "results.csv").read_bytes())
print(digest.hexdigest()[:12])
"""


def written(run_dir: Path) -> str:
    """A digest of what a resume wrote that must not depend on the tree: results.json's jobs and the whole of
    results.csv (the run record holds times, and fields newer trees added). Read in a child process: a forked
    client starts from this process's peak RSS, so this one must stay small."""
    done = subprocess.run([sys.executable, "-c", DIGEST, str(run_dir)], capture_output=True, text=True, check=True,
                          timeout=600)
    return done.stdout.strip()


def copy_run(out: Path, to: Path) -> None:
    """A copy of the run folder out/resume in to/resume: its files copied, its outputs (videos/) hard-linked."""
    source, target = out / "resume", to / "resume"
    shutil.copytree(source, target, copy_function=os.link, ignore=shutil.ignore_patterns(".lock"))
    for name in os.listdir(source):
        if (source / name).is_file() and name != ".lock":
            (target / name).unlink()
            shutil.copy2(source / name, target / name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="resumes per tree (alternating)")
    parser.add_argument("--baseline", metavar="REF", action="append", required=True,
                        help="git ref of a tree to compare with (repeat for several)")
    parser.add_argument("--max-in-flight", type=int, default=64)
    parser.add_argument("--first-run-both", action="store_true", help="also each baseline's own first run (its RSS)")
    args = parser.parse_args()
    print(machine())
    rows: list[dict[str, Any]] = []
    with ExitStack() as stack:
        trees = {"this tree": ROOT, **{ref: stack.enter_context(source_tree(ref)) for ref in args.baseline}}
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="ltx-bench-resume-"))
        server = stack.enter_context(emulator(job_time_s=0.01, max_running_jobs=args.jobs))
        manifest = seed_manifest(Path(tmp), args.jobs, name="resume")
        out = Path(tmp) / "out"

        def client(label: str, step: str, folder: Path, **settings: Any) -> dict[str, Any]:
            before = server.stats()
            run = run_client(manifest, server.port, folder, rate=100_000, in_flight=args.max_in_flight,
                             settings=settings, tree=trees[label])
            after = server.stats()
            print(f"  {label}: {step}: {run.wall_s:.2f} s", file=sys.stderr, flush=True)
            return {"client": label, "step": step, "exit": run.exit_status, "wall_s": run.wall_s,
                    "cpu_s": run.cpu_s, "peak_rss_mib": run.peak_rss_mib,
                    "api_requests": api_requests(after) - api_requests(before),
                    "jobs_created": after["jobs_created"] - before["jobs_created"]}

        rows.append(client("this tree", "run", out, **FAST_POLLING))
        if args.first_run_both:
            for ref in args.baseline:
                rows.append(client(ref, "run", Path(tmp) / f"out-{ref}", **FAST_POLLING))
        digests: dict[str, set[str]] = {label: set() for label in trees}
        order = list(trees)
        folders = {label: Path(tmp) / f"run-{number}" for number, label in enumerate(order)}
        for folder in folders.values():
            copy_run(out, folder)
        for round_ in range(args.rounds):
            for label in order if round_ % 2 == 0 else reversed(order):
                rows.append(client(label, "resume (nothing to do)", folders[label]))
                digests[label].add(written(folders[label] / "resume"))
    resumes = {label: [r["wall_s"] for r in rows if r["client"] == label and r["step"].startswith("resume")]
               for label in trees}
    print(f"{args.jobs:,} jobs; {args.rounds} no-op resume(s) per tree, alternating")
    print(table(rows, ["client", "step", "exit", "wall_s", "cpu_s", "peak_rss_mib", "api_requests", "jobs_created"]))
    new = statistics.median(resumes["this tree"])
    for ref in args.baseline:
        old = statistics.median(resumes[ref])
        print(f"no-op resume, median wall: this tree {new:.2f} s, {ref} {old:.2f} s: {new / old:.2f}x")
    same = len(set().union(*digests.values())) == 1
    print(f"results.json jobs and results.csv identical across trees: {'yes' if same else 'NO'} {digests}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
