"""Benchmark of `ltx-batch run` against the emulator: makespan vs the lower bound, requests per job, 429s, RSS.

Not part of the test suite. The emulator and the client run as separate processes on
127.0.0.1, so the client's peak RSS is its own.

    python tests/bench/bench_run.py                       # N=500 under a rate limit, then memory 500 vs 10,000
    python tests/bench/bench_run.py --jobs 500 --rate 50 --job-time-s 2 --skip-memory

Lower bound of the makespan: every job needs at least 3 API requests (submit, one poll,
one asset lookup) out of a budget of R per second, plus one upload, and the last job
still runs T seconds after it is submitted: bound = (3N + 1) / R + T. When the emulator
runs at most M jobs at once, ceil(N / M) * T bounds it too; the larger bound counts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "samples" / "clip.mp4"
KEY, SECRET = "bench-key", "bench-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_emulator(port: int, **knobs: object) -> subprocess.Popen[bytes]:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in knobs.items()]
    env = {**os.environ, "SCENARIO_API_KEY": KEY, "SCENARIO_API_SECRET": SECRET}
    process = subprocess.Popen([sys.executable, "-m", "pipeline", "emulator", "--port", str(port), "-q", *flags],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            stats(port)
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the emulator did not start")


def stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_emulator/stats", timeout=5) as answer:
        return json.load(answer)


def manifest(folder: Path, jobs: int) -> Path:
    path = folder / f"bench{jobs}.yaml"
    path.write_text(f"name: bench{jobs}\ninputs: {{video: {CLIP}}}\nprompts: [A benchmark landscape]\n"
                    f"seeds: {{count: {jobs}, from: 0}}\n")
    return path


def run_client(path: Path, port: int, out: Path, *, rate: float, in_flight: int,
               poll_first_delay_s: float) -> tuple[int, float, int]:
    """Run the client to completion; (exit status, wall seconds, peak RSS in kB)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LTX_BATCH_")}
    env.update({"SCENARIO_API_KEY": KEY, "SCENARIO_API_SECRET": SECRET,
                "LTX_BATCH_POLL_FIRST_DELAY_S": str(poll_first_delay_s), "LTX_BATCH_POLL_MIN_INTERVAL_S": "0.05"})
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(path), "--api-url", f"http://127.0.0.1:{port}",
         "--out", str(out), "--rate", str(rate), "--max-in-flight", str(in_flight), "--no-report", "-q"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0 and process.stderr is not None:
        sys.stderr.write(process.stderr.read().decode()[-3000:])
    return process.returncode, wall, usage.ru_maxrss


def rate_case(jobs: int, rate: float, job_time_s: float, max_running: int) -> dict:
    port = free_port()
    emulator = start_emulator(port, job_time_s=job_time_s, job_time_spread_s=job_time_s * 0.1,
                              max_running_jobs=max_running, rate_limit_per_s=rate, rate_limit_burst=2)
    try:
        with tempfile.TemporaryDirectory() as folder:
            in_flight = max(8, math.ceil(rate / 3 * job_time_s * 2))
            status, wall, rss_kb = run_client(manifest(Path(folder), jobs), port, Path(folder) / "out", rate=rate,
                                              in_flight=in_flight, poll_first_delay_s=job_time_s)
            figures = stats(port)
    finally:
        emulator.terminate()
        emulator.wait()
    requests = sum(figures["requests"].values()) - figures["requests"].get("GET /_cdn", 0)
    bound = max((3 * jobs + 1) / rate + job_time_s, math.ceil(jobs / max_running) * job_time_s)
    return {"jobs": jobs, "rate": rate, "job_time_s": job_time_s, "exit": status, "makespan_s": round(wall, 1),
            "bound_s": round(bound, 1), "over_bound": f"{(wall / bound - 1) * 100:+.1f}%",
            "api_requests_per_job": round(requests / jobs, 3), "throttled_429": figures["rate_limited"],
            "jobs_created": figures["jobs_created"], "peak_rss_mb": round(rss_kb / 1024, 1)}


def memory_case(jobs: int) -> dict:
    port = free_port()
    emulator = start_emulator(port, job_time_s=0.05, max_running_jobs=1000)
    try:
        with tempfile.TemporaryDirectory() as folder:
            status, wall, rss_kb = run_client(manifest(Path(folder), jobs), port, Path(folder) / "out", rate=2000,
                                              in_flight=64, poll_first_delay_s=0.05)
    finally:
        emulator.terminate()
        emulator.wait()
    return {"jobs": jobs, "exit": status, "wall_s": round(wall, 1), "jobs_per_s": round(jobs / wall, 1),
            "peak_rss_mb": round(rss_kb / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0, help="emulator limit = client --rate (requests/s)")
    parser.add_argument("--job-time-s", type=float, default=2.0)
    parser.add_argument("--max-running", type=int, default=1000)
    parser.add_argument("--memory-jobs", type=int, nargs=2, default=(500, 10_000))
    parser.add_argument("--skip-rate", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    if not args.skip_rate:
        print(json.dumps(rate_case(args.jobs, args.rate, args.job_time_s, args.max_running)))
    if not args.skip_memory:
        small, large = (memory_case(n) for n in args.memory_jobs)
        print(json.dumps(small))
        print(json.dumps(large))
        print(f"peak RSS growth {args.memory_jobs[0]} -> {args.memory_jobs[1]} jobs: "
              f"{large['peak_rss_mb'] - small['peak_rss_mb']:+.1f} MB")


if __name__ == "__main__":
    main()
