"""Throughput of `ltx-batch run` with no rate limit: jobs per second end to end against the emulator.

Not part of the test suite. Small videos (the 54 kB sample clip), tiny job time, a client rate far above
what it can send, an emulator with no rate limit and room for every job at once.

    python tests/bench/bench_throughput.py                        # client and emulator in separate processes
    python tests/bench/bench_throughput.py --baseline HEAD~3      # and the client of git ref HEAD~3, interleaved
    python tests/bench/bench_throughput.py --in-process           # also both in one process (one event loop)
    python tests/bench/bench_throughput.py --profile cprofile     # profile the client process (top functions)
    python tests/bench/bench_throughput.py --profile pyinstrument # the same with pyinstrument (pip install it)

Each row is one run; with `--repeat` the trees alternate in ABBA order (current, baseline, baseline,
current, ...), so a slow drift of the machine's load hits both alike; the ratio is the median over rounds.
CPU is the client process's user + system time.

    python tests/bench/bench_throughput.py --baseline HEAD --revert e84a295 --repeat 6   # HEAD without one commit
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import ROOT, emulator, launch, machine, run_client, seed_manifest, source_tree, table

RATE = 100_000.0  # client requests/s: far above what one process can send
FAST_SETTINGS = {"poll_first_delay_s": 0.05, "poll_min_interval_s": 0.02, "poll_max_interval_s": 0.5}


def separate(jobs: int, job_time_s: float, in_flight: int, *, tree: Path, label: str,
             python: tuple[str, ...] | None = None, fsync_delay_ms: float = 0.0) -> dict[str, Any]:
    """One run, client and emulator in separate processes; counts the client's fsyncs unless `python` is given."""
    with emulator(job_time_s=job_time_s, max_running_jobs=100_000) as server, \
            tempfile.TemporaryDirectory(prefix="ltx-bench-") as folder:
        counts = Path(folder) / "fsyncs.json"
        if python is None:
            python = launch(fsync_delay_ms=fsync_delay_ms, count_fsyncs=counts)
        before = server.cpu_s()
        run = run_client(seed_manifest(Path(folder), jobs), server.port, Path(folder) / "out", rate=RATE,
                         in_flight=in_flight, settings=FAST_SETTINGS, python=python, tree=tree)
        emulator_cpu_s = server.cpu_s() - before
        fsyncs = json.loads(counts.read_text()) if counts.exists() else {}
    return {"client": label, "fsync_delay_ms": fsync_delay_ms, "jobs": jobs, "exit": run.exit_status,
            "wall_s": run.wall_s, "jobs_per_s": jobs / run.wall_s, "client_cpu_ms_per_job": run.cpu_s / jobs * 1000,
            "emulator_cpu_ms_per_job": emulator_cpu_s / jobs * 1000,
            "journal_fsyncs_per_job": fsyncs.get("ledger.jsonl", 0) / jobs if fsyncs else None,
            "client_peak_rss_mib": run.peak_rss_mib}


async def _in_process(jobs: int, job_time_s: float, in_flight: int, folder: Path) -> float:
    from pipeline.config import Credentials, load_settings
    from pipeline.emulator import EMULATOR_API_KEY, EMULATOR_API_SECRET, Emulator, EmulatorServer
    from pipeline.manifest.load import load_manifest
    from pipeline.run.runner import RunOptions, run_manifest

    async with EmulatorServer(Emulator(job_time_s=job_time_s, max_running_jobs=100_000)) as server:
        started = time.perf_counter()
        manifest = load_manifest(seed_manifest(folder, jobs))
        settings = load_settings(overrides={**FAST_SETTINGS, "api_base_url": server.url,
                                            "output_dir": str(folder / "out"), "max_requests_per_s": RATE,
                                            "max_in_flight_jobs": in_flight}, environ={})
        summary = await run_manifest(manifest, settings, Credentials(EMULATOR_API_KEY, EMULATOR_API_SECRET),
                                     folder / "out" / manifest.name, RunOptions(progress="off"))
        wall = time.perf_counter() - started
        if summary.exit_status != 0:
            raise SystemExit(f"in-process run failed: {summary.counts}")
        return wall


def in_process(jobs: int, job_time_s: float, in_flight: int, profile: str | None) -> dict[str, Any]:
    """Client and emulator on one event loop in this process (what cProfile sees whole)."""
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="ltx-bench-") as folder:
        if profile == "cprofile":
            import cProfile

            profiler = cProfile.Profile()
            wall = profiler.runcall(asyncio.run, _in_process(jobs, job_time_s, in_flight, Path(folder)))
            _print_cprofile(pstats.Stats(profiler), "in-process (client + emulator)")
        else:
            wall = asyncio.run(_in_process(jobs, job_time_s, in_flight, Path(folder)))
    return {"client": "current (in-process)", "jobs": jobs, "exit": 0, "wall_s": wall, "jobs_per_s": jobs / wall}


def _group(path: str, function: str) -> str:
    """Where a profiled function belongs: our modules one by one, libraries and the kernel by kind."""
    if "/pipeline/" in path:
        return "ours: pipeline/" + path.split("/pipeline/", 1)[1]
    for marks, name in ((("aiohttp", "yarl", "multidict"), "aiohttp (HTTP client)"),
                        (("asyncio", "concurrent", "threading", "selectors"), "asyncio loop and thread hand-offs"),
                        (("aiofiles",), "aiofiles"), (("json",), "json"), (("pathlib", "posixpath"), "pathlib")):
        if any(mark in path for mark in marks):
            return name
    if path == "~":
        if any(word in function for word in ("'send'", "'recv'", "'poll'")):
            return "kernel: socket send/recv, epoll wait (" + function.split("'")[1] + ")"
        if "posix." in function:
            return "kernel: posix calls (" + function.split("posix.")[1].rstrip(">}") + ")"
        return "C built-ins"
    return "other"


def _print_groups(stats: pstats.Stats, title: str) -> None:
    totals: dict[str, float] = {}
    for (path, _, function), (_, _, own_s, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        key = _group(path, function)
        totals[key] = totals.get(key, 0.0) + own_s
    whole = sum(totals.values())
    shown = {k: v for k, v in totals.items() if v >= whole * 0.005}
    shown["(the rest, each under 0.5%)"] = whole - sum(shown.values())
    rows = [{"where": k, "own_s": v, "share": f"{v / whole * 100:.1f}%"}
            for k, v in sorted(shown.items(), key=lambda kv: -kv[1])]
    print(f"\n--- {title}: own time by place ---\n{table(rows)}")


def _print_cprofile(stats: pstats.Stats, title: str, top: int = 30) -> None:
    _print_groups(stats, title)
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        stats.stream = out
        stats.sort_stats(order).print_stats(top)
        text = out.getvalue()
        body = text[text.find("   ncalls"):]
        print(f"\n--- {title}: top {top} by {order} ---\n{body.rstrip()}")


def profile_client(jobs: int, job_time_s: float, in_flight: int, profiler: str, keep: str | None) -> None:
    """The client process (emulator apart) under cProfile or pyinstrument; prints where its time goes."""
    with tempfile.TemporaryDirectory(prefix="ltx-bench-prof-") as folder:
        output = Path(keep).resolve() if keep else Path(folder) / "profile.out"
        if profiler == "cprofile":
            python = ("-m", "cProfile", "-o", str(output))
        else:
            python = ("-m", "pyinstrument", "--renderer", "text", "--outfile", str(output))
        row = separate(jobs, job_time_s, in_flight, tree=ROOT, label=f"current ({profiler})", python=python)
        print(table([row]))
        if profiler == "cprofile":
            _print_cprofile(pstats.Stats(str(output)), "client process")
        else:
            print(f"\n--- client process: pyinstrument ---\n{output.read_text()[:20_000]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--job-time-s", type=float, default=0.01)
    parser.add_argument("--max-in-flight", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2, help="runs per tree")
    parser.add_argument("--fsync-delay-ms", type=float, nargs="+", default=[0.0],
                        help="add this much to every fsync of the client (a slower disk); one set of runs each")
    parser.add_argument("--baseline", metavar="GIT_REF", help="also run the client of this git ref")
    parser.add_argument("--revert", metavar="COMMIT", nargs="+", default=[],
                        help="undo these commits' pipeline/ changes in the baseline (isolates one change)")
    parser.add_argument("--in-process", action="store_true", help="also run client and emulator in one process")
    parser.add_argument("--profile", choices=("cprofile", "pyinstrument"),
                        help="profile the client process (and the in-process run with cprofile)")
    parser.add_argument("--profile-out", metavar="FILE", help="keep the client's profile (cProfile stats) here")
    args = parser.parse_args()
    print(machine())
    print(f"N={args.jobs} jobs, T={args.job_time_s} s, client --rate {RATE:,.0f} (no emulator limit), "
          f"--max-in-flight {args.max_in_flight}, 4 downloaders")
    if args.profile:
        profile_client(args.jobs, args.job_time_s, args.max_in_flight, args.profile, args.profile_out)
        if args.profile == "cprofile" and args.in_process:
            print(table([in_process(args.jobs, args.job_time_s, args.max_in_flight, "cprofile")]))
        return 0
    rows = []
    with source_tree(args.baseline, args.revert) as baseline:
        name = args.baseline + "".join(f" -{c}" for c in args.revert) if args.baseline else ""
        trees = [(ROOT, "current")] + ([(baseline, name)] if args.baseline else [])
        for delay_ms in args.fsync_delay_ms:
            for round_ in range(args.repeat):
                for tree, label in trees if round_ % 2 == 0 else trees[::-1]:  # ABBA: a drift hits both alike
                    rows.append(separate(args.jobs, args.job_time_s, args.max_in_flight, tree=tree, label=label,
                                         fsync_delay_ms=delay_ms))
                    print(f"  {label}, fsync +{delay_ms:g} ms: {rows[-1]['jobs_per_s']:.1f} jobs/s",
                          file=sys.stderr, flush=True)
    if args.in_process:
        rows.append(in_process(args.jobs, args.job_time_s, args.max_in_flight, None))
    print()
    print(table(rows))
    if args.baseline:
        for delay_ms in args.fsync_delay_ms:
            pairs = [r for r in rows if r.get("fsync_delay_ms") == delay_ms]
            ratios = sorted(a["jobs_per_s"] / b["jobs_per_s"] if a["client"] == "current" else
                            b["jobs_per_s"] / a["jobs_per_s"] for a, b in zip(pairs[::2], pairs[1::2]))
            cpu = sorted(b["client_cpu_ms_per_job"] / a["client_cpu_ms_per_job"] if a["client"] == "current" else
                         a["client_cpu_ms_per_job"] / b["client_cpu_ms_per_job"] for a, b in zip(pairs[::2], pairs[1::2]))
            print(f"current vs {name}, fsync +{delay_ms:g} ms, {len(ratios)} rounds: throughput ratio median "
                  f"{ratios[len(ratios) // 2]:.2f}x (range {ratios[0]:.2f}-{ratios[-1]:.2f}); client CPU per job "
                  f"baseline/current median {cpu[len(cpu) // 2]:.2f}x (range {cpu[0]:.2f}-{cpu[-1]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
