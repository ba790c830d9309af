"""Run `-m MODULE ARGS...` with an experimental condition, for benchmarks only (never for real runs).

    python tests/bench/launch.py --fsync-delay-ms 5 -m pipeline run ...   # every fsync takes 5 ms longer (a slow disk)
    python tests/bench/launch.py --no-gc -m pipeline emulator ...         # no cyclic garbage collection

The module is imported from the current directory first (so a source tree extracted by
`benchlib.source_tree` runs instead of the installed one).
"""

from __future__ import annotations

import argparse
import gc
import os
import runpy
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fsync-delay-ms", type=float, default=0.0)
    parser.add_argument("--no-gc", action="store_true")
    parser.add_argument("-m", dest="module", required=True)
    args, rest = parser.parse_known_args()
    if args.fsync_delay_ms > 0:
        real_fsync, delay_s = os.fsync, args.fsync_delay_ms / 1000

        def slow_fsync(fd: int) -> None:
            time.sleep(delay_s)
            real_fsync(fd)

        os.fsync = slow_fsync
    if args.no_gc:
        gc.disable()
    sys.path.insert(0, os.getcwd())
    sys.argv = [args.module, *rest]
    runpy.run_module(args.module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
