"""Run `-m MODULE ARGS...` with an experimental condition, for benchmarks only (never for real runs).

    python tests/bench/launch.py --fsync-delay-ms 5 -m pipeline run ...   # a disk whose flush (commit) takes 5 ms
    python tests/bench/launch.py --no-gc -m pipeline emulator ...         # no cyclic garbage collection
    python tests/bench/launch.py --count-fsyncs OUT.json -m pipeline run ...  # fsyncs per file name, written at exit
    python tests/bench/launch.py --gc-stats OUT.json -m pipeline run ...      # GC pauses per generation, at exit

The module is imported from the current directory first (so a source tree extracted by
`benchlib.source_tree` runs instead of the installed one).
"""

from __future__ import annotations

import argparse
import atexit
import collections
import gc
import json
import os
import runpy
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path


def _slow_fsync(real_fsync: Callable[[int], None], delay_s: float) -> Callable[[int], None]:
    """fsync on a disk whose flush takes `delay_s` and, like ext4's journal (jbd2), commits for every file at
    once, one commit at a time: a call waits for the commit under way (it may have begun before the call's
    writes), then one commit serves every call that was waiting. Concurrent calls are not free in parallel."""
    changed = threading.Condition()
    state = {"running": False, "served_from": -1.0}  # the last finished commit began at served_from

    def slow_fsync(fd: int) -> None:
        called = time.monotonic()
        with changed:
            while True:
                if state["served_from"] >= called:
                    return
                if not state["running"]:
                    state["running"], began = True, time.monotonic()
                    break
                changed.wait()
        try:
            time.sleep(delay_s)
            real_fsync(fd)
        finally:
            with changed:
                state["running"], state["served_from"] = False, max(state["served_from"], began)
                changed.notify_all()

    return slow_fsync


def _record_gc_pauses(out: Path) -> None:
    """Time every garbage collection; write {generation: {count, total_ms, max_ms}} at exit.

    Collections the program asks for (`gc.collect`, e.g. pipeline.gcpause at start-up, at a quiet moment)
    are counted apart, under "explicit": they are not pauses that strike at a random moment."""
    pauses: dict[int | str, list[float]] = {0: [], 1: [], 2: [], "explicit": []}
    started = [0.0]
    explicit = [False]
    real_collect = gc.collect

    def collect(generation: int = 2) -> int:
        explicit[0] = True
        try:
            return real_collect(generation)
        finally:
            explicit[0] = False

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses["explicit" if explicit[0] else info["generation"]].append(time.perf_counter() - started[0])

    gc.collect = collect
    gc.callbacks.append(timed)
    atexit.register(lambda: out.write_text(json.dumps(
        {g: {"count": len(p), "total_ms": sum(p) * 1000, "max_ms": max(p, default=0.0) * 1000}
         for g, p in pauses.items()})))


def _log_slow_callbacks(out: Path) -> None:
    """asyncio's debug mode with a 5 ms threshold: each callback that held the loop longer is logged."""
    os.environ["PYTHONASYNCIODEBUG"] = "1"  # read when asyncio is first imported
    import asyncio.base_events
    import logging

    asyncio.base_events.BaseEventLoop.slow_callback_duration = 0.005
    handler = logging.FileHandler(out)
    handler.setFormatter(logging.Formatter("%(created).3f %(message)s"))
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fsync-delay-ms", type=float, default=0.0)
    parser.add_argument("--no-gc", action="store_true")
    parser.add_argument("--count-fsyncs", metavar="OUT_JSON")
    parser.add_argument("--gc-stats", metavar="OUT_JSON")
    parser.add_argument("--slow-callbacks", metavar="OUT_LOG",
                        help="asyncio debug mode: log every callback that holds the loop over 5 ms")
    parser.add_argument("-m", dest="module", required=True)
    args, rest = parser.parse_known_args()
    if args.fsync_delay_ms > 0:
        os.fsync = _slow_fsync(os.fsync, args.fsync_delay_ms / 1000)
    if args.count_fsyncs:
        counted_fsync, counts = os.fsync, collections.Counter[str]()

        def counting_fsync(fd: int) -> None:
            try:
                counts[os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))] += 1
            except OSError:
                counts["?"] += 1
            counted_fsync(fd)

        os.fsync = counting_fsync
        atexit.register(lambda: Path(args.count_fsyncs).write_text(json.dumps(counts)))
    if args.gc_stats:
        _record_gc_pauses(Path(args.gc_stats))
    if args.no_gc:
        gc.disable()
    if args.slow_callbacks:
        _log_slow_callbacks(Path(args.slow_callbacks))
    sys.path.insert(0, os.getcwd())
    sys.argv = [args.module, *rest]
    runpy.run_module(args.module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
