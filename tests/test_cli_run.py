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
