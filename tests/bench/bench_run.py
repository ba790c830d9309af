"""Benchmark of `ltx-batch run` under a rate limit: makespan vs the lower bound, requests per job, 429s, RSS.

Not part of the test suite. The emulator and the client run as separate processes on 127.0.0.1, so the
client's peak RSS (os.wait4) is its own. The emulator's limit equals the client's `--rate` (a bucket of 2,
i.e. 10 ms of slack at 200/s) unless --account-rate / --burst say otherwise.

    python tests/bench/bench_run.py                           # N = 100, 1,000, 10,000 at R=200 req/s, T=1 s
    python tests/bench/bench_run.py --jobs 500 --rate 50 --job-time-s 2
    python tests/bench/bench_run.py --memory                  # also peak RSS at 500 vs 10,000 jobs (fast emulator)
    python tests/bench/bench_run.py --jobs 1000 --burst none  # the emulator's default bucket (one second's worth)
    python tests/bench/bench_run.py --jobs 100 --account-rate 10 --baseline REF   # a 429 storm, REF's client too
    python tests/bench/bench_run.py --gc-report               # also each process's longest GC pause
    python tests/bench/bench_run.py --jobs 100 --rate 20 --job-time-s 2 --max-running 4 --concurrency-limit 4
                                                              # the account's running-jobs cap (429 model_run)

Lower bound of the makespan: every job needs at least 3 API requests (submit, one poll, one asset lookup)
out of a budget of R per second, plus one upload, and the last job still runs T seconds after it is
submitted: bound = (3N + 1) / R + T. When the emulator runs at most M jobs at once, ceil(N / M) * T bounds
it too; the larger bound counts. Targets (issue 4): 0 429s, < 3.5 requests/job, makespan within 15%.
With --concurrency-limit C the emulator answers a generate 429 (details.actionName model_run, actionLimit C)
while C jobs are pending, queued or running; the client's --max-in-flight stays above C, so the cap is
learnt from the 429s (issue 11: makespan within 15% of ceil(N / C) * T, at most one such 429 per job).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchlib import ROOT, api_requests, emulator, launch, longest_gc_pause_ms, machine, run_client, seed_manifest, source_tree, table


def rate_case(jobs: int, rate: float, job_time_s: float, max_running: int, *, tree: Path = ROOT,
              label: str = "current", burst: str = "2", account_rate: float | None = None,
              gc_report: bool = False, concurrency_limit: int | None = None) -> dict[str, Any]:
    in_flight = max(8, math.ceil(rate / 3 * job_time_s * 2))
    limit = account_rate or rate
    with tempfile.TemporaryDirectory(prefix="ltx-bench-") as folder:
        gc_files = {who: Path(folder) / f"gc-{who}.json" for who in ("emulator", "client")} if gc_report else {}
        with emulator(job_time_s=job_time_s, job_time_spread_s=job_time_s * 0.1, max_running_jobs=max_running,
                      rate_limit_per_s=limit, rate_limit_burst=burst,
                      **({"job_concurrency_limit": concurrency_limit} if concurrency_limit else {}),
                      python=launch(gc_stats=gc_files.get("emulator"))) as server:
            run = run_client(seed_manifest(Path(folder), jobs), server.port, Path(folder) / "out", rate=rate,
                             in_flight=in_flight, settings={"poll_first_delay_s": job_time_s,
                                                            "poll_min_interval_s": 0.05}, tree=tree,
                             python=launch(gc_stats=gc_files.get("client")))
            figures = server.stats()
            emulator_rss_mib = server.peak_rss_mib()
        pauses = {f"{who}_gc_max_ms": longest_gc_pause_ms(path) for who, path in gc_files.items()}
    bound = max((3 * jobs + 1) / min(rate, limit) + job_time_s, math.ceil(jobs / max_running) * job_time_s)
    requests = api_requests(figures)
    return {"client": label, "jobs": jobs, "rate": rate, "limit": f"{limit:g}/{burst}", "exit": run.exit_status,
            "makespan_s": run.wall_s, "bound_s": bound, "over_bound": f"{(run.wall_s / bound - 1) * 100:+.1f}%",
            "requests_per_job": requests / jobs, "polls_per_job": figures["requests"].get("GET /v1/jobs/{jobId}", 0) / jobs,
            "throttled_429": figures["rate_limited"], "cap_429": figures.get("concurrency_limited", 0),
            "jobs_created": figures["jobs_created"],
            "client_peak_rss_mib": run.peak_rss_mib, "emulator_peak_rss_mib": emulator_rss_mib, **pauses}


def memory_case(jobs: int) -> dict[str, Any]:
    with emulator(job_time_s=0.05, max_running_jobs=1000) as server, \
            tempfile.TemporaryDirectory(prefix="ltx-bench-") as folder:
        run = run_client(seed_manifest(Path(folder), jobs), server.port, Path(folder) / "out", rate=2000,
                         in_flight=64, settings={"poll_first_delay_s": 0.05, "poll_min_interval_s": 0.05})
    return {"jobs": jobs, "exit": run.exit_status, "wall_s": run.wall_s, "jobs_per_s": jobs / run.wall_s,
            "client_peak_rss_mib": run.peak_rss_mib}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[100, 1000, 10_000])
    parser.add_argument("--rate", type=float, default=200.0, help="emulator limit = client --rate (requests/s)")
    parser.add_argument("--job-time-s", type=float, default=1.0)
    parser.add_argument("--max-running", type=int, default=1000, help="emulator's jobs running at once")
    parser.add_argument("--burst", default="2", help="the emulator's bucket (default 2; none: ceil(limit))")
    parser.add_argument("--account-rate", type=float, help="the emulator's limit when it differs from --rate "
                                                               "(a 429 storm: --rate 200 --account-rate 10)")
    parser.add_argument("--concurrency-limit", type=int, help="the account's running-jobs cap (429 model_run)")
    parser.add_argument("--gc-report", action="store_true", help="longest GC pause of each process (launch.py)")
    parser.add_argument("--baseline", metavar="GIT_REF", help="also run the client of this git ref, interleaved")
    parser.add_argument("--memory", action="store_true", help="also peak RSS at --memory-jobs (fast emulator)")
    parser.add_argument("--memory-jobs", type=int, nargs=2, default=(500, 10_000))
    args = parser.parse_args()
    print(machine())
    print(f"R={args.rate:g} req/s (client --rate), emulator limit {args.account_rate or args.rate:g} req/s, "
          f"burst {args.burst}; T={args.job_time_s:g} s (spread ±10%), emulator runs up to {args.max_running} "
          f"jobs at once")
    rows = []
    with source_tree(args.baseline) as baseline:
        trees = [(ROOT, "current")] + ([(baseline, args.baseline)] if args.baseline else [])
        for jobs in args.jobs:
            for tree, label in trees:
                rows.append(rate_case(jobs, args.rate, args.job_time_s, args.max_running, tree=tree, label=label,
                                      burst=args.burst, account_rate=args.account_rate, gc_report=args.gc_report,
                                      concurrency_limit=args.concurrency_limit))
                print(f"  {label} N={jobs}: {rows[-1]['makespan_s']:.1f} s", file=sys.stderr, flush=True)
    print(table(rows))
    if args.memory:
        small, large = (memory_case(n) for n in args.memory_jobs)
        print()
        print(table([small, large]))
        print(f"client peak RSS growth {args.memory_jobs[0]:,} -> {args.memory_jobs[1]:,} jobs: "
              f"{large['client_peak_rss_mib'] - small['client_peak_rss_mib']:+.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
