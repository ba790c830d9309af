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


def freeze_long_lived() -> int:
    """Collect once, then exclude every object alive now from later collections; returns how many."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
