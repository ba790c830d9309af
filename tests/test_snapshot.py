"""The runner's journal starts from a snapshot of its replayed state only when the journal still begins with the
bytes the snapshot replayed; `records_mark` names the events job records depend on, however the state was read."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.ledger import journal as journal_module
from pipeline.ledger import snapshot as snapshot_module
from pipeline.ledger.journal import Journal
from pipeline.ledger.replay import replay
from pipeline.ledger.snapshot import read_chunks, snapshot_path, state_chunks, state_of, write_chunks

KEYS = ("a" * 64, "b" * 64, "c" * 64)


async def _write_every_kind(journal: Journal, *, t: float = 1.0) -> None:
    """Events of every kind the replay knows, over three jobs."""
    a, b, c = KEYS
    await journal.write("run", manifest="m.yaml", name="t", job_count=3, options={"retry_failed": False})
    await journal.write("poll-mode", mode="per-job", why="the listing skipped a job")
    await journal.write("upload-started", sha256="s" * 64, upload_id="up1", path="/x.mp4", param="video")
    await journal.write("upload", sha256="s" * 64, asset_id="asset_in", path="/x.mp4", param="video")
    for index, key in enumerate(KEYS):
        await journal.write("priced", key=key, cost_cu=2.5, price_class="ltx|720p")
        await journal.write("intent", key=key, attempt=1, file=f"videos/{index}.mp4",
                            spec={"index": index, "batch": "main", "key": key}, request={"prompt": "p"})
    await journal.write("upload", sha256="s" * 64, asset_id="asset_in2", path="/x.mp4", param="video")  # again
    await journal.write("submitted", key=a, job_id="job_a", status="queued", cost_cu=3.0)
    await journal.write("status", key=a, status="in-progress", progress=0.5)
    await journal.write("succeeded", key=a, asset_ids=["out_a"], server_duration_s=1.5, cost_cu=3.25)
    await journal.write("downloaded", key=a, asset_id="out_a", path="videos/0.mp4", bytes=10, sha256="d" * 64,
                        mtime_ns=123, attempts=1)
    await journal.write("file-lost", key=a, asset_id="out_a")
    await journal.write("retry-download", key=a)
    await journal.write("downloaded", key=a, asset_id="out_a", path="videos/0.mp4", bytes=10, sha256="d" * 64,
                        attempts=2)
    await journal.write("answer-lost", key=b, error="timeout")
    await journal.write("unresolved", key=b, error="listing failed")
    await journal.write("not-sent", key=b, error="400")
    await journal.write("submitted", key=c, job_id="job_c", status="queued")
    await journal.write("gave-up", key=c, error="404", reason="not-found")
    await journal.write("failed", key=c, error="boom", reason="job-failed", status="failure", hint="try again",
                        trace_id="tr1", cost_cu=1.0)
    await journal.write("reset", key=c, why="retry-failed")
    await journal.write("stray", key=a, job_id="job_a2")
    await journal.write("stray-downloaded", job_id="job_a2", path="videos/strays/x.mp4")
    await journal.write("requests", count=12, throttled=1, rate_cuts=1, sending_per_s=4.5,
                        lowest_sending_per_s=2.0, waits=["an outage"])
    await journal.write("end", reason=None)


def _opened(snapshot: Path) -> tuple[dict[str, Any], list[Any]]:
    """A snapshot's first line and its chunks (as the plain values they are stored as)."""
    with snapshot.open("rb") as handle:
        return json.loads(handle.readline()), list(read_chunks(handle))


def _sealed(head: dict[str, Any], chunks: list[Any]) -> bytes:
    """A snapshot file of this head and these chunks, each sealed as written (a valid file)."""
    out = io.BytesIO()
    write_chunks(out, chunks)
    return json.dumps(head).encode() + b"\n" + out.getvalue()


async def _marked_snapshot(path: Path) -> tuple[Path, bytes, dict[str, Any], list[Any]]:
    """A journal of every kind at `path` and its snapshot, marked: its state says api_requests 999, which the
    journal does not (seen only if the snapshot is used). The snapshot's path, its bytes as written (unmarked),
    and the marked snapshot's head and chunks."""
    journal = Journal(path, fsync=False, keep_specs=False, snapshot=True)
    await _write_every_kind(journal)
    journal.save_snapshot()
    journal.close()
    snapshot = snapshot_path(path)
    written = snapshot.read_bytes()
    head, saved = _opened(snapshot)
    saved[0]["api_requests"] = 999
    snapshot.write_bytes(_sealed(head, saved))
    return snapshot, written, head, saved


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_a_state_of_every_event_kind_survives_the_snapshot_round_trip(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Every field of the runner's state (jobs, files, spend, pacing, prices, strays...) comes back equal, its
    jobs split over several chunks."""
    monkeypatch.setattr(snapshot_module, "CHUNK_JOBS", 2)
    path = tmp_path / "ledger.jsonl"
    journal = Journal(path, fsync=False, keep_specs=False, snapshot=True)
    await _write_every_kind(journal)
    journal.close()
    replayed = replay(path, keep_specs=False)
    out = io.BytesIO()
    write_chunks(out, state_chunks(replayed))
    chunks = list(read_chunks(io.BytesIO(out.getvalue())))
    assert len(chunks) == 3 and state_of(chunks) == replayed
    assert replayed.session_pacing is not None and replayed.spend.recorded_cu > 0 and replayed.prices
    assert replayed.earlier_uploads == {"s" * 64: [("asset_in", replayed.earlier_uploads["s" * 64][0][1])]}


async def test_a_resume_starts_from_the_snapshot_and_replays_only_the_events_after_it(tmp_path: Path) -> None:
    """Reopened, the journal takes the snapshot's state (shown by a mark left in it) and applies the later events;
    without the mark the state equals a full replay."""
    path = tmp_path / "ledger.jsonl"
    snapshot, written, _, _ = await _marked_snapshot(path)
    reopened = Journal(path, fsync=False, keep_specs=False, snapshot=True)
    assert reopened.state.api_requests == 999
    await reopened.write("run", name="t")  # a new session: its requests add to the total
    await reopened.write("intent", key="d" * 64, attempt=1, spec={"index": 3, "batch": "main"})
    await reopened.write("requests", count=5)
    reopened.close()
    again = Journal(path, fsync=False, keep_specs=False, snapshot=True)
    assert again.state.api_requests == 999 + 5 and again.state.jobs["d" * 64].index == 3
    snapshot.write_bytes(written)  # the snapshot as written
    assert Journal(path, fsync=False, keep_specs=False, snapshot=True).state == replay(path, keep_specs=False)


@pytest.mark.parametrize("damage", ["changed byte", "shorter journal", "garbage snapshot", "torn snapshot",
                                    "no end", "bytes after the end", "changed state", "other layout",
                                    "not at a line end"])
async def test_a_stale_or_corrupt_snapshot_is_ignored_and_the_journal_replayed(tmp_path: Path, damage: str) -> None:
    """A snapshot that does not match the journal's first bytes, or cannot be read, gives way to a full replay
    (the journal is the truth: no job id or finished file is lost)."""
    path = tmp_path / "ledger.jsonl"
    snapshot, _, head, saved = await _marked_snapshot(path)
    data = path.read_bytes()
    if damage == "changed byte":  # the same length, another job id
        path.write_bytes(data.replace(b'"job_c"', b'"job_x"'))
    elif damage == "shorter journal":
        path.write_bytes(data[:len(data) // 2].rsplit(b"\n", 1)[0] + b"\n")
    elif damage == "garbage snapshot":
        snapshot.write_bytes(b"\x00\xff not json\n")
    elif damage == "torn snapshot":
        snapshot.write_bytes(_sealed(head, saved)[:-100])
    elif damage == "no end":  # every chunk whole, the empty one that ends them missing
        snapshot.write_bytes(_sealed(head, saved)[:-40])
    elif damage == "bytes after the end":
        snapshot.write_bytes(_sealed(head, saved) + b"x")
    elif damage == "changed state":  # its length right, its sha256 not
        sealed = bytearray(_sealed(head, saved))
        sealed[-60] ^= 1
        snapshot.write_bytes(bytes(sealed))
    elif damage == "other layout":
        snapshot.write_bytes(_sealed({**head, "layout": "0|old"}, saved))
    else:  # a snapshot claiming a prefix that ends mid-line
        text = data.decode()
        cut = text.index('"job_c"')
        snapshot.write_bytes(_sealed({**head, "bytes": cut, "sha256": hashlib.sha256(data[:cut]).hexdigest()}, saved))
    reopened = Journal(path, fsync=False, keep_specs=False, snapshot=True)
    assert reopened.state.api_requests != 999
    assert reopened.state == replay(path, keep_specs=False)


async def test_the_snapshot_is_renewed_only_when_the_journal_has_grown_past_it(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A session that adds a few lines leaves the snapshot alone (its tail is replayed); more than
    SNAPSHOT_AFTER_BYTES renews it. A journal opened without `snapshot` never writes one."""
    path = tmp_path / "ledger.jsonl"
    plain = Journal(path, fsync=False, keep_specs=False)
    await _write_every_kind(plain)
    plain.save_snapshot()
    plain.close()
    assert not snapshot_path(path).exists()
    journal = Journal(path, fsync=False, keep_specs=False, snapshot=True)
    journal.save_snapshot()
    journal.close()
    first = snapshot_path(path).stat().st_mtime_ns, snapshot_path(path).read_bytes()
    monkeypatch.setattr(journal_module, "SNAPSHOT_AFTER_BYTES", 400)
    small = Journal(path, fsync=False, keep_specs=False, snapshot=True)
    await small.write("run", name="t")
    await small.write("end", reason=None)
    small.save_snapshot()
    small.close()
    assert (snapshot_path(path).stat().st_mtime_ns, snapshot_path(path).read_bytes()) == first
    grown = Journal(path, fsync=False, keep_specs=False, snapshot=True)
    for _ in range(10):
        await grown.write("requests", count=1)
    grown.save_snapshot()
    grown.close()
    assert snapshot_path(path).read_bytes() != first[1]
    assert _opened(snapshot_path(path))[0]["bytes"] == path.stat().st_size


async def test_the_records_mark_moves_with_job_events_only_and_is_the_same_however_the_state_was_read(
        tmp_path: Path) -> None:
    """A session's own events (run, requests, end, poll-mode) leave `records_mark` as it was; any job event moves
    it; a writer, a full replay and a snapshot's replay agree on it."""
    path = tmp_path / "ledger.jsonl"
    journal = Journal(path, fsync=False, keep_specs=False, snapshot=True)
    await _write_every_kind(journal)
    written = journal.records_mark
    journal.save_snapshot()
    await journal.write("run", name="t")
    await journal.write("poll-mode", mode="feed")
    await journal.write("requests", count=0)
    await journal.write("end", reason=None)
    assert journal.records_mark == written
    journal.close()
    assert Journal(path, fsync=False, keep_specs=False, snapshot=True).records_mark == written
    assert Journal(path, fsync=False, keep_specs=False).records_mark == written
    moved = Journal(path, fsync=False, keep_specs=False, snapshot=True)
    await moved.write("status", key=KEYS[2], status="in-progress")
    assert moved.records_mark != written
    after = moved.records_mark
    moved.close()
    assert Journal(path, fsync=False, keep_specs=False).records_mark == after
    assert Journal(path, fsync=False, keep_specs=False, snapshot=True).records_mark == after
    assert int(after.split(":")[0]) == sum(len(line) + 1 for line in path.read_bytes().split(b"\n")[:-1])
    assert _lines(path)[-1]["ev"] == "status"
