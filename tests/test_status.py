"""`ltx-batch status`: counts, failure groups, unknown POSTs, time, requests and the resume plan, during and
after a run, with a torn last line and with a journal being appended to concurrently."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from run_helpers import run, write_manifest

from pipeline.cli.main import main
from pipeline.emulator import EmulatorServer
from pipeline.ledger.replay import JOURNAL_NAME
from pipeline.report.status import ResumePlan, run_status
from pipeline.report.status_view import duration_text, resume_text, status_json, status_text


def spec(key: str, index: int) -> dict[str, Any]:
    return {"index": index, "batch": "main", "key": key, "model": "m", "params": {"prompt": "p", "seed": index},
            "inputs": [], "swept": {}}


def journal_with(run_dir: Path, states: dict[str, str], *, job_count: int | None = None, pid: int | None = None,
                 end: str | None = "finished", t0: float = 1000.0) -> Path:
    """A journal (with explicit times) holding one job per entry of `states` (key -> wanted state)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = [{"t": t0, "ev": "run", "name": "sweep", "manifest": "/m/sweep.yaml",
              "job_count": job_count if job_count is not None else len(states), "pid": pid or 1}]
    t = t0
    for index, (key, wanted) in enumerate(states.items()):
        t += 1
        if wanted == "pending":
            continue
        lines.append({"t": t, "ev": "intent", "key": key, "spec": spec(key, index), "attempt": 1})
        if wanted == "unknown":
            continue
        if wanted.startswith("failed:"):
            _, reason, message = wanted.split(":", 2)
            if reason == "download":
                lines += [{"t": t, "ev": "submitted", "key": key, "job_id": f"job_{index}"},
                          {"t": t, "ev": "succeeded", "key": key, "asset_ids": [f"asset_{index}"]}]
            lines.append({"t": t, "ev": "failed", "key": key, "reason": reason, "error": message})
            continue
        lines.append({"t": t, "ev": "submitted", "key": key, "job_id": f"job_{index}"})
        if wanted in ("succeeded", "downloaded", "lost"):
            lines.append({"t": t, "ev": "succeeded", "key": key, "asset_ids": [f"asset_{index}"]})
        if wanted in ("downloaded", "lost"):
            path = f"videos/{index:05d}.mp4"
            if wanted == "downloaded":
                (run_dir / "videos").mkdir(exist_ok=True)
                (run_dir / path).write_bytes(b"x" * 3)
            lines.append({"t": t, "ev": "downloaded", "key": key, "asset_id": f"asset_{index}", "path": path,
                          "bytes": 3, "sha256": "0" * 64})
    lines.append({"t": t + 1, "ev": "requests", "count": 42})
    if end is not None:
        lines.append({"t": t + 2, "ev": "end", "reason": None if end == "finished" else end})
    path = run_dir / JOURNAL_NAME
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


MIXED = {
    "a" * 64: "downloaded", "b" * 64: "downloaded", "c" * 64: "submitted", "d" * 64: "succeeded",
    "e" * 64: "unknown", "f" * 64: "failed:rejected:videoStrength is out of range",
    "0" * 64: "failed:rejected:videoStrength is out of range", "1" * 64: "failed:job-failed:GPU out of memory",
    "2" * 64: "failed:download:gave up after 12 attempts", "3" * 64: "pending", "4" * 64: "lost",
}


def test_status_after_a_run_with_every_state(tmp_path: Path) -> None:
    """Counts by state (with the manifest's unsent jobs), failure groups, unknown jobs and the plan."""
    journal_with(tmp_path, MIXED, job_count=20)
    status = run_status(tmp_path)
    assert status.counts == {"pending": 10, "unknown": 1, "submitted": 1, "succeeded": 1, "downloaded": 3,
                             "failed": 4, "submitting": 0}
    assert (status.activity, status.api_requests, status.elapsed_s, status.sessions) == ("finished", 42, 13.0, 1)
    assert [(g.kind, g.error, [j.index for j in g.jobs]) for g in status.failures] == [
        ("rejected", "videoStrength is out of range", [5, 6]), ("download", "gave up after 12 attempts", [8]),
        ("job-failed", "GPU out of memory", [7])]
    assert [(j.index, j.key[:12]) for j in status.unknown] == [(4, "e" * 12)]
    assert status.resume == ResumePlan(poll=1, download=1, redownload_failed=1, refetch_lost=1, submit=10,
                                       leave_unknown=1, leave_failed=3, job_count=20)
    text = status_text(status)
    assert "jobs: 20 — 3 downloaded, 4 failed, 1 unknown, 1 submitted, 1 succeeded, 10 pending" in text
    assert "[rejected] videoStrength is out of range — 2 jobs: #5 (ffffffffffff), #6 (000000000000)" in text
    assert "  #4 (eeeeeeeeeeee)" in text
    assert "API requests: 42 (6.00 per finished job)" in text
    assert text.splitlines()[-1] == (
        "resume would: poll 1 submitted job, download 1, submit 10 pending (needs the manifest: 20 total from "
        "the last run event's job_count), leave 1 unknown (use --resubmit-unknown), leave 3 failed (use "
        "--retry-failed); 1 download-failed job is re-downloaded automatically; 1 downloaded job with a "
        "missing or changed file is fetched again")


@pytest.mark.parametrize(("plan", "expected"), [
    (ResumePlan(3, 2, 1, 0, 40, 1, 5, 52),
     "resume would: poll 3 submitted jobs, download 2, submit 40 pending (needs the manifest: 52 total from the "
     "last run event's job_count), leave 1 unknown (use --resubmit-unknown), leave 5 failed (use "
     "--retry-failed); 1 download-failed job is re-downloaded automatically"),
    (ResumePlan(0, 0, 0, 0, 0, 0, 0, 10), "resume would: nothing (every job is finished)"),
    (ResumePlan(0, 0, 2, 0, 0, 0, 0, 10),
     "resume would: nothing (every job is finished); 2 download-failed jobs are re-downloaded automatically"),
    (ResumePlan(0, 0, 0, 0, 7, 0, 0, None),
     "resume would: submit 7 pending (needs the manifest: the journal does not record the total)"),
    (ResumePlan(1, 0, 0, 0, 0, 2, 0, 3),
     "resume would: poll 1 submitted job, leave 2 unknown (use --resubmit-unknown)"),
])
def test_resume_text(plan: ResumePlan, expected: str) -> None:
    """The resume plan reads as one line naming the flags that change it."""
    assert resume_text(plan) == expected


def test_elapsed_counts_sessions_not_the_gaps_between_them(tmp_path: Path) -> None:
    """Time spent running sums each session's span; a night between two sessions does not count."""
    path = journal_with(tmp_path, {"a" * 64: "downloaded"}, t0=1000.0)  # 1000..1003
    with path.open("a") as handle:
        for t, event in ((90000.0, {"ev": "run", "name": "sweep", "job_count": 1, "pid": 1}),
                         (90010.5, {"ev": "requests", "count": 3}), (90012.0, {"ev": "end", "reason": None})):
            handle.write(json.dumps({"t": t, **event}) + "\n")
    status = run_status(tmp_path)
    assert (status.elapsed_s, status.sessions, status.api_requests) == (15.0, 2, 45)
    assert "elapsed: 15.0s running, in 2 sessions" in status_text(status)


@pytest.mark.parametrize(("seconds", "text"), [(0.0, "0.0s"), (12.34, "12.3s"), (245, "4m 05s"),
                                               (7389, "2h 03m 09s")])
def test_duration_text(seconds: float, text: str) -> None:
    """Elapsed time reads as seconds, minutes or hours."""
    assert duration_text(seconds) == text


def test_activity_running_finished_stopped_interrupted(tmp_path: Path) -> None:
    """No end event and a live writer: running (elapsed to now); a dead writer: interrupted; end: finished/stopped."""
    states = {"a" * 64: "submitted"}
    t0 = time.time()
    journal_with(tmp_path / "live", states, pid=os.getpid(), end=None, t0=t0)
    live = run_status(tmp_path / "live", now=t0 + 100)
    assert (live.activity, live.pid, live.elapsed_s) == ("running", os.getpid(), 100.0)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    journal_with(tmp_path / "dead", states, pid=gone.pid, end=None, t0=t0)
    assert run_status(tmp_path / "dead", now=t0 + 100).activity == "interrupted"
    journal_with(tmp_path / "reused", states, pid=os.getpid(), end=None, t0=1000.0)  # a pid from before a reboot
    assert run_status(tmp_path / "reused", now=t0).activity == "interrupted"
    journal_with(tmp_path / "stopped", states, end="credits")
    stopped = run_status(tmp_path / "stopped")
    assert (stopped.activity, stopped.stop_reason) == ("stopped", "credits")
    assert "run sweep: stopped (credits)" in status_text(stopped)


def test_torn_last_line_is_ignored_quietly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A half-written last line (a run mid-write, or a crash) is not counted and not warned about."""
    path = journal_with(tmp_path, {"a" * 64: "submitted"}, end=None)
    with path.open("ab") as handle:
        handle.write(b'{"t":2000,"ev":"succeeded","key":"' + b"a" * 64 + b'","asset_id')
    with caplog.at_level(logging.WARNING):
        status = run_status(tmp_path, now=3000.0)
    assert status.counts["submitted"] == 1 and status.counts["succeeded"] == 0 and status.torn_tail
    assert not [r for r in caplog.records if "torn" in r.getMessage()]


WRITER = """
import json, os, sys, time
path, count = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_WRONLY | os.O_APPEND)
for i in range(count):
    key = f"{i:064x}"
    spec = {"index": i, "batch": "main", "key": key, "model": "m", "params": {}, "inputs": [], "swept": {}}
    for event in ({"ev": "intent", "key": key, "spec": spec}, {"ev": "submitted", "key": key, "job_id": f"j{i}"}):
        line = json.dumps({"t": 2000 + i, **event}).encode() + b"\\n"
        os.write(fd, line[: len(line) // 2])  # a torn last line, on purpose, for a moment
        time.sleep(0.0005)
        os.write(fd, line[len(line) // 2:])
os.close(fd)
"""


def test_status_while_another_process_appends(tmp_path: Path) -> None:
    """Another process appends events in two halves (torn tails on purpose) while status replays again and again."""
    count = 300
    path = journal_with(tmp_path, {}, job_count=count, end=None, pid=os.getpid(), t0=time.time())
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(count)])
    seen, torn = [], 0
    try:
        while writer.poll() is None or not seen:
            status = run_status(tmp_path)
            seen.append(status.counts["submitted"] + status.counts["unknown"])
            torn += status.torn_tail
            assert sum(status.counts.values()) == count
            assert status.activity == "running"
    finally:
        assert writer.wait(timeout=30) == 0
    assert seen == sorted(seen), "a later replay must never know less"
    assert len(set(seen)) > 2 and torn > 0, "status should have run while the writer was writing"
    assert run_status(tmp_path).counts["submitted"] == count


async def test_status_during_and_after_a_real_run(tmp_path: Path, emulator: EmulatorServer) -> None:
    """Polled while a real run goes (another writer on the journal), then after it: counts, requests, plan."""
    manifest = write_manifest(tmp_path, prompts=2, seeds=3, name="live")
    run_dir = tmp_path / "out" / "live"
    task = asyncio.create_task(run(manifest, emulator, tmp_path / "out"))
    during = []
    while not task.done():
        if (run_dir / JOURNAL_NAME).exists():
            during.append(await asyncio.to_thread(run_status, run_dir))
        await asyncio.sleep(0.02)
    summary = await task
    assert any(s.activity == "running" and s.counts["downloaded"] < 12 for s in during)
    assert all(sum(s.counts.values()) == 12 for s in during if s.job_count is not None)
    after = run_status(run_dir)
    assert after.activity == "finished" and after.counts["downloaded"] == 12
    assert after.api_requests == summary.api_requests > 0
    assert resume_text(after.resume) == "resume would: nothing (every job is finished)"


def test_status_command_text_json_and_exit_statuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ltx-batch status`: text, --json for scripts (every job listed), exit 2 with no journal, no traceback."""
    journal_with(tmp_path / "run", MIXED, job_count=20)
    assert main(["status", str(tmp_path / "run")]) == 0
    assert "resume would:" in capsys.readouterr().out
    assert main(["status", str(tmp_path / "run"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["counts"]["failed"] == 4 and data["unknown"] == [{"index": 4, "key": "e" * 64}]
    assert data["resume"]["submit"] == 10 and data["resume"]["text"].startswith("resume would: poll 1")
    assert {k: v for k, v in data.items() if k != "jobs"} == json.loads(json.dumps(status_json(run_status(
        tmp_path / "run"))))
    (tmp_path / "empty").mkdir()
    assert main(["status", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "has no ledger.jsonl" in err and "Traceback" not in err
    assert main(["status", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_running_sessions_posts_awaiting_their_answer_are_submitting(tmp_path: Path) -> None:
    """While a run goes, an intent of this session with no answer yet is submitting (not unknown: nothing was
    lost); one whose answer was lost, or an intent of an earlier session, is unknown; after the run, all unknown."""
    t0 = time.time()
    path = journal_with(tmp_path / "live", {"a" * 64: "unknown", "b" * 64: "unknown", "c" * 64: "submitted"},
                        pid=os.getpid(), end=None, t0=t0 - 10)
    events = [{"t": t0, "ev": "run", "name": "sweep", "job_count": 4, "pid": os.getpid()},
              {"t": t0 + 1, "ev": "intent", "key": "d" * 64, "spec": spec("d" * 64, 3), "attempt": 1},
              {"t": t0 + 1, "ev": "intent", "key": "b" * 64, "spec": spec("b" * 64, 1), "attempt": 2},
              {"t": t0 + 2, "ev": "answer-lost", "key": "b" * 64, "error": "connection lost after sending"}]
    with path.open("a") as handle:
        handle.write("".join(json.dumps(e) + "\n" for e in events))
    live = run_status(tmp_path / "live", now=t0 + 3)
    assert live.activity == "running"
    assert [j.index for j in live.submitting] == [3] and sorted(j.index for j in live.unknown) == [0, 1]
    assert (live.counts["submitting"], live.counts["unknown"], sum(live.counts.values())) == (1, 2, 4)
    assert "2 unknown, 1 submitting, 1 submitted" in status_text(live)
    with path.open("a") as handle:
        handle.write(json.dumps({"t": t0 + 4, "ev": "end", "reason": "interrupted"}) + "\n")
    after = run_status(tmp_path / "live", now=t0 + 5)
    assert after.submitting == () and after.counts["unknown"] == 3


def test_status_json_lists_every_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`status --json` has a `jobs` array: every job of the run's manifest in order (the never-sent ones
    pending), with its status, job id, error and files; then the jobs the manifest no longer has."""
    manifest = write_manifest(tmp_path, prompts=1, seeds=2)  # 4 jobs
    from pipeline.manifest.load import load_manifest

    keys = [job.key for job in load_manifest(manifest).jobs()]
    run_dir = tmp_path / "out" / "t"
    journal_with(run_dir, {keys[0]: "downloaded", keys[2]: "failed:rejected:bad value", "z" * 64: "submitted"},
                 job_count=4)
    path = run_dir / JOURNAL_NAME
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    lines[0] = json.dumps({**first, "manifest": str(manifest)})
    path.write_text("\n".join(lines) + "\n")
    assert main(["status", str(run_dir), "--json"]) == 0
    jobs = json.loads(capsys.readouterr().out)["jobs"]
    assert [(j["key"], j["index"], j["status"], j["in_manifest"]) for j in jobs] == [
        (keys[0], 0, "downloaded", True), (keys[1], 1, "pending", True), (keys[2], 2, "failed", True),
        (keys[3], 3, "pending", True), ("z" * 64, 2, "submitted", False)]
    assert jobs[0]["files"] == [{"path": "videos/00000.mp4", "bytes": 3, "sha256": "0" * 64}]
    assert (jobs[2]["error"], jobs[2]["error_kind"], jobs[4]["job_id"], jobs[4]["batch"]) == (
        "bad value", "rejected", "job_2", "main")
    (tmp_path / "t.yaml").unlink()  # the manifest gone: the journal's jobs, in_manifest unknown
    assert main(["status", str(run_dir), "--json"]) == 0
    jobs = json.loads(capsys.readouterr().out)["jobs"]
    assert [(j["key"], j["in_manifest"]) for j in jobs] == [(keys[0], None), (keys[2], None), ("z" * 64, None)]
