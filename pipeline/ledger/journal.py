"""The open journal of a run: appends events (fsynced where they guard money), keeps the replay current.

A torn last line left by a crash, however long, is cut off when the journal is opened; a write that fails
leaves no torn or merged line behind; a full disk first spends the run folder's `DiskReserve`. The
in-memory state mirrors the file: an event is applied once its line is written, whatever its fsync does.
The runner's journal starts from a snapshot of an earlier session's state when the journal still begins with
the bytes it replayed (`snapshot`), and names the history job records depend on (`records_mark`).
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.ledger.replay import LedgerState, apply, journal_lines
from pipeline.ledger.reserve import DISK_FULL, DiskReserve, OutputGate
from pipeline.ledger.snapshot import Prefix, read_prefix, read_state, save_snapshot

log = logging.getLogger(__name__)

# events that must reach the disk before the run acts on them (they guard against paying twice)
DURABLE_EVENTS = frozenset({"intent", "submitted", "downloaded"})

# events that change no job's record in results.json (the session's own facts): the others move `records_mark`
SESSION_EVENTS = frozenset({"run", "requests", "end", "poll-mode"})

TAIL_CHUNK_BYTES = 64 * 1024  # read size when looking back for the end of the last complete line
READ_CHUNK_BYTES = 1024 * 1024  # read size when checking a snapshot's prefix
SNAPSHOT_AFTER_BYTES = 1024 * 1024  # a snapshot is renewed once the journal has grown this much past it


def _cut_torn_tail(path: Path, *, chunk_bytes: int = TAIL_CHUNK_BYTES) -> int:
    """Truncate a last line with no newline, however long; return how many bytes were cut.

    The file is read backwards a chunk at a time up to its last newline (or its start): a torn line of any
    length (prompts have no length limit) is cut without reading the whole journal into memory.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size == 0:
        return 0
    with path.open("rb+") as handle:
        keep, end = 0, size
        while end > 0:
            start = max(0, end - chunk_bytes)
            handle.seek(start)
            newline = handle.read(end - start).rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
        if keep < size:
            handle.truncate(keep)
        return size - keep


class JournalError(PipelineError):
    """The journal cannot be written (disk full, permissions): the run stops; what the journal holds stays valid."""


class Journal:
    """The open journal of one run: appends events, keeps the replayed state current.

    A failed write (disk full, I/O error) raises JournalError; a short write is cut off again, and the
    journal refuses every later write, so no torn or merged line is ever left inside it. The first time
    the disk is full, the journal closes its `outputs` gate (downloads stop writing; the ones under way
    end first), frees its `DiskReserve`, calls `on_disk_full` (the run stops submitting) and writes on in
    the space freed, so the answers of the POSTs in flight are recorded.
    """

    def __init__(self, path: Path, *, fsync: bool = True, keep_specs: bool = True, snapshot: bool = False) -> None:
        """`snapshot` (the runner's journal, keep_specs False): start from the snapshot of an earlier session
        when the journal still begins with the bytes it replayed (`pipeline.ledger.snapshot`); `save_snapshot`
        writes one."""
        self.path = path
        self._fsync = fsync
        self._snapshot = snapshot and not keep_specs
        cut = _cut_torn_tail(path)
        self._digest = hashlib.sha256()  # of the journal's bytes so far (read, then appended)
        self._bytes = self._lines = 0
        self._records: tuple[int, Any] = (0, "")  # end of the last event a job's record depends on, sha256 there
        self._snapshot_at: int | None = None  # the bytes the snapshot used covered
        self.state = self._load(keep_specs)
        self.state.torn_lines += 1 if cut else 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._reserve = DiskReserve(path.parent)
        self.outputs = OutputGate()  # output writes go through it: closed before the reserve is freed
        self.on_disk_full: Callable[[str], None] | None = None
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._failed: JournalError | None = None
        self._appended = 0  # lines written by this Journal
        self._synced = 0  # of those, how many an fsync has covered (it began after they were written)
        self._syncing: asyncio.Future[None] | None = None  # done when the fsync under way ends

    def _load(self, keep_specs: bool) -> LedgerState:
        """Replay the journal (from a valid snapshot on, if any), keeping its digest and `records_mark` current."""
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return LedgerState(keep_specs=keep_specs)
        with handle:
            state = self._from_snapshot(handle) if self._snapshot else None
            if state is None:
                handle.seek(0)
                self._digest, self._bytes, self._lines, self._records = hashlib.sha256(), 0, 0, (0, "")
                self._snapshot_at = None
                state = LedgerState(keep_specs=keep_specs)
            # a torn last line was cut at open: only a writer elsewhere leaves one now (it is not read)
            for raw, event in journal_lines(handle, self.path, lines_before=self._lines):
                self._lines += 1
                self._digest.update(raw)
                self._bytes += len(raw)
                if event is not None:
                    apply(state, event)
                    if event.get("ev") not in SESSION_EVENTS:
                        self._records = (self._bytes, self._digest.copy())
        return state

    def _from_snapshot(self, handle: Any) -> LedgerState | None:
        """The snapshot's state when the journal (`handle`, at its start) begins with the bytes it replayed; the
        handle is left just after them. None when there is none or it does not match."""
        found = read_prefix(self.path)
        if found is None:
            return None
        prefix, snapshot = found
        digest, left = hashlib.sha256(), prefix.bytes
        last = b"\n"
        while left > 0:
            chunk = handle.read(min(left, READ_CHUNK_BYTES))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
            last = chunk[-1:]
        if left or last != b"\n" or digest.hexdigest() != prefix.sha256:
            snapshot.close()
            log.info("the snapshot of %s does not match the journal: replaying the whole journal", self.path)
            return None
        state = read_state(snapshot, self.path)
        if state is not None:
            self._digest, self._bytes, self._lines = digest, prefix.bytes, prefix.lines
            self._records = (prefix.records_at, prefix.records_sha256)
            self._snapshot_at = prefix.bytes
        return state

    @property
    def records_mark(self) -> str:
        """Names the journal's history of the events that job records depend on (every event but a session's own
        facts): equal marks, the same records (with the same manifest). Its length and sha256 up to the last one."""
        at, digest = self._records_at()
        return f"{at}:{digest}"

    def _records_at(self) -> tuple[int, str]:
        """Where the last event a job's record depends on ends, and the journal's sha256 up to there (kept as the
        digest object while writing, as the snapshot's text when none was written since)."""
        at, digest = self._records
        return at, digest if isinstance(digest, str) else digest.hexdigest()

    def save_snapshot(self) -> None:
        """Snapshot the state (a journal opened with `snapshot`), unless the one read at open covers nearly all of
        it; never raises (a snapshot is only a shortcut)."""
        if not self._snapshot or self._failed is not None or self._fd < 0:
            return
        if self._snapshot_at is not None and self._bytes - self._snapshot_at < SNAPSHOT_AFTER_BYTES:
            return
        try:
            if os.fstat(self._fd).st_size != self._bytes:  # written by another hand: nothing to vouch for
                return
            save_snapshot(self.path, Prefix(self._bytes, self._digest.hexdigest(), self._lines, *self._records_at()),
                          self.state)
        except (OSError, TypeError, ValueError) as exc:
            log.debug("could not snapshot %s: %s", self.path, exc)

    async def write(self, kind: str, **fields_: Any) -> None:
        """Append one event, apply it, and (for events that guard money) fsync before returning.

        The event is applied as soon as its line is in the file, before the fsync: a write cancelled during
        its fsync (a second Ctrl-C, the grace timeout) or whose fsync fails leaves `state` (which results.json
        and the summary are built from) agreeing with the file. A line that could not be written is not applied.
        A durable event returns only after an fsync that began after its line was written: callers still act
        on it only once it is on disk. Writers that arrive while an fsync is under way share the next one
        (group commit): the same guarantee for each event, fewer fsyncs and thread hand-offs when several
        stages write at once.
        """
        event = self._append_event(kind, fields_)
        line = self._appended
        apply(self.state, event)
        if self._fsync and kind in DURABLE_EVENTS:
            await self._sync(line)

    async def _sync(self, line: int) -> None:
        """Wait until the first `line` lines are on disk, starting an fsync or joining the next one."""
        while self._synced < line:
            if self._failed is not None:
                raise self._failed
            if self._syncing is not None:  # it may have begun before our line was written: wait, then look again
                await asyncio.shield(self._syncing)
                continue
            syncing = self._syncing = asyncio.get_running_loop().create_future()
            try:
                self._synced = max(self._synced, await asyncio.to_thread(self._fsync_written))
            except OSError as exc:
                raise self._fail(exc) from None
            finally:
                self._syncing = None
                syncing.set_result(None)

    def _fsync_written(self) -> int:
        """fsync (in a worker thread); returns how many lines it covers: those written before it began."""
        covered = self._appended  # counted after each os.write returns, so these lines are all in the file
        os.fsync(self._fd)
        return covered

    def write_now(self, kind: str, **fields_: Any) -> None:
        """Append an event synchronously (used on the way out, where no loop may be left)."""
        apply(self.state, self._append_event(kind, fields_))

    def _append_event(self, kind: str, fields_: dict[str, Any]) -> dict[str, Any]:
        """Stamp, encode and append one event (one line); return it for `apply`."""
        event = {"t": round(time.time(), 3), "ev": kind, **fields_}
        line = (json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        self._append(line)
        self._digest.update(line)
        self._bytes += len(line)
        self._lines += 1
        if kind not in SESSION_EVENTS:
            self._records = (self._bytes, self._digest.copy())
        return event

    def _append(self, line: bytes) -> None:
        """One small O_APPEND write (a line is never interleaved); a short one is truncated away."""
        if self._failed is not None:
            raise self._failed
        try:
            try:
                self._write_line(line)
            except OSError as exc:
                if exc.errno not in DISK_FULL or not self._reserve.held:
                    raise
                self.outputs.close()  # no download may take the space the reserve leaves
                if not self._reserve.release():
                    raise
                message = (f"the disk is full ({exc.strerror}): stopped submitting; the journal's reserve "
                           f"recorded what was in flight (free some space, then resume)")
                log.error("%s", message)
                if self.on_disk_full is not None:
                    self.on_disk_full(message)
                self._write_line(line)
        except OSError as exc:
            raise self._fail(exc) from None
        self._appended += 1

    def _write_line(self, line: bytes) -> None:
        written = os.write(self._fd, line)
        if written != len(line):  # the disk filled up mid-line
            os.ftruncate(self._fd, os.fstat(self._fd).st_size - written)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def _fail(self, exc: OSError) -> JournalError:
        self._failed = JournalError(f"cannot write the journal {self.path}: {exc.strerror or exc} "
                                    f"(free some space, then resume)")
        return self._failed

    def close(self) -> None:
        self._reserve.close()
        if self._fd >= 0:
            try:
                os.fsync(self._fd)
            except OSError as exc:  # every event written so far is in the file; the next run replays it
                log.error("could not sync the journal %s: %s", self.path, exc.strerror or exc)
            finally:
                os.close(self._fd)
                self._fd = -1
