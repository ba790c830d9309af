"""End to end: a run cut off while the journal's fsync is under way writes a results.json agreeing with the journal."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.ledger.journal import Journal
from pipeline.ledger.replay import DOWNLOADED, JOURNAL_NAME, STATES, replay
from pipeline.run.outcome import EXIT_INTERRUPTED
from pipeline.ledger.results import RESULTS_NAME
from run_helpers import run, write_manifest


class FsyncGate:
    """Stands in for `Journal._fsync_written`: the first fsync that must cover a "downloaded" line calls `on_hold`
    and then never finishes while the run lasts (it returns once results.json is written, without syncing)."""

    def __init__(self, real: Callable[[Journal], int], on_hold: Callable[[], None]) -> None:
        self.real, self.on_hold = real, on_hold
        self.held, self.ended = threading.Event(), threading.Event()
        self.held_keys: set[str] = set()  # jobs whose "downloaded" line the held fsync was to cover
        self._lock = threading.Lock()

    def __call__(self, journal: Journal) -> int:
        covered = journal._appended
        unsynced = journal.path.read_bytes().split(b"\n")[journal._synced:covered]  # one session: line i is event i
        downloaded = {json.loads(line)["key"] for line in unsynced if b'"ev":"downloaded"' in line}
        with self._lock:
            hold = bool(downloaded) and not self.held.is_set()
            if hold:
                self.held_keys = downloaded
                self.held.set()
        if not hold:
            return self.real(journal)
        try:
            self.on_hold()
            results, deadline = journal.path.parent / RESULTS_NAME, time.monotonic() + 30
            while not results.exists() and time.monotonic() < deadline:
                time.sleep(0.005)
            return covered
        finally:
            self.ended.set()


@pytest.mark.parametrize("cut_off_by", ["second signal", "grace timeout"])
async def test_results_json_agrees_with_the_journal_after_a_cancel_during_an_fsync(
        tmp_path: Path, emulator, monkeypatch: pytest.MonkeyPatch, cut_off_by: str) -> None:
    """Ctrl-C twice, or once past the grace time, while a "downloaded" line waits for its fsync: the job is
    reported downloaded, and every job in results.json has the state, job id and files a replay of the journal gives."""
    loop = asyncio.get_running_loop()

    def interrupt() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        if cut_off_by == "second signal":
            loop.call_later(0.05, os.kill, os.getpid(), signal.SIGINT)

    gate = FsyncGate(Journal._fsync_written, lambda: loop.call_soon_threadsafe(interrupt))
    monkeypatch.setattr(Journal, "_fsync_written", lambda journal: gate(journal))  # a function: bound as a method
    grace_s = 30.0 if cut_off_by == "second signal" else 0.1
    manifest = write_manifest(tmp_path, prompts=2, seeds=2)
    summary = await run(manifest, emulator, tmp_path / "out", shutdown_grace_s=grace_s)
    assert gate.held.is_set() and await asyncio.to_thread(gate.ended.wait, 10)
    assert summary.exit_status == EXIT_INTERRUPTED
    if cut_off_by == "second signal":
        assert summary.wall_s < grace_s  # the second signal cut it off, not the grace time

    run_dir = tmp_path / "out" / "t"
    state = replay(run_dir / JOURNAL_NAME)
    results = {job["key"]: job for job in json.loads((run_dir / RESULTS_NAME).read_text())["jobs"]}
    assert len(results) == 8
    for key in gate.held_keys:
        assert state.jobs[key].state == DOWNLOADED and results[key]["status"] == "downloaded"
    for key, job in results.items():
        replayed = state.jobs.get(key)
        assert job["status"] == (replayed.state if replayed else "pending"), key
        assert job["job_id"] == (replayed.job_id if replayed else None), key
        replayed_files = replayed.files.values() if replayed else []
        assert sorted(f["path"] for f in job["files"]) == sorted(r.path for r in replayed_files), key
    assert summary.counts == {status: sum(job["status"] == status for job in results.values()) for status in STATES}
