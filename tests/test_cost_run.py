"""Cost after the fact and `--max-cost` against the emulator: every job's cost and the run's total in the journal,
results.json/csv, the summary, `status` and the report; failures' hints and trace ids shown wherever a failure
is; the budget gate stopping before the run's cost would pass the cap, jobs left pending, a larger cap resuming
them, and answers lost counted at their estimate."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.ledger.costs import cu, price_class
from pipeline.emulator.pricing import price_cu
from pipeline.ledger.replay import JOURNAL_NAME, read_events, replay
from pipeline.manifest.load import load_manifest
from pipeline.run.outcome import EXIT_OK, EXIT_STOPPED, summary_text
from pipeline.run.produce import SUBMIT_WORKERS
from pipeline.report.page import write_report
from pipeline.report.status import run_status
from pipeline.report.status_view import status_json, status_text
from run_helpers import CLIP, body_key, check_consistent, run

CU_PER_SECOND = 4.0  # the emulator's default: duration 4 s -> 16 CU, 8 s -> 32 CU


def priced_manifest(folder: Path, *, name: str = "priced", prompts: int = 1, seeds: int = 3,
                    extra_input: str = "") -> Path:
    """prompts x durations [4, 8] x seeds jobs over the sample clip: two kinds of job, 16 and 32 CU."""
    lines = [f"name: {name}", "inputs:", f"  video: {CLIP}", extra_input, "prompts:"]
    lines += [f"  - prompt number {i}" for i in range(prompts)]
    lines += ["sweep:", "  duration: [4, 8]", f"seeds: {{count: {seeds}, from: 11}}"]
    path = folder / f"{name}.yaml"
    path.write_text("\n".join(line for line in lines if line) + "\n")
    return path


def price_of(body: dict[str, Any]) -> int:
    return price_cu(body, cu_per_second=CU_PER_SECOND)


async def test_costs_are_recorded_and_shown(tmp_path: Path, emulator_factory) -> None:
    """Each job's cost (the emulator's charge) in results.json and .csv, the total in the run record, the
    summary, status (text and JSON) and the report's header and cards."""
    server = await emulator_factory()
    summary = await run(priced_manifest(tmp_path, prompts=2), server, tmp_path / "out")
    assert summary.exit_status == EXIT_OK
    records = await server.emulator.job_records()
    charged = {body_key(r["body"]): r["costCu"] for r in records}
    total = sum(charged.values())
    assert total == 6 * 16 + 6 * 32
    results = await check_consistent(summary.run_dir, server, expect_jobs=12)
    for job in results["jobs"]:
        assert job["cost_cu"] == charged[body_key(job["request"])] == price_of(job["request"])
        assert job["cost_cu_earlier_attempts"] == 0 and job["hint"] is None and job["trace_id"] is None
    assert results["run"]["cost_cu"] == total and results["run"]["jobs_without_cost"] == 0
    assert results["run"]["max_cost_cu"] is None
    with (summary.run_dir / "results.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(float(r["cost_cu"]) for r in rows) == sorted(float(j["cost_cu"]) for j in results["jobs"])
    assert f"cost: {cu(total)}" in summary_text(summary, resume_command="x")
    status = run_status(summary.run_dir)
    assert status.cost.recorded_cu == total and f"cost: {cu(total)}" in status_text(status)
    assert status_json(status)["cost"]["recorded_cu"] == total
    page = (write_report(summary.run_dir, posters=False).path).read_text()
    assert f"cost {cu(total)}" in page
    assert page.count(' data-c="16 CU"') == 6 and page.count(' data-c="32 CU"') == 6  # each tile's cost


async def test_failures_show_hint_everywhere(tmp_path: Path, emulator_factory) -> None:
    """Jobs failed on the server carry metadata.hint into results.json/csv, the summary, status and the report."""
    server = await emulator_factory(fault_job_failure_rate=1.0)
    summary = await run(priced_manifest(tmp_path, seeds=1), server, tmp_path / "out")
    assert summary.counts["failed"] == 2
    records = {body_key(r["body"]): r for r in await server.emulator.job_records()}
    results = json.loads((summary.run_dir / "results.json").read_text())
    for job in results["jobs"]:
        served = records[body_key(job["request"])]
        assert job["error"] == served["error"] and job["hint"] == served["hint"] and job["hint"]
    text = summary_text(summary, resume_command="x")
    assert all(f"hint: {job['hint']}" in text for job in results["jobs"])
    status = run_status(summary.run_dir)
    assert {g.hint for g in status.failures} == {job["hint"] for job in results["jobs"]}
    assert "(hint: " in status_text(status)
    assert all(group["hint"] for group in status_json(status)["failures"])
    page = write_report(summary.run_dir, posters=False).path.read_text()
    assert page.count(' data-h="') == 2  # each failed tile carries its hint (shown in its details)
    with (summary.run_dir / "results.csv").open(newline="", encoding="utf-8") as handle:
        assert all(row["hint"] for row in csv.DictReader(handle))


async def test_rejected_job_keeps_trace_id(tmp_path: Path, emulator_factory) -> None:
    """A job the server rejects (400) keeps the answer's trace id, shown by the summary, status and report."""
    server = await emulator_factory()
    path = priced_manifest(tmp_path, seeds=1, extra_input="  image: asset_thisdoesnotexist")
    summary = await run(path, server, tmp_path / "out")
    assert summary.counts["failed"] == 2
    results = json.loads((summary.run_dir / "results.json").read_text())
    traces = {job["trace_id"] for job in results["jobs"]}
    assert None not in traces and all(job["error_kind"] == "rejected" for job in results["jobs"])
    assert all(job["cost_cu"] is None for job in results["jobs"]) and results["run"]["cost_cu"] == 0
    text = summary_text(summary, resume_command="x")
    assert all(f"trace id {trace}" in text for trace in traces)
    shown = status_text(run_status(summary.run_dir))
    assert all(f"trace id {trace}" in shown for trace in traces)
    page = write_report(summary.run_dir, posters=False).path.read_text()
    assert all(trace in page for trace in traces)


def spent(records: list[dict[str, Any]]) -> float:
    return sum(r["costCu"] for r in records)


async def test_max_cost_stops_then_a_larger_budget_resumes(tmp_path: Path, emulator_factory) -> None:
    """Submitting stops before the run's cost would pass --max-cost (exit 3, said in the summary, the rest
    pending); the same budget again sends nothing; a larger one sends the rest, each job once."""
    server = await emulator_factory()
    path = priced_manifest(tmp_path, prompts=2, seeds=2)  # 8 jobs: 4 x 16 + 4 x 32 = 192 CU
    out = tmp_path / "out"
    summary = await run(path, server, out, max_cost_cu=100)
    records = await server.emulator.job_records()
    assert summary.exit_status == EXIT_STOPPED and summary.stopped == "budget"
    assert 0 < spent(records) <= 100
    assert "--max-cost 100 CU" in (summary.message or "") and "larger --max-cost" in (summary.message or "")
    text = summary_text(summary, resume_command="ltx-batch run m.yaml --max-cost 100")
    assert "stopped: --max-cost 100 CU" in text and f"cost: {cu(spent(records))}" in text
    results = json.loads((summary.run_dir / "results.json").read_text())
    pending = [job for job in results["jobs"] if job["status"] == "pending"]
    assert pending and len(pending) + len(records) == 8
    assert any(spent(records) + price_of(job["request"] or job["params"]) > 100 for job in pending)
    assert results["run"]["stopped"] == "budget" and results["run"]["max_cost_cu"] == 100
    assert run_status(summary.run_dir).stop_reason == "budget"

    dry_runs = server.emulator.stats()["dry_runs"]
    again = await run(path, server, out, max_cost_cu=100)
    assert again.exit_status == EXIT_STOPPED and len(await server.emulator.job_records()) == len(records)
    assert server.emulator.stats()["dry_runs"] == dry_runs  # the prices were learnt from the journal

    final = await run(path, server, out, max_cost_cu=1000)
    assert final.exit_status == EXIT_OK and final.counts["downloaded"] == 8
    results = await check_consistent(final.run_dir, server, expect_jobs=8)
    assert results["run"]["cost_cu"] == spent(await server.emulator.job_records()) == 192


async def test_concurrent_workers_never_pass_the_budget(tmp_path: Path, emulator_factory) -> None:
    """With every submit worker busy and many jobs, the jobs created never cost more than the budget, and
    submitting stops only when the next job would pass it."""
    server = await emulator_factory(job_time_s=0.05, max_running_jobs=64)
    path = priced_manifest(tmp_path, prompts=8, seeds=4)  # 64 jobs, 1,536 CU
    for cap in (16, 47, 48, 500):
        out = tmp_path / f"out{cap}"
        before = await server.emulator.job_records()
        summary = await run(path, server, out, max_cost_cu=cap, max_in_flight_jobs=32)
        created = (await server.emulator.job_records())[len(before):]
        assert spent(created) <= cap, cap
        assert summary.exit_status == EXIT_STOPPED and summary.stopped == "budget"
        results = json.loads((summary.run_dir / "results.json").read_text())
        pending = [job for job in results["jobs"] if job["status"] == "pending"]
        assert any(spent(created) + price_of(job["params"]) > cap for job in pending), cap


async def test_dry_runs_once_per_kind(tmp_path: Path, emulator_factory) -> None:
    """The gate prices a kind of job by one dry run (one per submit worker at most, when they start together),
    then by what the server charged; a later session reuses the prices the journal learnt."""
    server = await emulator_factory()
    out = tmp_path / "out"
    path = priced_manifest(tmp_path, prompts=4, seeds=2)  # 16 jobs, 2 kinds
    kinds = {price_class(job) for job in load_manifest(path).jobs()}
    summary = await run(path, server, out, max_cost_cu=10_000)
    assert summary.exit_status == EXIT_OK
    dry_runs = server.emulator.stats()["dry_runs"]
    assert len(kinds) <= dry_runs <= len(kinds) * SUBMIT_WORKERS
    events = list(read_events(summary.run_dir / JOURNAL_NAME))
    priced = [e for e in events if e["ev"] == "priced"]
    assert len(priced) == 16 and {e["price_class"] for e in priced} == kinds
    state = replay(summary.run_dir / JOURNAL_NAME)
    assert {state.prices[k] for k in kinds} == {16, 32}
    # the same kinds with other prompts, in the same run folder: no dry run at all
    edited = priced_manifest(tmp_path, prompts=6, seeds=2)
    more = await run(edited, server, out, max_cost_cu=10_000)
    assert more.exit_status == EXIT_OK and more.counts["downloaded"] == 24
    assert server.emulator.stats()["dry_runs"] == dry_runs


async def test_lost_answers_count_at_their_estimate(tmp_path: Path, emulator_factory) -> None:
    """A POST whose answer was lost may be paid: the gate counts it at its estimate, so the jobs the server
    made, answered or not, still cost no more than the budget."""
    server = await emulator_factory(fault_lost_response_rate=0.5, seed=3)
    path = priced_manifest(tmp_path, prompts=6, seeds=2)  # 24 jobs
    summary = await run(path, server, tmp_path / "out", max_cost_cu=300)
    created = await server.emulator.job_records()
    assert summary.counts["unknown"] > 0
    assert spent(created) <= 300
    state = replay(summary.run_dir / JOURNAL_NAME)
    assert state.spend.estimated_cu > 0
    assert state.spend.recorded_cu + state.spend.estimated_cu == pytest.approx(spent(created))
    assert "estimated (answers lost)" in summary_text(summary, resume_command="x")


async def test_unpriceable_job_stops_submitting(tmp_path: Path, emulator_factory) -> None:
    """The gate's dry run refused (the model not in the plan): submitting stops as the generate would have."""
    server = await emulator_factory(required_plan="enterprise")
    summary = await run(priced_manifest(tmp_path, seeds=1), server, tmp_path / "out", max_cost_cu=1000)
    assert summary.exit_status == EXIT_STOPPED and summary.stopped == "access"
    assert "enterprise" in (summary.message or "")
    assert server.emulator.stats()["jobs_created"] == 0
    assert summary.counts["pending"] == 2


@pytest.mark.parametrize("seed", [0, 1, 2])
async def test_unusable_dry_run_stops_submitting(tmp_path: Path, emulator_factory, seed: int) -> None:
    """A dry-run answer the gate cannot use (not JSON, cut off, no creativeUnitsCost) stops submitting, naming the
    job and what was wrong: nothing is sent unpriced, every job stays pending, exit 3, no traceback."""
    server = await emulator_factory(fault_bad_json_rate=1.0, seed=seed)
    path = tmp_path / "asset.yaml"  # an input already on the server: nothing to upload
    path.write_text("name: asset\ninputs:\n  video: asset_alreadythere\nprompts: [a cat]\nseeds: [1, 2]\n")
    summary = await run(path, server, tmp_path / "out", max_cost_cu=1000, max_retries=1)
    assert summary.exit_status == EXIT_STOPPED and summary.stopped == "budget"
    assert "could not be priced by a dry run" in (summary.message or "")
    assert "batch 'main', job " in (summary.message or "") and "/v1/generate/custom/" in (summary.message or "")
    assert server.emulator.stats()["jobs_created"] == 0 and summary.counts["pending"] == 2
