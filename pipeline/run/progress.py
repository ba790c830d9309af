"""What the user sees during a run: a live rich table on a terminal, a log line every few seconds elsewhere."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.ledger.replay import DOWNLOADED, FAILED, PENDING, STATES, SUBMITTED, SUCCEEDED, UNKNOWN
from pipeline.ledger.standing import Standing, standing_text
from pipeline.run.context import RunContext
from pipeline.run.limit import Limit

log = logging.getLogger("pipeline.run")

LOG_EVERY_S = 5.0
LIVE_EVERY_S = 0.5


MIN_ETA_FINISHED = 3  # jobs finished in the window before an ETA is shown: fewer say nothing of the pace
MIN_ETA_SPAN_S = 10.0  # and seconds the window must span


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
    unknown: int  # POSTs whose answer was lost: the job may exist on the server (paid)
    requests: int
    requests_per_s: float
    sending_per_s: float | None  # the sending rate while 429s have lowered it, else None
    elapsed_s: float
    eta_s: float | None
    waits: tuple[str, ...] = ()  # why the run is waiting, if it is (a cooldown, a lowered in-flight cap)
    submitting: int = 0  # POSTs sent and awaiting their answer (journaled as unknown until it comes)


class Progress:
    """Samples the run's state; renders it live (terminal) or as periodic log lines.

    `scope` is what this run covers, by state, when it starts (the manifest's jobs; with --limit, the
    never-sent jobs it does not choose left out; jobs no longer in the manifest that it still polls or
    downloads added); the journal's changes since move it on. The ETA waits for this run's own jobs to
    finish at a pace: finishes of jobs already paid when it started (a resume's burst) and the ramp-up
    before the first finish say nothing of it."""

    def __init__(self, ctx: RunContext, scope: Mapping[str, int], *, mode: str) -> None:
        self._ctx = ctx
        self._scope = {state: scope.get(state, 0) for state in STATES}
        self._total = sum(self._scope.values())
        self._mode = mode  # "live" | "log" | "off"
        self._started = time.monotonic()
        self._at_start = ctx.journal.state.counts()
        self._known_at_start = len(ctx.journal.state.jobs)
        self._paid_at_start = self._scope[SUBMITTED] + self._scope[SUCCEEDED]
        finished = self._scope[DOWNLOADED] + self._scope[FAILED]
        self._fewest_finished = finished  # --retry-failed first makes failed jobs pending again
        self._paced_from: tuple[float, int] | None = None  # (time, finished) when this run's own jobs finish
        self._samples: deque[tuple[float, int, int]] = deque(maxlen=240)  # (time, requests, finished)
        self._samples.append((self._started, ctx.api.requests, finished))

    def counts(self) -> dict[str, int]:
        """This run's jobs by state now: the scope at the start, moved on by the journal's changes since (a job
        the journal did not know was counted pending)."""
        counts = self._ctx.journal.state.counts()
        now = {state: self._scope[state] + counts[state] - self._at_start[state] for state in STATES}
        now[PENDING] -= len(self._ctx.journal.state.jobs) - self._known_at_start
        return {state: max(0, n) for state, n in now.items()}

    def snapshot(self) -> Snapshot:
        counts = self.counts()
        jobs = self._ctx.journal.state.jobs
        submitting = sum(1 for key in self._ctx.posting if key in jobs and jobs[key].state == UNKNOWN)
        now = time.monotonic()
        requests = self._ctx.api.requests
        pacing = self._ctx.api.pacing
        finished = counts[DOWNLOADED] + counts[FAILED]
        self._samples.append((now, requests, finished))
        first = self._samples[0]
        rate = (requests - first[1]) / max(1e-6, now - first[0])
        remaining = counts[PENDING] + submitting + counts[SUBMITTED] + counts[SUCCEEDED]
        return Snapshot(self._total, counts[PENDING], self._ctx.in_flight.count, counts[SUBMITTED],
                        self._ctx.downloading, counts[DOWNLOADED], counts[FAILED],
                        max(0, counts[UNKNOWN] - submitting), requests, rate,
                        pacing.current_per_s if pacing.lowered else None, now - self._started,
                        self._eta_s(now, finished, remaining), self._ctx.waits(), submitting)

    def _eta_s(self, now: float, finished: int, remaining: int) -> float | None:
        """Time left at the pace jobs finish in the window (the last 240 samples), once this run's own jobs
        finish: None before MIN_ETA_FINISHED have, over MIN_ETA_SPAN_S at least."""
        self._fewest_finished = min(self._fewest_finished, finished)
        if self._paced_from is None:
            if finished - self._fewest_finished <= self._paid_at_start:
                return None  # nothing yet, or only jobs paid before this run: no pace to go by
            self._paced_from = (now, finished)
        since = max(self._paced_from, (self._samples[0][0], self._samples[0][2]))
        span_s, count = now - since[0], finished - since[1]
        if count < MIN_ETA_FINISHED or span_s < MIN_ETA_SPAN_S:
            return None
        return remaining * span_s / count

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
            f"{s.submitting} submitting, {s.running} on server, {s.downloading} downloading; {s.requests} requests "
            f"({s.requests_per_s:.1f}/s{_sending(s)}); elapsed {_eta(s.elapsed_s)}, ETA {_eta(s.eta_s)}{waits}")


def table(s: Snapshot):  # -> rich renderable
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_row(ProgressBar(total=max(1, s.total), completed=s.done + s.failed, width=40),
                 f"[bold]{s.done}[/]/{s.total} downloaded")
    grid.add_row("pending / submitting / on server", f"{s.pending} / {s.submitting} / {s.running}"
                 + (f"  ({s.in_flight} in flight)" if s.in_flight else ""))
    grid.add_row("downloading / failed / unknown", f"{s.downloading} / [red]{s.failed}[/] / [yellow]{s.unknown}[/]")
    grid.add_row("API requests", f"{s.requests} ({s.requests_per_s:.1f}/s{_sending(s)})")
    grid.add_row("elapsed / ETA", f"{_eta(s.elapsed_s)} / {_eta(s.eta_s)}")
    for wait in s.waits:
        grid.add_row("[yellow]waiting[/]", wait)
    return grid


def opening_lines(start: Standing, *, run_dir: Path, resuming: bool, limit: Limit | None = None) -> list[str]:
    """What the run folder holds and what this run will do, printed before anything is sent:
    `resuming out/demo/: 36 downloaded, 2 failed, 1 unknown; 3 no longer in the manifest` and
    `this run: submit 18 jobs (paid), poll 3 on the server, ...`."""
    folder = f"{run_dir}{os.sep}"
    if resuming:
        held = standing_text(start).split("; ")
        held = [part for part in held if not part.endswith("new (paid)")]
        first = f"resuming {folder}: {'; '.join(held)} (of {start.total:,} jobs)"
    else:
        first = f"new run into {folder}: {start.total:,} jobs"
    does = []
    if start.new:
        again = f", {start.resent:,} of them a second time" if start.resent else ""
        does.append(f"submit {start.new:,} job{_s(start.new)} (paid{again})")
    if start.poll:
        does.append(f"poll {start.poll:,} on the server")
    if start.download:
        does.append(f"download {start.download:,} already rendered")
    unknown = start.counts[UNKNOWN] + start.journal_only_active.get(UNKNOWN, 0)
    if unknown:
        does.append(f"ask the server about {unknown:,} unknown (answer lost: adopted if it made them, sent "
                    "again if not)")
    if start.left_failed:
        does.append(f"leave {start.left_failed:,} failed (--retry-failed sends them again)")
    if limit is not None and start.not_chosen:
        does.append(f"leave {start.not_chosen:,} never-sent job{_s(start.not_chosen)} for later ({limit.describe()}; "
                    "the same command without --limit sends them)")
    if not does:
        does.append("nothing: every job is downloaded")
    return [first, "this run: " + ", ".join(does)]


def _s(count: int) -> str:
    return "" if count == 1 else "s"
