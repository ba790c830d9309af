"""The journal's group commit: concurrent durable events share fsyncs, none returns before its line is synced,
and each is in the state once its line is in the file, whatever becomes of its fsync (cancelled, failed)."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pipeline.ledger.journal import Journal, JournalError
from pipeline.ledger.replay import DOWNLOADED, SUBMITTED, UNKNOWN, replay
from pipeline.ledger.reserve import RESERVE_BYTES, RESERVE_NAME, DiskReserve


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


async def test_a_failed_fsync_fails_every_writer_and_the_state_still_matches_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the shared fsync fails each writer gets JournalError, yet the state holds every event, as the file does."""
    path = tmp_path / "ledger.jsonl"
    journal = Journal(path)
    for i in range(5):
        journal.write_now("intent", key=f"k{i}", attempt=1)
    monkeypatch.setattr(os, "fsync", FsyncSpy(os.fsync, fail=True))
    results = await asyncio.gather(*(journal.write("submitted", key=f"k{i}", job_id=f"job_{i}") for i in range(5)),
                                   return_exceptions=True)
    assert all(isinstance(r, JournalError) for r in results)
    assert [journal.state.jobs[f"k{i}"].job_id for i in range(5)] == [f"job_{i}" for i in range(5)]
    assert all(journal.state.jobs[f"k{i}"].state == SUBMITTED for i in range(5))  # not "unknown"
    monkeypatch.undo()
    journal.close()
    assert replay(path).jobs == journal.state.jobs


class HeldFsync(Journal):
    """A journal whose fsyncs wait, in their worker thread, until the test lets them go (a disk slow to flush)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.started, self.release, self.ended = threading.Event(), threading.Event(), threading.Event()

    def _fsync_written(self) -> int:
        self.started.set()
        try:
            assert self.release.wait(timeout=30)
            return super()._fsync_written()
        finally:
            self.ended.set()


@pytest.fixture
async def held_journal(tmp_path: Path) -> AsyncIterator[HeldFsync]:
    """A `HeldFsync` journal on tmp_path/ledger.jsonl; its fsyncs are let go (and it is closed) after the test."""
    journal = HeldFsync(tmp_path / "ledger.jsonl")
    try:
        yield journal
    finally:
        journal.release.set()
        assert not journal.started.is_set() or await asyncio.to_thread(journal.ended.wait, 10)
        journal.close()


def _job_up_to(journal: Journal, kind: str) -> None:
    """Write (without fsync) the events of job k1 that come before a `kind` event."""
    journal.write_now("intent", key="k1", attempt=1, spec={"key": "k1", "index": 0}, file="videos/k1.mp4")
    if kind == "downloaded":
        journal.write_now("submitted", key="k1", job_id="job_1", status="queued")
        journal.write_now("succeeded", key="k1", asset_ids=["asset_1"], server_duration_s=1.5)


@pytest.mark.parametrize(("kind", "fields", "expected"), [
    ("submitted", {"job_id": "job_1", "status": "queued"}, {"state": SUBMITTED, "job_id": "job_1"}),
    ("downloaded", {"asset_id": "asset_1", "path": "videos/k1.mp4", "bytes": 1234, "sha256": "ab" * 32,
                    "attempts": 1}, {"state": DOWNLOADED, "job_id": "job_1"}),
])
async def test_a_durable_write_cancelled_during_its_fsync_leaves_the_event_in_the_state(
        held_journal: HeldFsync, kind: str, fields: dict[str, object], expected: dict[str, object]) -> None:
    """Cancelled while its fsync runs (second Ctrl-C, grace timeout), a write's event is in the state as in the file."""
    journal = held_journal
    _job_up_to(journal, kind)
    writing = asyncio.create_task(journal.write(kind, key="k1", **fields))
    assert await asyncio.to_thread(journal.started.wait, 10)
    writing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writing
    job = journal.state.jobs["k1"]
    assert {"state": job.state, "job_id": job.job_id} == expected
    if kind == "downloaded":
        assert job.files["asset_1"].path == "videos/k1.mp4"
    journal.release.set()
    assert await asyncio.to_thread(journal.ended.wait, 10)
    assert replay(journal.path).jobs == journal.state.jobs


async def test_a_durable_write_returns_only_after_its_fsync_though_applied_before(held_journal: HeldFsync) -> None:
    """The event is in the state as soon as its line is in the file; `write` still returns only after the fsync."""
    journal = held_journal
    writing = asyncio.create_task(journal.write("intent", key="k1", attempt=1))
    assert await asyncio.to_thread(journal.started.wait, 10)
    assert journal.state.jobs["k1"].state == UNKNOWN and not writing.done()
    journal.release.set()
    await writing
    assert journal._synced == journal._appended == 1


class DiskFills:
    """Stands in for os.write on one fd: the next `times` writes fail with ENOSPC, then writes go through."""

    def __init__(self, real: object, fd: int, *, times: int) -> None:
        self.real, self.fd, self.times = real, fd, times

    def __call__(self, fd: int, data: bytes) -> int:
        if fd == self.fd and self.times > 0:
            self.times -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.real(fd, data)  # type: ignore[operator]


async def test_a_full_disk_frees_the_reserve_once_and_the_journal_writes_on(tmp_path: Path, monkeypatch) -> None:
    """The first ENOSPC frees the reserve, tells the run (on_disk_full) and the event is written; the next fails."""
    journal = Journal(tmp_path / "ledger.jsonl", fsync=False)
    reserve = tmp_path / RESERVE_NAME
    assert reserve.stat().st_size == RESERVE_BYTES
    told: list[str] = []
    journal.on_disk_full = told.append
    monkeypatch.setattr(os, "write", DiskFills(os.write, journal._fd, times=1))
    await journal.write("submitted", key="k1", job_id="job_1")
    assert not reserve.exists() and len(told) == 1 and "reserve recorded what was in flight" in told[0]
    assert journal.state.jobs["k1"].job_id == "job_1"
    monkeypatch.setattr(os, "write", DiskFills(os.write, journal._fd, times=1))
    with pytest.raises(JournalError, match="No space left on device"):
        await journal.write("submitted", key="k2", job_id="job_2")  # no reserve left: the run stops
    assert len(told) == 1 and "k2" not in journal.state.jobs  # a line that is not in the file is not applied
    journal.close()
    assert replay(tmp_path / "ledger.jsonl").jobs["k1"].job_id == "job_1"


async def test_downloads_stop_writing_before_the_reserve_is_freed(tmp_path: Path, monkeypatch) -> None:
    """At the journal's first ENOSPC an output write under way ends before the reserve is freed, and no later
    output write is let through, so the freed space is left to the journal (the answers of POSTs in flight)."""
    journal = Journal(tmp_path / "ledger.jsonl", fsync=False)
    reserve = tmp_path / RESERVE_NAME
    writing, may_finish = threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def slow_write() -> None:  # a download's chunk, in a worker thread, still being written
        writing.set()
        may_finish.wait(5)
        seen["reserve held at the end of the write"] = reserve.exists()

    under_way = asyncio.create_task(asyncio.to_thread(journal.outputs.guarded, slow_write))
    await asyncio.to_thread(writing.wait, 5)
    threading.Timer(0.2, may_finish.set).start()
    monkeypatch.setattr(os, "write", DiskFills(os.write, journal._fd, times=1))
    started = time.monotonic()
    await journal.write("submitted", key="k1", job_id="job_1")  # ENOSPC: closes the gate, frees the reserve
    assert time.monotonic() - started >= 0.15  # it waited for the write under way
    await under_way
    assert seen == {"reserve held at the end of the write": True} and not reserve.exists()
    with pytest.raises(OSError) as refused:
        journal.outputs.guarded(lambda: pytest.fail("an output write got through after the reserve was freed"))
    assert refused.value.errno == errno.ENOSPC
    assert journal.state.jobs["k1"].job_id == "job_1"
    journal.close()


def test_the_reserve_is_made_once_and_removed_at_close(tmp_path: Path) -> None:
    """Reopening keeps one reserve of the right size; closing the journal removes it."""
    first = DiskReserve(tmp_path)
    again = DiskReserve(tmp_path)
    assert first.held and again.held and (tmp_path / RESERVE_NAME).stat().st_size == RESERVE_BYTES
    again.close()
    assert not (tmp_path / RESERVE_NAME).exists() and not again.held


def test_no_room_for_a_reserve_is_a_warning_not_an_error(tmp_path: Path, monkeypatch, caplog) -> None:
    """When the disk cannot spare the reserve the run goes on, with a warning saying what that risks."""
    def no_room(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_room)
    reserve = DiskReserve(tmp_path)
    assert not reserve.held and not reserve.release() and not (tmp_path / RESERVE_NAME).exists()
    assert "jobs in flight may be left unknown" in caplog.text


def test_a_file_system_without_fallocate_gets_a_reserve_of_zeros(tmp_path: Path, monkeypatch) -> None:
    """Where fallocate is not supported the reserve is written out, at its full size."""
    def unsupported(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    reserve = DiskReserve(tmp_path, size_bytes=100_000)
    assert reserve.held and (tmp_path / RESERVE_NAME).read_bytes() == bytes(100_000)
