"""Streaming of large inputs: the client's peak RSS uploading the sample clip vs a 2 GB video.

Not part of the test suite. The input is the sample clip with an MP4 `free` box of zeros appended (a sparse
file: nothing is written but the clip). The emulator runs in its own process; the client is its own process
too, which uploads the file with `ApiClient.upload` (the multipart flow: create, parts PUT to presigned URLs,
complete, poll until imported) and nothing else, so that the figure is the upload's alone (a whole `run`
would also download an output as large as the input: bench_download.py measures that). Peak RSS comes from
os.wait4. Target: growth well under 50 MB.

    python tests/bench/bench_upload.py
    python tests/bench/bench_upload.py --sizes-mb 0 500 2000 --part-mib 8 --in-flight 3
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchlib import CLIP, KEY, ROOT, SECRET, emulator, machine, run_process, table

MB = 10**6


def padded_clip(folder: Path, pad_bytes: int) -> Path:
    """The sample clip followed by a `free` box of `pad_bytes` zeros (sparse: the zeros take no disk)."""
    path = folder / f"input-{pad_bytes}.mp4"
    clip = CLIP.read_bytes()
    if 8 + pad_bytes < 2**32:
        head = struct.pack(">I", 8 + pad_bytes) + b"free"
    else:  # a 64-bit box size: size field 1, the real size after the type
        head = struct.pack(">I", 1) + b"free" + struct.pack(">Q", 16 + pad_bytes)
    with path.open("wb") as handle:
        handle.write(clip + head)
        handle.truncate(len(clip) + len(head) + pad_bytes)
    return path


def case(size_bytes: int, *, part_mib: int, in_flight: int) -> dict[str, Any]:
    """Upload one input of about `size_bytes` (at least the clip) in a client process of its own."""
    with emulator(max_upload_bytes=size_bytes + 100 * MB) as server, \
            tempfile.TemporaryDirectory(prefix="ltx-bench-up-") as folder:
        path = padded_clip(Path(folder), max(0, size_bytes - CLIP.stat().st_size - 8))
        argv = [sys.executable, str(Path(__file__).resolve()), "--client", str(path), "--port", str(server.port),
                "--part-mib", str(part_mib), "--in-flight", str(in_flight)]
        run = run_process(argv, cwd=ROOT)
        if run.exit_status != 0:
            sys.stderr.write(f"client exited {run.exit_status}:\n{run.stderr}\n")
        size = path.stat().st_size
        emulator_rss = server.peak_rss_mib()
    return {"input_mb": size / MB, "exit": run.exit_status, "wall_s": run.wall_s,
            "mb_per_s": size / MB / run.wall_s, "client_peak_rss_mib": run.peak_rss_mib,
            "emulator_peak_rss_mib": emulator_rss}


async def upload_only(path: Path, port: int, *, part_mib: int, in_flight: int) -> str:
    """The client side: one ApiClient, one upload, its asset id."""
    import aiohttp

    from pipeline.api.client import ApiClient
    from pipeline.api.budget import RequestBudget
    from pipeline.config import Credentials, load_settings

    settings = load_settings(environ={}, overrides={
        "api_base_url": f"http://127.0.0.1:{port}", "upload_part_bytes": part_mib * 2**20,
        "upload_parts_in_flight": in_flight, "poll_min_interval_s": 0.1, "max_requests_per_s": 50})
    async with aiohttp.ClientSession() as session:
        api = ApiClient(session, settings, Credentials(KEY, SECRET), RequestBudget(settings.max_requests_per_s))
        return await api.upload(path, kind="video")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[0, 2000], help="0: the clip alone")
    parser.add_argument("--part-mib", type=int, default=8, help="upload_part_bytes in MiB (default 8)")
    parser.add_argument("--in-flight", type=int, default=3, help="upload_parts_in_flight (default 3)")
    parser.add_argument("--client", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client is not None:
        sys.path.insert(0, str(ROOT))
        print(asyncio.run(upload_only(args.client, args.port, part_mib=args.part_mib, in_flight=args.in_flight)))
        return 0
    print(machine())
    print(f"parts of {args.part_mib} MiB, {args.in_flight} in flight")
    rows = [case(int(mb * MB), part_mib=args.part_mib, in_flight=args.in_flight) for mb in args.sizes_mb]
    print(table(rows))
    growth = rows[-1]["client_peak_rss_mib"] - rows[0]["client_peak_rss_mib"]
    print(f"client peak RSS growth {rows[0]['input_mb']:,.2f} MB -> {rows[-1]['input_mb']:,.0f} MB input: "
          f"{growth:+.1f} MiB (target well under 50 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
