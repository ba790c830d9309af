"""What the stages of one run share: the journal, the API client, settings, limits and stop signals."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import aiohttp

from pipeline.api.client import ApiClient
from pipeline.config import Settings
from pipeline.ledger.journal import Journal
from pipeline.run.schedule import DurationModel
from pipeline.spec import InputRef, JobSpec


class RunnableManifest(Protocol):
    """What the runner needs of a manifest (pipeline.manifest.load.Manifest is one)."""

    name: str
    model: str
    job_count: int
    keys: bytes  # every job's key by index, 32 bytes each, when known at load (b"" if not)

    @property
    def parameters(self) -> tuple[tuple[str, ...], tuple[str, ...]]: ...  # value and file inputs of its models

    def jobs(self, start: int = 0, stop: int | None = None, *,
             keys: Sequence[str] | None = None) -> Iterator[JobSpec]: ...

    def input_files(self) -> list[InputRef]: ...

    @property
    def fingerprint(self) -> str: ...  # a digest of what its jobs are built from (see Manifest.fingerprint)


@dataclass(frozen=True, slots=True)
class Submission:
    """A job the server accepted: poll it until it is done."""

    key: str
    job_id: str
    submitted_at: float  # loop time of the accepted POST (or of the resume)


@dataclass(frozen=True, slots=True)
class Completion:
    """A job that succeeded: download its outputs (`urls`: those already resolved, by asset id)."""

    key: str
    asset_ids: tuple[str, ...]
    urls: Mapping[str, str] = field(default_factory=dict)


class InFlight:
    """Counts jobs submitted but not finished; `acquire` waits while the cap is reached, until `close`.

    Closing matters when a run stops: a halt stops the pollers, so no place is freed any more, and a
    submit worker waiting for one would wait for ever (and the whole run with it)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.count = 0
        self.peak = 0
        self.closed = False
        self.limited_by: str | None = None  # why `cap` is below the configured one (shown to the user)
        self.waiting = 0  # submit workers waiting for a place (the poller then looks for finished jobs sooner)
        self._freed = asyncio.Event()

    async def acquire(self) -> bool:
        """Take a place (True), or False at once when submitting has stopped (`close`)."""
        while self.count >= self.cap and not self.closed:
            self._freed.clear()
            self.waiting += 1
            try:
                await self._freed.wait()
            finally:
                self.waiting -= 1
        if self.closed:
            return False
        self._take()
        return True

    def force(self) -> None:
        """Count a job resumed from the journal (it is in flight whatever the cap)."""
        self._take()

    def _take(self) -> None:
        self.count += 1
        self.peak = max(self.peak, self.count)

    async def release(self) -> None:
        self.count -= 1
        self._freed.set()

    def limit(self, server_cap: int | None) -> bool:
        """The server refused a job: too many running (429, the account's cap). Lower the cap to the server's
        (`actionLimit`), or to the jobs we have in flight when it does not say; True if the cap changed."""
        cap = max(1, min(self.cap, server_cap if server_cap is not None else self.count))
        changed, self.cap = cap != self.cap, cap
        if changed:
            self.limited_by = (f"the account's running-jobs cap ({server_cap})" if server_cap is not None
                               else "the account's running-jobs cap (429)")
        return changed

    async def wait_for_release(self, timeout_s: float) -> None:
        """Until one of our jobs finishes (or submitting stops), or `timeout_s` at most."""
        self._freed.clear()
        try:
            await asyncio.wait_for(self._freed.wait(), timeout=timeout_s)
        except TimeoutError:
            pass

    def close(self) -> None:
        """No more submissions: every waiter (and every later caller) gets False."""
        self.closed = True
        self._freed.set()


SUBMITS_ONLY = ("credits", "access", "budget")
"""Reasons that stop submitting only (see StopFlags)."""


@dataclass(slots=True)
class StopFlags:
    """Why the run is winding down.

    `stop_submitting` (out of credits, the model not in the plan, the cost cap reached): no new POSTs,
    polling and downloading go on.
    `halt` (Ctrl-C/SIGTERM, credentials refused, disk unwritable): no new requests of any
    kind; requests already under way finish, so no POST is cut off with its answer unread.
    The runner gives a halted run `shutdown_grace_s` to wind down, then cancels what is left.
    `on_stop_submitting` callbacks run once, when submitting stops (e.g. `InFlight.close`).
    """

    halted: asyncio.Event = field(default_factory=asyncio.Event)
    no_more_submits: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str | None = None  # "interrupted" | "auth" | "storage" (halts) | "credits" | "access" | "budget"
    message: str | None = None
    on_stop_submitting: list[Callable[[], None]] = field(default_factory=list)

    def stop_submitting(self, reason: str, message: str) -> None:
        if self.reason is None or self.reason in SUBMITS_ONLY:  # a halt outranks a reason to stop submitting
            self.reason, self.message = reason, message
        if not self.no_more_submits.is_set():
            self.no_more_submits.set()
            for callback in self.on_stop_submitting:
                callback()

    def halt(self, reason: str, message: str) -> None:
        self.stop_submitting(reason, message)
        self.halted.set()


@dataclass(slots=True)
class RunContext:
    """Everything a stage may touch besides its own queues."""

    settings: Settings
    journal: Journal
    api: ApiClient
    session: aiohttp.ClientSession
    run_dir: Path
    in_flight: InFlight
    stop: StopFlags
    durations: DurationModel = field(default_factory=DurationModel)
    downloading: int = 0  # downloads under way right now
    downloaded_bytes: int = 0
    reconciling: str | None = None  # while lost POSTs wait to be looked up on the server: why, for the user
    posting: set[str] = field(default_factory=set)  # keys whose POST awaits its answer: submitting, not unknown
    polling: str | None = None  # once the run fell back from the job listing to polling each job: why

    def waits(self) -> tuple[str, ...]:
        """Why the run is waiting right now, in words for the user (progress, log, journal for `status`)."""
        waits = []
        if (outage := self.api.connectivity.describe()) is not None:
            waits.append(outage)
        if (paused := self.api.waiting) is not None:
            waits.append(f"every request waits: {paused}")
        if self.reconciling is not None:
            waits.append(self.reconciling)
        if self.in_flight.limited_by is not None:
            waits.append(f"at most {self.in_flight.cap} in flight: {self.in_flight.limited_by}")
        if self.polling is not None:
            waits.append(self.polling)
        return tuple(waits)
