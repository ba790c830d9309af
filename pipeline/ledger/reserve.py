"""A little disk space set aside for the journal, given back when the disk fills up.

When the disk fills mid-run, the POSTs already on the wire still come back with job ids (paid jobs).
Without room to journal those ids, each such job would be left *unknown* (sent, outcome not recorded)
and could only be resent at the risk of paying twice. So the run folder holds a small reserve file
while a run is open; the journal's first ENOSPC frees it, the run stops submitting, and the ids of the
jobs in flight are recorded in the space it leaves. That space is the journal's alone: output writes pass
through an `OutputGate`, which the journal closes (waiting for the writes under way) before it frees the
reserve, so a download still streaming cannot fill it first.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

RESERVE_NAME = ".journal-reserve"
RESERVE_BYTES = 256 * 1024  # a few hundred events: the answers to every POST in flight, the end of the run
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def _allocate(fd: int, size_bytes: int) -> None:
    """Real blocks, not a sparse file: fallocate, or zeros where the file system does not support it."""
    try:
        os.posix_fallocate(fd, 0, size_bytes)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
        block = bytes(64 * 1024)
        for offset in range(0, size_bytes, len(block)):
            os.write(fd, block[: min(len(block), size_bytes - offset)])


class DiskReserve:
    """A file of `size_bytes` next to the journal, made when the run opens it; `release` deletes it."""

    def __init__(self, folder: Path, *, size_bytes: int = RESERVE_BYTES) -> None:
        self.path = folder / RESERVE_NAME
        self.size_bytes = size_bytes
        self.held = self._make()

    def _make(self) -> bool:
        try:
            if self.path.is_file() and self.path.stat().st_size == self.size_bytes:
                return True
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                _allocate(fd, self.size_bytes)
            finally:
                os.close(fd)
            return True
        except OSError as exc:
            try:
                self.path.unlink(missing_ok=True)
            except OSError:
                pass
            log.warning("could not set aside %d kB for the journal (%s): if the disk fills up, jobs in "
                        "flight may be left unknown", self.size_bytes // 1024, exc.strerror or exc)
            return False

    def release(self) -> bool:
        """Give the space back (the disk is full); True if there was any to give."""
        if not self.held:
            return False
        self.held = False
        try:
            self.path.unlink()
        except OSError:
            return False
        return True

    def close(self) -> None:
        """The run is over: the reserve is not needed until the next one."""
        if self.held:
            self.held = False
            self.path.unlink(missing_ok=True)


class OutputGate:
    """Lets output writes through until `close`; `close` returns once the writes under way have ended.

    Thread-safe: writes run in worker threads (`guarded`), `close` in the loop's thread (the journal, on
    its first ENOSPC, before it frees the reserve). After `close` every write fails with ENOSPC at once.
    """

    CLOSE_WAIT_S = 10.0  # a write blocked longer than this (a hung disk) is not waited for

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._writing = 0
        self.closed = False

    def guarded(self, write: Callable[[], None]) -> None:
        """Run one blocking `write` unless the gate is closed (OSError ENOSPC then)."""
        with self._changed:
            if self.closed:
                raise OSError(errno.ENOSPC, "outputs stopped: the disk is full and its last space is kept for "
                                            "the journal")
            self._writing += 1
        try:
            write()
        finally:
            with self._changed:
                self._writing -= 1
                self._changed.notify_all()

    def close(self) -> None:
        """Refuse every later write and wait (blocking, briefly) for the ones under way."""
        with self._changed:
            self.closed = True
            if not self._changed.wait_for(lambda: self._writing == 0, timeout=self.CLOSE_WAIT_S):
                log.warning("%d output write(s) still under way after %.0fs; freeing the journal's reserve anyway",
                            self._writing, self.CLOSE_WAIT_S)
