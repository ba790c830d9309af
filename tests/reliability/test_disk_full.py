"""Disk full on the output folder: a clear message, a journal a resume can use, and the resume completes once
space is freed. A real small tmpfs when this machine lets us mount one; a write error injected at the storage
layer otherwise (and always, in-process, for the outputs alone)."""

from __future__ import annotations

import asyncio
import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    API_KEY,
    API_SECRET,
    CREDENTIALS,
    assert_no_secrets,
    assert_no_traceback,
    check_accounting,
    check_complete,
    cli_env,
    record_figures,
    run_cli,
)

import pipeline.run.storage
from pipeline.ledger.replay import JOURNAL_NAME, replay
from pipeline.ledger.reserve import RESERVE_BYTES, RESERVE_NAME
from pipeline.run.runner import summary_text
from run_helpers import audit_creations, run, write_manifest

DISK_BYTES = 8 * 2**20
PAD_BYTES = 300_000  # each output ~354 kB: 16 of them need ~5.7 MB


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs mounted inside tmp_path (skipped with the reason when mounting is not allowed here)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount_point)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}); "
                    "test_disk_full_injected covers disk-full at the storage layer")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("free_bytes", "job_time_s"), [
    (2 * 2**20, 0.2),  # the outputs fill the disk
    (RESERVE_BYTES + 16 * 2**10, 1.0),  # the journal fills it while submitting; its reserve takes over
    (16 * 2**10, 0.2),  # no room for the reserve: the journal hits the wall
], ids=["outputs-hit-the-wall", "journal-hits-the-wall-reserve", "journal-hits-the-wall-no-reserve"])
async def test_disk_full_on_a_real_small_disk(tmp_path: Path, small_disk: Path, emulator_factory,
                                              free_bytes: int, job_time_s: float) -> None:
    """The disk fills up: exit 1 with a clear message, a valid journal; after freeing space the resume completes."""
    server = await emulator_factory(api_key=API_KEY, api_secret=API_SECRET, output_pad_bytes=PAD_BYTES,
                                    job_time_s=job_time_s)
    manifest = write_manifest(tmp_path, prompts=4, name="full")
    filler = small_disk / "filler.bin"
    filler.write_bytes(b"\0" * (DISK_BYTES - free_bytes))
    command = ("run", str(manifest), "--out", str(small_disk))
    env = cli_env(server.url)

    first = await run_cli(*command, env=env, cwd=tmp_path, timeout_s=60)
    assert_no_traceback(first.stdout + first.stderr, "the disk-full run")
    assert first.returncode == 1, first.stderr[-3000:]
    # the outputs or the journal hit the wall first: either way one clear line says what to do
    assert "No space left on device" in first.stderr and "free some space, then resume" in first.stderr
    run_dir = small_disk / "full"
    state = replay(run_dir / JOURNAL_NAME)  # the journal replays whatever the disk let through
    assert state.torn_lines == 0
    stuck = state.counts()
    assert stuck["downloaded"] < 16
    if free_bytes > RESERVE_BYTES:  # the reserve was made, so every POST's answer found room in the journal
        assert stuck["unknown"] == 0, stuck
        assert not (run_dir / RESERVE_NAME).exists()
    if free_bytes == RESERVE_BYTES + 16 * 2**10:
        assert "the journal's reserve recorded what was in flight" in first.stderr
    for job in state.jobs.values():  # every file the journal records is whole
        for record in job.files.values():
            assert (run_dir / record.path).stat().st_size == record.bytes

    filler.unlink()
    resumed = await run_cli(*command, env=env, cwd=tmp_path, timeout_s=60)
    outputs = {"first run": first.stdout + first.stderr, "resume": resumed.stdout + resumed.stderr}
    if resumed.returncode == 1 and replay(run_dir / JOURNAL_NAME).counts()["unknown"]:
        # POSTs cut off when the journal could not record their answers: sent again only when asked
        resumed = await run_cli(*command, "--resubmit-unknown", env=env, cwd=tmp_path, timeout_s=60)
        outputs["resume --resubmit-unknown"] = resumed.stdout + resumed.stderr
    for where, text in outputs.items():
        assert_no_traceback(text, where)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    await check_complete(run_dir, server, expect_jobs=16)
    audit = audit_creations(run_dir / JOURNAL_NAME, await server.emulator.job_records())
    assert audit["bodies"] == 16
    assert_no_secrets(trees=[small_disk], texts=outputs)
    message = next((ln for ln in first.stderr.splitlines() if "No space left" in ln), None)
    record_figures(f"fault disk-full tmpfs {free_bytes} B free", exit_status=first.returncode,
                   resume_exit_status=resumed.returncode, counts_at_stop={k: v for k, v in stuck.items() if v},
                   created=audit["created"], paid_twice=audit["paid_twice"], ever_unknown=audit["ever_unknown"],
                   message=message and message.strip())


class _FullDisk:
    """Stands in for pipeline.run.storage.write_all (where output bytes reach the disk): writes fail with ENOSPC
    once `room_bytes` have been written."""

    def __init__(self, room_bytes: int) -> None:
        self.room_bytes = room_bytes
        self.refused = 0
        self._write_all = pipeline.run.storage.write_all

    def __call__(self, handle: Any, data: bytes) -> None:
        if len(data) > self.room_bytes:
            self.refused += 1
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room_bytes -= len(data)
        self._write_all(handle, data)


@pytest.mark.timeout(60)
async def test_disk_full_injected(tmp_path: Path, emulator_factory, monkeypatch, caplog) -> None:
    """ENOSPC from output writes stops the run (exit 1, storage) with the journal intact; the resume completes."""
    caplog.set_level("DEBUG")
    server = await emulator_factory(api_key=API_KEY, api_secret=API_SECRET, output_pad_bytes=PAD_BYTES)
    manifest = write_manifest(tmp_path, prompts=4, name="full")
    disk = _FullDisk(room_bytes=4 * 360_000)
    monkeypatch.setattr(pipeline.run.storage, "write_all", disk)
    first = await asyncio.wait_for(run(manifest, server, tmp_path / "out", credentials=CREDENTIALS), 40)
    assert first.exit_status == 1 and first.stopped == "storage" and disk.refused > 0
    assert "No space left on device" in summary_text(first, resume_command="-")
    check_accounting(first.run_dir)
    disk.room_bytes = 10**9
    resumed = await asyncio.wait_for(run(manifest, server, tmp_path / "out", credentials=CREDENTIALS), 40)
    assert resumed.exit_status == 0, summary_text(resumed, resume_command="-")
    await check_complete(resumed.run_dir, server, expect_jobs=16)
    audit = audit_creations(resumed.run_dir / JOURNAL_NAME, await server.emulator.job_records())
    assert audit["created"] == 16 and audit["paid_twice"] == 0
    assert_no_secrets(trees=[tmp_path / "out"], texts={"log": caplog.text})
    record_figures("fault disk-full (injected)", exit_status=first.exit_status,
                   resume_exit_status=resumed.exit_status, counts={k: v for k, v in first.counts.items() if v})
