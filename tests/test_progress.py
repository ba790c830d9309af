"""What a run shows while it goes (issue 14): POSTs awaiting their answer as submitting (not unknown), an ETA
only once the run's own jobs finish at a pace, the opening lines (what the folder holds, what the run does)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pipeline.ledger.replay import LedgerState, apply
from pipeline.ledger.standing import standing
from pipeline.run import progress as progress_module
from pipeline.run.limit import Limit, spread_indices
from pipeline.run.progress import Progress, line, opening_lines, table
from pipeline.spec import JobSpec


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def fake_ctx(state: LedgerState) -> Any:
    """What Progress reads of a run: the journal's state, requests, pacing, in-flight places, waits, POSTs."""
    return SimpleNamespace(journal=SimpleNamespace(state=state),
                           api=SimpleNamespace(requests=0, pacing=SimpleNamespace(lowered=False, current_per_s=5.0)),
                           in_flight=SimpleNamespace(count=0), downloading=0, posting=set(), waits=lambda: ())


def finish(state: LedgerState, key: str) -> None:
    """A job goes all the way: intent, submitted, succeeded, downloaded."""
    for event in ({"ev": "intent", "key": key}, {"ev": "submitted", "key": key, "job_id": f"job_{key}"},
                  {"ev": "succeeded", "key": key, "asset_ids": ["a"]},
                  {"ev": "downloaded", "key": key, "asset_id": "a", "path": f"{key}.mp4", "bytes": 1,
                   "sha256": "0" * 64}):
        apply(state, event)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(progress_module, "time", clock)
    return clock


def test_a_post_awaiting_its_answer_is_submitting_not_unknown(clock: Clock) -> None:
    """The journal says unknown from the intent on; while the POST awaits its answer the live table and the log
    line say submitting; once its answer is lost, unknown."""
    from rich.console import Console

    state = LedgerState(keep_specs=False)
    ctx = fake_ctx(state)
    progress = Progress(ctx, {"pending": 3}, mode="off")
    apply(state, {"ev": "intent", "key": "k1"})
    ctx.posting.add("k1")
    shown = progress.snapshot()
    assert (shown.submitting, shown.unknown, shown.pending) == (1, 0, 2)
    console = Console(record=True, width=120)
    console.print(table(shown))
    assert "1 submitting" in line(shown) and "0 unknown" in line(shown)
    rows = [" ".join(row.split()) for row in console.export_text().splitlines()]
    assert "pending / submitting / on server 2 / 1 / 0" in rows and "downloading / failed / unknown 0 / 0 / 0" in rows
    ctx.posting.discard("k1")
    apply(state, {"ev": "answer-lost", "key": "k1", "error": "connection lost after sending"})
    shown = progress.snapshot()
    assert (shown.submitting, shown.unknown) == (0, 1)


def test_no_eta_before_the_runs_own_jobs_finish_at_a_pace(clock: Clock) -> None:
    """A fresh run: no ETA at the first finish (one job says nothing of the pace), nor during the ramp-up; once
    jobs finish steadily, the ETA is the jobs left at that pace, and it does not jump."""
    state = LedgerState(keep_specs=False)
    progress = Progress(fake_ctx(state), {"pending": 40}, mode="off")
    clock.now += 60.0  # the first jobs take a minute on the server: nothing finishes
    assert progress.snapshot().eta_s is None
    finish(state, "k0")
    assert progress.snapshot().eta_s is None  # the old ETA was 39 jobs at 1 a minute: 39 min
    etas = []
    for number in range(1, 13):  # then one job every 2 s
        clock.now += 2.0
        finish(state, f"k{number}")
        etas.append(progress.snapshot().eta_s)
    shown = [eta for eta in etas if eta is not None]
    assert etas[0] is None and shown, etas
    assert shown[-1] == pytest.approx(27 * 2.0)  # 27 jobs left, one every 2 s
    assert max(shown) / min(shown) < 1.5, shown


def test_a_resumes_burst_of_already_paid_jobs_gives_no_eta(clock: Clock) -> None:
    """Resumed with 10 jobs on the server: their finishing at once is no pace for the 30 never sent."""
    state = LedgerState(keep_specs=False)
    for number in range(10):
        apply(state, {"ev": "intent", "key": f"s{number}"})
        apply(state, {"ev": "submitted", "key": f"s{number}", "job_id": f"j{number}"})
    progress = Progress(fake_ctx(state), {"submitted": 10, "pending": 30}, mode="off")
    clock.now += 1.0
    for number in range(10):
        for event in ({"ev": "succeeded", "key": f"s{number}", "asset_ids": ["a"]},
                      {"ev": "downloaded", "key": f"s{number}", "asset_id": "a", "path": f"s{number}.mp4",
                       "bytes": 1, "sha256": "0" * 64}):
            apply(state, event)
    clock.now += 15.0
    shown = progress.snapshot()
    assert shown.done == 10 and shown.pending == 30 and shown.eta_s is None


def specs(count: int) -> list[JobSpec]:
    return [JobSpec(i, "main", f"key{i:03d}", "m", {"prompt": "p", "seed": i}, (), {}) for i in range(count)]


def journal(*events: dict[str, Any]) -> LedgerState:
    state = LedgerState(keep_specs=False)
    for event in events:
        apply(state, {"ev": "run"} if event.get("ev") == "run" else event)
    return state


def test_opening_lines_say_what_the_folder_holds_and_what_the_run_does(tmp_path: Path) -> None:
    """A resumed run opens with what its folder holds and what it will do (paid submissions, polls, what it
    leaves), before anything is sent."""
    jobs = specs(10)
    state = LedgerState(keep_specs=False)
    apply(state, {"ev": "run"})
    for spec in jobs[:3]:
        finish(state, spec.key)
    apply(state, {"ev": "intent", "key": jobs[3].key})
    apply(state, {"ev": "failed", "key": jobs[3].key, "reason": "job-failed", "error": "x"})
    apply(state, {"ev": "intent", "key": jobs[4].key})
    apply(state, {"ev": "intent", "key": jobs[5].key})
    apply(state, {"ev": "submitted", "key": jobs[5].key, "job_id": "j5"})
    finish(state, "gone")  # no longer in the manifest
    lines = opening_lines(standing(jobs, state), run_dir=tmp_path / "demo", resuming=True)
    assert lines[0] == (f"resuming {tmp_path / 'demo'}/: 3 downloaded, 1 failed, 1 unknown, 1 on the server; "
                        "1 no longer in the manifest (of 10 jobs)")
    assert lines[1] == ("this run: submit 4 jobs (paid), poll 1 on the server, ask the server about 1 unknown "
                        "(answer lost: adopted if it made them, sent again if not), leave 1 failed (--retry-failed "
                        "sends them again)")
    again = opening_lines(standing(jobs, state, retry_failed=True), run_dir=tmp_path / "demo", resuming=True)
    assert again[1].startswith("this run: submit 5 jobs (paid, 1 of them a second time)")
    fresh = opening_lines(standing(jobs, LedgerState(), chosen=Limit.of(2, 10)), run_dir=tmp_path / "demo",
                          resuming=False, limit=Limit.of(2, 10))
    assert fresh == [f"new run into {tmp_path / 'demo'}/: 10 jobs",
                     "this run: submit 2 jobs (paid), leave 8 never-sent jobs for later (--limit 2: the first 2 of "
                     "10 jobs; the same command without --limit sends them)"]


def test_a_limited_runs_progress_counts_only_what_it_sends(clock: Clock) -> None:
    """--limit 2 of 10: the live figures are 0/2, not 0/10 with 8 pending forever (and no ETA of them)."""
    jobs = specs(10)
    state = LedgerState(keep_specs=False)
    scope = standing(jobs, state, chosen=Limit.of(2, 10)).scope
    shown = Progress(fake_ctx(state), scope, mode="off").snapshot()
    assert (shown.total, shown.pending, shown.done) == (2, 2, 0)


@pytest.mark.parametrize(("count", "total"), [(5, 54), (6, 54), (7, 1584), (54, 54), (80, 54), (1, 3)])
def test_spread_picks_one_job_per_stretch_deterministically(count: int, total: int) -> None:
    """--spread: `count` distinct indices, one in each equal stretch of the manifest, the same every time, and
    not all at the same place of their stretch (a fast axis, e.g. three seeds, is not always its first value)."""
    picked = spread_indices(count, total)
    assert picked == spread_indices(count, total) == tuple(sorted(set(picked)))
    assert len(picked) == min(count, total)
    if count < total:
        for i, index in enumerate(picked):
            assert i * total // count <= index < (i + 1) * total // count
        assert len({index % 3 for index in picked}) > 1 or count == 1
    limit = Limit.of(count, total, spread=True)
    assert [i for i in range(total) if limit(i)] == list(picked)
