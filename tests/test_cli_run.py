"""The `run` command as a user meets it (issue 14): what it prints before, during and after a run, its flags."""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import EMULATOR_FAST_KNOBS
from run_helpers import CLIP, FAST, check_consistent, run, write_manifest

from pipeline.cli import emulator as cli_emulator
from pipeline.cli import run as cli_run
from pipeline.cli.main import main, setup_logging
from pipeline.run.limit import Limit


@pytest.fixture
def fast_cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`run --emulator` in-process with the fast test settings and emulator (no LTX_BATCH_/SCENARIO_ inherited)."""
    import os

    for name in list(os.environ):
        if name.startswith(("LTX_BATCH_", "SCENARIO_")):
            monkeypatch.delenv(name)
    for name, value in FAST.items():
        monkeypatch.setenv(f"LTX_BATCH_{name.upper()}", str(value))
    monkeypatch.setattr(cli_emulator, "EMBEDDED_KNOBS", {**EMULATOR_FAST_KNOBS, "rate_limit_per_s": 1000.0})
    yield
    logging.getLogger().handlers.clear()


def test_a_second_run_in_a_locked_folder_prints_only_its_refusal(tmp_path: Path, fast_cli: None,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Another process holding the run folder: the refusal (exit 2) comes before the emulator starts."""
    manifest = write_manifest(tmp_path, prompts=1, seeds=1)
    run_dir = tmp_path / "out" / "t"
    run_dir.mkdir(parents=True)
    with (run_dir / ".lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        status = main(["run", str(manifest), "--out", str(tmp_path / "out"), "--emulator", "--no-report"])
    err = capsys.readouterr().err
    assert status == 2 and "another ltx-batch process is running" in err
    assert "emulator" not in err and err.count("\n") == 2, err


def test_log_lines_show_level_and_message_and_modules_only_when_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    """Log lines carry no module name (`INFO pipeline.cli.run:`) unless --verbose asks for debug detail."""
    setup_logging(verbose=False, quiet=False)
    logging.getLogger("pipeline.cli.run").info("report written")
    plain = capsys.readouterr().err
    setup_logging(verbose=True, quiet=False)
    logging.getLogger("pipeline.cli.run").info("report written")
    verbose = capsys.readouterr().err
    logging.getLogger().handlers.clear()
    assert plain.rstrip().endswith(" INFO report written") and "pipeline" not in plain
    assert "INFO pipeline.cli.run: report written" in verbose


@pytest.mark.parametrize(("argv", "environ", "named"), [
    (["run", "{m}", "--rate", "0", "--emulator"], {}, "--rate: must be greater than 0"),
    (["run", "{m}", "--emulator"], {"LTX_BATCH_MAX_REQUESTS_PER_S": "0"},
     "environment variable LTX_BATCH_MAX_REQUESTS_PER_S: must be greater than 0"),
    (["plan", "{m}", "--out", ""], {}, "--out: must be a non-empty string"),
    (["emulator", "--job-time-s", "-1"], {}, "--job-time-s: must not be negative"),
], ids=["flag", "variable", "plan flag", "emulator knob"])
def test_setting_problems_name_what_the_user_typed(tmp_path: Path, fast_cli: None, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str], argv: list[str],
                                                   environ: dict[str, str], named: str) -> None:
    """`--rate 0` is reported as --rate, LTX_BATCH_MAX_REQUESTS_PER_S=0 as that variable (exit 2)."""
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    manifest = write_manifest(tmp_path, prompts=1, seeds=1)
    status = main([a.replace("{m}", str(manifest)) for a in argv])
    err = capsys.readouterr().err
    assert status == 2 and named in err, err
    assert "max_requests_per_s" not in err and "job_time_s" not in err and "environment:" not in err


def help_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines: compare words


def test_help_shows_the_defaults_of_the_settings_file(capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`run --help` shows --rate 5, --max-in-flight 20, --downloaders 4 as the settings file has them (not restated)."""
    from dataclasses import replace

    from pipeline.config import default_settings

    shown = help_of(capsys, "run")
    defaults = default_settings()
    assert f"every call (default: {defaults.max_requests_per_s:g})" in shown
    assert f"at most (default: {defaults.max_in_flight_jobs})" in shown
    assert f"download workers (default: {defaults.download_workers})" in shown
    assert "(default: out)" in shown and "(0: no cap; default: 0)" in shown
    monkeypatch.setattr(cli_run, "default_settings", lambda: replace(defaults, max_requests_per_s=7.5,
                                                                      download_workers=9))
    shown = help_of(capsys, "run")
    assert "every call (default: 7.5)" in shown and "download workers (default: 9)" in shown


def test_help_lists_every_exit_status_the_tool_uses(capsys: pytest.CaptureFixture[str]) -> None:
    """`ltx-batch --help` and `run --help` list the exit statuses: 0, 1, 2, 3 and 130 (from the code's constants)."""
    from pipeline.errors import AuthError, CreditsError, InputError, PipelineError
    from pipeline.run.outcome import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_STOPPED

    used = {EXIT_OK, EXIT_FAILED, EXIT_STOPPED, EXIT_INTERRUPTED, PipelineError.exit_status, InputError.exit_status,
            AuthError.exit_status, CreditsError.exit_status}
    for argv in ([], ["run"]):
        shown = help_of(capsys, *argv)
        assert "exit status:" in shown
        listed = {int(word) for word in shown.split("exit status:")[1].split() if word.isdigit()}
        assert used <= listed, (argv, used - listed)
    for command in ("plan", "status", "rerun", "emulator"):
        assert "exit status: 0 " in help_of(capsys, command)


def test_the_failure_summary_gives_the_retry_failed_command(tmp_path: Path, fast_cli: None,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Jobs that failed on the server: the summary gives the command that sends them again (--retry-failed)."""
    monkeypatch.setitem(cli_emulator.EMBEDDED_KNOBS, "fault_job_failure_rate", 1.0)
    manifest = write_manifest(tmp_path, prompts=1, seeds=1)
    argv = ["run", str(manifest), "--out", str(tmp_path / "out"), "--emulator", "--no-report", "-q"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"to send the 2 failed job(s) again (each job made is paid): ltx-batch {' '.join(argv)} --retry-failed" in err


def test_an_interrupt_outside_the_run_handlers_still_prints_the_resume_command(
        tmp_path: Path, fast_cli: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A second Ctrl-C that lands as KeyboardInterrupt (e.g. while results.json is written): exit 130 and the
    command that resumes."""
    async def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_run, "run_manifest", interrupted)
    manifest = write_manifest(tmp_path, prompts=1, seeds=1)
    argv = ["run", str(manifest), "--out", str(tmp_path / "out"), "--emulator"]
    assert main(argv) == 130
    assert f"to resume: ltx-batch {' '.join(argv)}" in capsys.readouterr().err


def test_a_run_opens_with_what_it_will_do_and_a_limited_run_says_so(tmp_path: Path, fast_cli: None,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`run --limit 3`: the opening lines (new run, 3 to submit, 5 left), exit 0 once those 3 are downloaded, the
    summary says it was limited and gives the command for the rest; results.json records the limit."""
    import json

    manifest = write_manifest(tmp_path, prompts=2, seeds=2)  # 8 jobs
    out = tmp_path / "out"
    argv = ["run", str(manifest), "--out", str(out), "--emulator", "--no-report", "--limit", "3"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    lines = [line.split(" INFO ", 1)[-1] for line in err.splitlines()]
    assert lines[1:3] == [f"new run into {out / 't'}/: 8 jobs",
                          "this run: submit 3 jobs (paid), leave 5 never-sent jobs for later (--limit 3: the first 3 "
                          "of 8 jobs; the same command without --limit sends them)"], err
    assert "limited run (--limit 3: the first 3 of 8 jobs): 3/3 of them downloaded" in err
    assert (f"to run the rest (5 jobs; nothing is sent twice): ltx-batch run {manifest} --out {out} --emulator "
            "--no-report") in err
    assert "to resume:" not in err
    run = json.loads((out / "t" / "results.json").read_text())["run"]
    assert run["limit"] == {"limit": 3, "spread": False, "chosen": 3, "of": 8,
                            "chosen_counts": {**dict.fromkeys(["pending", "unknown", "submitted", "succeeded",
                                                               "failed"], 0), "downloaded": 3}}
    assert [job["status"] for job in json.loads((out / "t" / "results.json").read_text())["jobs"]] == \
        ["downloaded"] * 3 + ["pending"] * 5
    assert main(["status", str(out / "t")]) == 0
    assert ("limited: the last session ran with --limit 3 (3 of 8 jobs); the same command without --limit sends "
            "the rest") in capsys.readouterr().out
    assert main(["run", str(manifest), "--spread", "--emulator"]) == 2
    assert "--spread: needs --limit N" in capsys.readouterr().err


async def test_a_limited_run_resumes_into_the_full_run_paying_nothing_twice(tmp_path: Path,
                                                                            emulator_factory) -> None:
    """--limit 3 --spread, then --limit 5, then the whole manifest: each sends only what was never sent; the
    emulator makes each job once; the last run's opening lines say what the folder held."""
    from pipeline.run.runner import RunOptions

    server = await emulator_factory(job_time_s=0.05, job_time_spread_s=0.0)
    manifest = write_manifest(tmp_path, prompts=2, seeds=3)  # 12 jobs
    out = tmp_path / "out"
    spread = Limit.of(3, 12, spread=True)
    summary = await run(manifest, server, out, options=RunOptions(progress="off", limit=spread))
    assert summary.exit_status == 0 and server.emulator.stats()["jobs_created"] == 3
    summary = await run(manifest, server, out, options=RunOptions(progress="off", limit=Limit.of(5, 12)))
    first_five = set(range(5)) | set(spread.indices)
    assert summary.exit_status == 0 and server.emulator.stats()["jobs_created"] == len(first_five)
    assert summary.counts["downloaded"] == len(first_five)
    with capture_logs() as logged:
        summary = await run(manifest, server, out)
    assert summary.exit_status == 0 and server.emulator.stats()["jobs_created"] == 12
    assert f"resuming {out / 't'}/: {len(first_five)} downloaded (of 12 jobs)" in logged
    assert f"this run: submit {12 - len(first_five)} jobs (paid)" in logged
    await check_consistent(out / "t", server, expect_jobs=12)


def capture_logs() -> Any:
    """The messages logged at INFO and above while the block runs."""
    import contextlib

    @contextlib.contextmanager
    def capturing() -> Iterator[list[str]]:
        messages: list[str] = []
        handler = logging.Handler(logging.INFO)
        handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
        root = logging.getLogger()
        level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            yield messages
        finally:
            root.removeHandler(handler)
            root.setLevel(level)

    return capturing()


def test_plan_says_what_an_existing_run_folder_holds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`plan` on a manifest whose run folder exists: counts from its journal (read only), e.g. `3 downloaded,
    1 failed; 4 new (paid); 1 no longer in the manifest`, not just "exists"."""
    from pipeline.ledger.journal import Journal
    from pipeline.manifest.load import load_manifest

    manifest = write_manifest(tmp_path, prompts=2, seeds=2)  # 8 jobs
    run_dir = tmp_path / "out" / "t"
    run_dir.mkdir(parents=True)
    jobs = list(load_manifest(manifest).jobs())
    journal = Journal(run_dir / "ledger.jsonl")
    for key in [job.key for job in jobs[:3]] + ["gone"]:
        for kind, fields in (("intent", {}), ("submitted", {"job_id": "j"}), ("succeeded", {"asset_ids": ["a"]}),
                             ("downloaded", {"asset_id": "a", "path": f"{key}.mp4", "bytes": 1, "sha256": "0"})):
            journal.write_now(kind, key=key, **fields)
    journal.write_now("intent", key=jobs[3].key)
    journal.write_now("failed", key=jobs[3].key, reason="job-failed", error="x")
    journal.write_now("intent", key=jobs[4].key)
    journal.close()
    before = (run_dir / "ledger.jsonl").read_bytes()
    assert main(["plan", str(manifest), "--out", str(tmp_path / "out")]) == 0
    shown = capsys.readouterr().out
    assert (f"run       t  ->  {run_dir}/  (exists: 3 downloaded, 1 failed, 1 unknown; 3 new (paid); 1 no longer "
            "in the manifest; a run there resumes)") in shown
    assert (run_dir / "ledger.jsonl").read_bytes() == before


def test_plan_wide_shows_prompts_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`plan` cuts prompts to fit; `plan --wide` shows each whole, in the last column."""
    prompt = "A very long prompt about a lighthouse on a cliff at dusk, waves crashing, seagulls, volumetric fog"
    manifest = tmp_path / "long.yaml"
    manifest.write_text(f"name: long\ninputs: {{video: {CLIP}}}\nprompts: ['{prompt}']\n"
                        "sweep: {videoStrength: [0.5, 1.0]}\n")
    assert main(["plan", str(manifest), "--out", str(tmp_path / "out")]) == 0
    assert prompt not in capsys.readouterr().out
    assert main(["plan", str(manifest), "--out", str(tmp_path / "out"), "--wide"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[-3].split() == ["index", "key", "videoStrength", "seed", "prompt"]
    assert rows[-2].endswith(f"  {prompt}") and rows[-1].endswith(f"  {prompt}")


async def test_a_lost_answer_is_journaled_so_status_says_unknown_not_submitting(tmp_path: Path,
                                                                                emulator_factory) -> None:
    """Each POST whose answer is lost gets an `answer-lost` event with the reason: `status` tells it from a POST
    still awaiting its answer."""
    from pipeline.ledger.replay import JOURNAL_NAME, read_events

    server = await emulator_factory(fault_lost_response_rate=1.0, list_jobs_refused=403)
    summary = await run(write_manifest(tmp_path, prompts=1, seeds=1), server, tmp_path / "out",
                        reconcile_settle_s=0.1)
    events = list(read_events(tmp_path / "out" / "t" / JOURNAL_NAME))
    lost = [e for e in events if e["ev"] == "answer-lost"]
    assert summary.counts["unknown"] == 2 and len(lost) == 2 and all(e["error"] for e in lost)


def test_run_shows_the_manifests_warnings_as_plan_does(tmp_path: Path, fast_cli: None,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A manifest warning (here `seeds: 3`, the one seed 3) is printed by `run` before it pays, not only by `plan`."""
    manifest = tmp_path / "w.yaml"
    manifest.write_text(f"name: w\ninputs:\n  video: {CLIP}\nprompts: [a]\nseeds: 3\n")
    assert main(["run", str(manifest), "--out", str(tmp_path / "out"), "--emulator", "--no-report"]) == 0
    err = capsys.readouterr().err
    assert "WARNING" in err and "seeds: is the one seed 3" in err and "{count: 3}" in err, err


def test_a_run_with_nothing_to_do_says_so_and_nothing_about_watching_jobs(tmp_path: Path, fast_cli: None,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """How jobs are watched is told once there is a job to watch: a run with every job downloaded says only that
    there is nothing to do, and sends no request."""
    manifest = write_manifest(tmp_path, prompts=1, seeds=2)
    argv = ["run", str(manifest), "--out", str(tmp_path / "out"), "--emulator", "--no-report"]
    assert main(argv) == 0
    assert "watching the jobs in flight with the job listing" in capsys.readouterr().err
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "this run: nothing: every job is downloaded" in err and "watching" not in err, err
    assert "0 API requests" in err
