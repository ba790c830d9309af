"""The `run` command as a user meets it (issue 14): what it prints before, during and after a run, its flags."""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import EMULATOR_FAST_KNOBS
from run_helpers import FAST, write_manifest

from pipeline.cli import run as cli_run
from pipeline.cli.main import main, setup_logging


@pytest.fixture
def fast_cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`run --emulator` in-process with the fast test settings and emulator (no LTX_BATCH_/SCENARIO_ inherited)."""
    import os

    for name in list(os.environ):
        if name.startswith(("LTX_BATCH_", "SCENARIO_")):
            monkeypatch.delenv(name)
    for name, value in FAST.items():
        monkeypatch.setenv(f"LTX_BATCH_{name.upper()}", str(value))
    monkeypatch.setattr(cli_run, "EMBEDDED_KNOBS", {**EMULATOR_FAST_KNOBS, "rate_limit_per_s": 1000.0})
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
    monkeypatch.setitem(cli_run.EMBEDDED_KNOBS, "fault_job_failure_rate", 1.0)
    manifest = write_manifest(tmp_path, prompts=1, seeds=1)
    argv = ["run", str(manifest), "--out", str(tmp_path / "out"), "--emulator", "--no-report", "-q"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"to send the 2 failed job(s) again (each is paid again): ltx-batch {' '.join(argv)} --retry-failed" in err


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
