"""Benchmark of how finished jobs are noticed: poll_mode `feed` (the job listing) vs `per-job`, in one run.

Not part of the test suite. The emulator and the client run as separate processes on 127.0.0.1; the
emulator's request limit equals the client's `--rate` (a bucket of 2), every case runs both modes one
after the other against a fresh emulator with the same settings, and the figures are the emulator's
(requests per job: every API request, the input's upload included; part PUTs and downloads are not).

    python tests/bench/bench_feed.py                      # every case below
    python tests/bench/bench_feed.py --cases rate         # N = 100 and 1,000 at R = 10 req/s, T = 2 s
    python tests/bench/bench_feed.py --cases fast cap     # N = 10,000 at R = 200, T = 1 s; the running-jobs cap
    python tests/bench/bench_feed.py --cases fast --modes feed
    python tests/bench/bench_feed.py --cases rate --jobs 100

Cases:
- `rate`: R = 10 req/s, T = 2 s (±10%), N = 100 and 1,000: the request rate binds.
- `fast`: N = 10,000 against a fast emulator: R = 200 req/s, T = 1 s; `fast-bucket` the same with the
  emulator's default bucket (a second's worth, 200) instead of 2 (10 ms of slack at 200/s: two busy
  processes on two cores bunch requests past it now and then, whatever the mode).
- `cap`: the account runs at most 8 jobs at once and answers 429 `model_run` (actionLimit 8) past that;
  R = 10 req/s, T = 5 s, N = 200, the client's --max-in-flight 16 (above the cap, learnt from the 429s).
  `cap-r50` (not in the default set): the same at R = 50, where the cap alone binds.

Bounds: `per-job` needs 2 requests a job at best (its POST and one poll; the URL lookups go 200 to a
get-bulk in both modes: before them, 3 a job), so the makespan is at least (2N + 1) / R + T (one upload);
`feed` targets 1.2 requests a job: (1.2 N) / R + T. Under the cap, both are bound by N · T / 8 (target:
within 5%). Requests per job count every API request (the upload's too).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchlib import emulator, machine, run_client, seed_manifest, table

MODES = ("feed", "per-job")
FEED_INTERVAL_S = 2.0  # the default


def case(mode: str, jobs: int, *, rate: float, job_time_s: float, spread: float, cap: int | None = None,
         burst: str = "2", label: str) -> dict[str, Any]:
    """One run of `jobs` jobs in `mode`; the emulator's figures against the bound of the mode."""
    if cap is None:  # in flight: enough that the cap never binds (the feed would list more often if it did)
        in_flight = max(16, math.ceil(rate * (job_time_s + 2 * FEED_INTERVAL_S)))
        knobs: dict[str, Any] = {"max_running_jobs": max(in_flight, 1000)}
    else:
        in_flight = 2 * cap
        knobs = {"max_running_jobs": cap, "job_concurrency_limit": cap}
    with tempfile.TemporaryDirectory(prefix="ltx-bench-") as folder, \
            emulator(job_time_s=job_time_s, job_time_spread_s=job_time_s * spread, rate_limit_per_s=rate,
                     rate_limit_burst=burst, **knobs) as server:
        manifest = seed_manifest(Path(folder), jobs)
        run = run_client(manifest, server.port, Path(folder) / "out", rate=rate, in_flight=in_flight,
                         settings={"poll_mode": mode, "poll_first_delay_s": job_time_s, "poll_min_interval_s": 0.05})
        figures = server.stats()
        emulator_cpu_s = server.cpu_s()
        record = json.loads((Path(folder) / "out" / manifest.stem / "results.json").read_text())["run"]
    routes = figures["requests"]
    if cap is not None:
        bound = jobs * job_time_s / cap
    else:
        bound = ((1.2 * jobs if mode == "feed" else 2 * jobs + 1) / rate) + job_time_s
    return {"case": label, "mode": mode, "jobs": jobs, "in_flight": in_flight, "exit": run.exit_status, "makespan_s": run.wall_s,
            "bound_s": bound, "over_bound": f"{(run.wall_s / bound - 1) * 100:+.1f}%",
            "requests_per_job": sum(n for route, n in routes.items() if "/_s3" not in route and "/_cdn" not in route) / jobs, "listings": routes.get("GET /v1/jobs", 0),
            "polls": routes.get("GET /v1/jobs/{jobId}", 0), "get_bulk": routes.get("POST /v1/assets/get-bulk", 0),
            "lookups": routes.get("GET /v1/assets/{assetId}", 0), "throttled_429": figures["rate_limited"],
            "cap_429": figures.get("concurrency_limited", 0), "rate_cuts": record.get("sending_rate_cuts"),
            "client_cpu_s": run.cpu_s, "emulator_cpu_s": emulator_cpu_s, "fell_back": record.get("poll_mode_why") or "-"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", choices=("rate", "fast", "fast-bucket", "cap", "cap-r50"),
                        default=["rate", "fast", "fast-bucket", "cap"])  # cap-r50 only when named
    parser.add_argument("--jobs", type=int, nargs="+", help="N of the `rate` case (default 100 1000)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--spread", type=float, default=0.1,
                        help="job times vary uniformly by this fraction of T either way (default 0.1: ±10%%)")
    args = parser.parse_args()
    print(machine())
    plan: list[tuple[str, int, dict[str, Any]]] = []
    if "rate" in args.cases:
        plan += [(f"R=10 T=2 N={n}", n, {"rate": 10.0, "job_time_s": 2.0}) for n in (args.jobs or [100, 1000])]
    if "fast" in args.cases:
        plan.append(("fast: R=200 T=1 N=10000", 10_000, {"rate": 200.0, "job_time_s": 1.0}))
    if "fast-bucket" in args.cases:
        plan.append(("fast, bucket 200", 10_000, {"rate": 200.0, "job_time_s": 1.0, "burst": "none"}))
    if "cap" in args.cases:
        plan.append(("cap 8: R=10 T=5 N=200", 200, {"rate": 10.0, "job_time_s": 5.0, "cap": 8}))
    if "cap-r50" in args.cases:  # the cap alone binds: requests 20 ms apart instead of 100
        plan.append(("cap 8: R=50 T=5 N=200", 200, {"rate": 50.0, "job_time_s": 5.0, "cap": 8}))
    rows = []
    for label, jobs, options in plan:
        for mode in args.modes:
            rows.append(case(mode, jobs, label=label, spread=args.spread, **options))
            print(f"  {label} {mode}: {rows[-1]['makespan_s']:.1f} s", file=sys.stderr, flush=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
