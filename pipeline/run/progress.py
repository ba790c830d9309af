"""What the user sees during a run: a live rich table on a terminal, a log line every few seconds elsewhere."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pipeline.run.context import RunContext
from pipeline.ledger.replay import DOWNLOADED, FAILED, PENDING, SUBMITTED, SUCCEEDED, UNKNOWN

log = logging.getLogger("pipeline.run")

LOG_EVERY_S = 5.0
LIVE_EVERY_S = 0.5


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The figures shown at one moment."""

    total: int
    pending: int
    in_flight: int
    running: int
    downloading: int
    done: int
    failed: int
    unknown: int
    requests: int
    requests_per_s: float
    sending_per_s: float | None  # the sending rate while 429s have lowered it, else None
    elapsed_s: float
    eta_s: float | None
    waits: tuple[str, ...] = ()  # why the run is waiting, if it is (a cooldown, a lowered in-flight cap)


class Progress:
    """Samples the run's state; renders it live (terminal) or as periodic log lines."""

    def __init__(self, ctx: RunContext, total_jobs: int, *, mode: str) -> None:
        self._ctx = ctx
        self._total = total_jobs
        self._mode = mode  # "live" | "log" | "off"
        self._started = time.monotonic()
        self._samples: deque[tuple[float, int, int]] = deque(maxlen=240)  # (time, requests, done)
        self._samples.append((self._started, ctx.api.requests, ctx.journal.state.counts()[DOWNLOADED]))

    def snapshot(self) -> Snapshot:
        counts = self._ctx.journal.state.counts()
        now = time.monotonic()
        requests = self._ctx.api.requests
        pacing = self._ctx.api.pacing
        done = counts[DOWNLOADED]
        self._samples.append((now, requests, done))
        first = self._samples[0]
        span = max(1e-6, now - first[0])
        rate = (requests - first[1]) / span
        done_rate = (done - first[2]) / span
        known = sum(counts.values())
        pending = counts[PENDING] + max(0, self._total - known)
        remaining = pending + counts[SUBMITTED] + counts[SUCCEEDED]
        eta = remaining / done_rate if done_rate > 0 else None
        return Snapshot(self._total, pending, self._ctx.in_flight.count, counts[SUBMITTED],
                        self._ctx.downloading, done, counts[FAILED], counts[UNKNOWN], requests, rate,
                        pacing.current_per_s if pacing.lowered else None, now - self._started, eta,
                        self._ctx.waits())

    async def run(self) -> None:
        """Render until cancelled."""
        if self._mode == "off":
            return
        if self._mode == "live":
            await self._live()
        else:
            while True:
                await asyncio.sleep(LOG_EVERY_S)
                log.info(line(self.snapshot()))

    async def _live(self) -> None:
        from rich.console import Console
        from rich.live import Live

        console = Console(file=sys.stderr)
        with Live(table(self.snapshot()), console=console, refresh_per_second=4, transient=False) as live, \
                _logging_through(console):
            try:
                while True:
                    await asyncio.sleep(LIVE_EVERY_S)
                    live.update(table(self.snapshot()))
            finally:
                live.update(table(self.snapshot()))


@contextmanager
def _logging_through(console: Any) -> Iterator[None]:
    """While the live table is shown, log records print above it instead of tearing it."""
    from rich.logging import RichHandler

    root = logging.getLogger()
    saved = root.handlers[:]
    handler = RichHandler(console=console, show_path=False, log_time_format="%H:%M:%S")
    handler.setLevel(min((h.level for h in saved), default=logging.NOTSET))
    root.handlers = [handler]
    try:
        yield
    finally:
        root.handlers = saved


def _eta(eta_s: float | None) -> str:
    if eta_s is None:
        return "-"
    minutes, seconds = divmod(int(eta_s), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def _sending(s: Snapshot) -> str:
    return "" if s.sending_per_s is None else f", held to {s.sending_per_s:.1f}/s after 429s"


def line(s: Snapshot) -> str:
    """The one-line form, for logs."""
    waits = "".join(f"; {wait}" for wait in s.waits)
    return (f"{s.done}/{s.total} done, {s.failed} failed, {s.unknown} unknown, {s.pending} pending, "
            f"{s.running} on server, {s.downloading} downloading; {s.requests} requests "
            f"({s.requests_per_s:.1f}/s{_sending(s)}); elapsed {_eta(s.elapsed_s)}, ETA {_eta(s.eta_s)}{waits}")


def table(s: Snapshot):  # -> rich renderable
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_row(ProgressBar(total=max(1, s.total), completed=s.done + s.failed, width=40),
                 f"[bold]{s.done}[/]/{s.total} downloaded")
    grid.add_row("pending / in flight / on server", f"{s.pending} / {s.in_flight} / {s.running}")
    grid.add_row("downloading / failed / unknown", f"{s.downloading} / [red]{s.failed}[/] / [yellow]{s.unknown}[/]")
    grid.add_row("API requests", f"{s.requests} ({s.requests_per_s:.1f}/s{_sending(s)})")
    grid.add_row("elapsed / ETA", f"{_eta(s.elapsed_s)} / {_eta(s.eta_s)}")
    for wait in s.waits:
        grid.add_row("[yellow]waiting[/]", wait)
    return grid
