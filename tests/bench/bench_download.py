"""Streaming of large outputs: the client's peak RSS for one job with a 1 MB output vs one with a 1 GB output.

Not part of the test suite. The emulator (its own process) pads each output with zeros (`output_pad_bytes`,
never held in its memory); the client (`ltx-batch run`, its own process) streams it to `<file>.part`,
hashes and fsyncs it, then renames it. Peak RSS comes from os.wait4. Target: growth under 20 MB.

    python tests/bench/bench_download.py
    python tests/bench/bench_download.py --sizes-mb 1 1024 4096
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchlib import emulator, machine, run_client, seed_manifest, table

MB = 10**6


def case(size_bytes: int) -> dict[str, Any]:
    """One job whose output is about `size_bytes` long (the clip plus zero padding)."""
    with emulator(job_time_s=0.1, output_pad_bytes=size_bytes) as server, \
            tempfile.TemporaryDirectory(prefix="ltx-bench-dl-") as folder:
        run = run_client(seed_manifest(Path(folder), 1, name="big"), server.port, Path(folder) / "out",
                         rate=100, in_flight=1, settings={"poll_first_delay_s": 0.1, "poll_min_interval_s": 0.05})
        results = json.loads((Path(folder) / "out" / "big" / "results.json").read_text())
        record = results["jobs"][0]["files"][0]
        path = Path(folder) / "out" / "big" / record["path"]
        on_disk = path.stat().st_size
        verified = _sha256(path) == record["sha256"]
    return {"output_mb": on_disk / MB, "exit": run.exit_status, "wall_s (whole run)": run.wall_s,
            "sha256_ok": verified, "client_peak_rss_mib": run.peak_rss_mib}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[1, 1000])
    args = parser.parse_args()
    print(machine())
    rows = [case(int(mb * MB)) for mb in args.sizes_mb]
    print(table(rows))
    growth = rows[-1]["client_peak_rss_mib"] - rows[0]["client_peak_rss_mib"]
    print(f"client peak RSS growth {rows[0]['output_mb']:,.0f} MB -> {rows[-1]['output_mb']:,.0f} MB output: "
          f"{growth:+.1f} MiB (target < 20 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
