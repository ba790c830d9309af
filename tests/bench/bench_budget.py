"""The request budget alone: the rate it achieves and the closest two requests come, no network.

Not part of the test suite. Twelve callers (4 per priority, like the submit, poll and download stages)
loop on `RequestBudget.slot` for a few seconds, each doing 0.3 ms of work on the loop per request.
"before" is the same budget with a bucket of exactly 1 (as it was until 8105441).

    python tests/bench/bench_budget.py
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from aiolimiter import AsyncLimiter
from benchlib import machine, table

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from pipeline.api.budget import RATE_HEADROOM, RequestBudget  # noqa: E402

SECONDS = 3.0
WORK_S = 0.0003


async def measure(rate: float, *, capacity_one: bool) -> dict[str, object]:
    budget = RequestBudget(rate)
    if capacity_one:
        budget._limiter = AsyncLimiter(1, 1.0 / (rate * RATE_HEADROOM))  # the bucket before 8105441
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + SECONDS
    sent: list[float] = []

    async def caller(priority: int) -> None:
        while loop.time() < stop_at:
            async with budget.slot(priority):
                sent.append(loop.time())
            busy_until = time.perf_counter() + WORK_S
            while time.perf_counter() < busy_until:
                pass
            await asyncio.sleep(0)

    async with asyncio.TaskGroup() as group:
        for priority in (0, 1, 2):
            for _ in range(4):
                group.create_task(caller(priority))
    gaps = sorted(b - a for a, b in zip(sent, sent[1:]))
    achieved = (len(sent) - 1) / (sent[-1] - sent[0])
    return {"budget": "before (bucket 1)" if capacity_one else "current", "rate": rate,
            "achieved_per_s": achieved, "of_rate": f"{achieved / rate * 100:.1f}%",
            "min_gap_ms": gaps[0] * 1000, "median_gap_ms": gaps[len(gaps) // 2] * 1000,
            "interval_ms": 1000 / (rate * RATE_HEADROOM)}


def main() -> int:
    print(machine())
    rows = [asyncio.run(measure(rate, capacity_one=before)) for rate in (5, 50, 200) for before in (True, False)]
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
