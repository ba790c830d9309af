"""The journal's group commit: concurrent durable events share fsyncs, and none returns before its line is synced."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time
from pathlib import Path

import pytest

from pipeline.ledger import Journal, JournalError


class FsyncSpy:
    """Stands in for os.fsync: slow (so writers pile up), records the file size each call saw when it began."""

    def __init__(self, real: object, *, delay_s: float = 0.01, fail: bool = False) -> None:
        self.real, self.delay_s, self.fail = real, delay_s, fail
        self.calls: list[dict[str, int | bool]] = []
        self._lock = threading.Lock()

    def __call__(self, fd: int) -> None:
        call = {"size": os.fstat(fd).st_size, "done": False}
        with self._lock:
            self.calls.append(call)
        time.sleep(self.delay_s)
        if self.fail:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        self.real(fd)  # type: ignore[operator]
        call["done"] = True


async def test_concurrent_durable_events_share_fsyncs_and_each_is_covered(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Each durable write returns after a finished fsync that began once its line was in the file; 30 share a few."""
    spy = FsyncSpy(os.fsync)
    monkeypatch.setattr(os, "fsync", spy)
    path = tmp_path / "ledger.jsonl"
    journal = Journal(path)

    async def intent(i: int) -> None:
        await asyncio.sleep(0.001 * (i % 5))
        await journal.write("intent", key=f"key-{i:02d}", attempt=1)
        text = path.read_bytes()
        line_end = text.index(f'"key-{i:02d}"'.encode())
        line_end = text.index(b"\n", line_end) + 1
        assert any(call["done"] and int(call["size"]) >= line_end for call in spy.calls), f"key-{i:02d} not synced"

    async with asyncio.TaskGroup() as group:
        for i in range(30):
            group.create_task(intent(i))
    await journal.write("status", key="key-00", status="queued")  # not durable: no fsync
    journal.close()
    assert 1 <= len([c for c in spy.calls if c["done"]]) - 1 < 30  # shared (close() adds one)


async def test_a_failed_fsync_fails_every_writer_waiting_on_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the shared fsync fails, no writer counts its event as durable: each gets JournalError."""
    monkeypatch.setattr(os, "fsync", FsyncSpy(os.fsync, fail=True))
    journal = Journal(tmp_path / "ledger.jsonl")
    results = await asyncio.gather(*(journal.write("submitted", key=f"k{i}", job_id=f"job_{i}") for i in range(5)),
                                   return_exceptions=True)
    assert all(isinstance(r, JournalError) for r in results)
    assert all(journal.state.jobs.get(f"k{i}") is None for i in range(5))  # never applied
    monkeypatch.undo()
    journal.close()
