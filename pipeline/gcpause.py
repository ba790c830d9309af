"""Short garbage-collector pauses in a long-lived process (the `run` client and the emulator server).

CPython's full (generation 2) collection walks every container object alive. Right after start-up that
is ~45,000 objects of imported modules (aiohttp, rich, yaml...) plus, on a resume, the replayed journal;
walking them takes 15-20 ms on this project's CI machine, and at 10,000 jobs the full collections of
both processes took ~39 ms. A pause that long bunches requests: every request due during it leaves
together afterwards (client) or is seen together afterwards (emulator), and a server whose bucket
holds 2 requests at 200/s (10 ms of slack) answers 429.

`gc.freeze()` moves everything alive now into a permanent generation the collector never walks again.
Those objects are still freed by reference counting as usual; only cycles among them would outlive
their use, and the start-up objects are modules, classes and the journal state that live until exit.
"""

from __future__ import annotations

import gc


def freeze_long_lived(*, generation: int = 2) -> int:
    """Collect once (up to `generation`), then exclude every object alive now from later collections;
    returns how many are frozen in all."""
    gc.collect(generation)
    gc.freeze()
    return gc.get_freeze_count()


class IdleFreezer:
    """Freezes what is alive at a quiet moment (no request being handled), after every `every_jobs` new jobs.

    For the standalone emulator server: its jobs and assets live until the process exits, so without this
    every full collection walks all of them (16.9 ms at 10,000 jobs, after `freeze_long_lived`). At a quiet
    moment little else is alive; young objects are collected first (`gc.collect(1)`, about a millisecond),
    and what is frozen is the jobs, the assets and the open connections. The cost: a cycle among those
    objects that dies later is never collected (the connections that close); bounded by a few kB per freeze.
    """

    def __init__(self, *, every_jobs: int = 1000) -> None:
        self.every_jobs = every_jobs
        self.handling = 0  # requests being handled now
        self.freezes = 0
        self._jobs_at_last_freeze = 0

    def started(self) -> None:
        self.handling += 1

    def finished(self, jobs_created: int) -> None:
        self.handling -= 1
        if self.handling == 0 and jobs_created - self._jobs_at_last_freeze >= self.every_jobs:
            freeze_long_lived(generation=1)
            self._jobs_at_last_freeze = jobs_created
            self.freezes += 1
