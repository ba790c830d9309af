"""`ltx-batch run MANIFEST`: submit, poll and download every job of a manifest; resume after anything."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import sys
from contextlib import AsyncExitStack
from pathlib import Path

from pipeline.config import Credentials, Settings, default_settings, load_credentials, load_settings
from pipeline.errors import ConfigError, Problem
from pipeline.run.limit import Limit
from pipeline.run.outcome import EXIT_INTERRUPTED
from pipeline.run.runner import RunOptions, RunSummary, run_lock, run_manifest, summary_text

log = logging.getLogger(__name__)

HELP = "run a manifest: submit, poll and download every job (re-run the same command to resume)"


EXIT_STATUSES = (
    (0, "every job downloaded (with --limit: every job chosen)"),
    (1, "some jobs failed, are unknown (answer lost) or unfinished; or the outputs or journal could not be "
        "written (disk full)"),
    (2, "bad manifest, config file, environment variable or flag; no credentials; another run holds the folder"),
    (3, "stopped by the API (credentials refused, out of credits, the model not in the plan) or by --max-cost"),
    (130, "interrupted (Ctrl-C, SIGTERM): the same command resumes"),
)


def default_of(setting: str) -> str:
    """A setting's default as --help shows it (from the default settings file, not restated here)."""
    value = getattr(default_settings(), setting)
    if value == "":
        return "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """Flags shared by commands that talk to the API (run, status and friends)."""
    parser.add_argument("--config", metavar="FILE", help="a YAML file of settings (see configs/default.yaml)")
    parser.add_argument("--out", metavar="DIR", help="output folder; the run folder is DIR/<manifest name>/ "
                                                     f"(default: {default_of('output_dir')})")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", metavar="MANIFEST", help="the YAML manifest")
    add_settings_flags(parser)
    parser.add_argument("--api-url", metavar="URL", help="API base URL (also SCENARIO_API_URL; default: "
                                                         f"{default_of('api_base_url')})")
    parser.add_argument("--project-id", metavar="ID", help="Scenario project id, sent as projectId on every call "
                                                           "(default: none, the key's own project)")
    parser.add_argument("--max-cost", type=float, metavar="CU",
                        help="stop submitting before the run's cost would pass CU Creative Units (0: no cap; "
                             f"default: {default_of('max_cost_cu')})")
    parser.add_argument("--rate", type=float, metavar="N", help="API requests per second, shared by every call "
                                                                f"(default: {default_of('max_requests_per_s')})")
    parser.add_argument("--max-in-flight", type=int, metavar="N", help="jobs submitted but not finished, at most "
                                                                       f"(default: {default_of('max_in_flight_jobs')})")
    parser.add_argument("--downloaders", type=int, metavar="N",
                        help=f"download workers (default: {default_of('download_workers')})")
    parser.add_argument("--limit", type=positive_int, metavar="N",
                        help="send only the first N jobs of the manifest (a trial before the whole run); the same "
                             "command without --limit later sends the rest, nothing twice")
    parser.add_argument("--spread", action="store_true",
                        help="with --limit: N jobs spread across the manifest instead of the first N (the same "
                             "ones every time)")
    parser.add_argument("--retry-failed", action="store_true", help="submit again the jobs that failed before")
    parser.add_argument("--resubmit-unknown", action="store_true",
                        help="submit again the jobs whose POST answer was lost (they may exist: may pay twice)")
    parser.add_argument("--download-strays", action="store_true",
                        help="also save the outputs of stray server jobs (a job made twice) under videos/strays")
    parser.add_argument("--emulator", action="store_true",
                        help="run against the built-in emulator on a free loopback port (no credentials)")
    parser.add_argument("--no-report", action="store_true", help="do not write report.html at the end of the run")
    parser.add_argument("--refresh-model", action="store_true",
                        help="fetch the parameters of the manifest's models again, whatever the age of the cached ones")


SETTING_FLAGS: dict[str, str] = {"output_dir": "--out", "api_base_url": "--api-url", "project_id": "--project-id",
                                 "max_requests_per_s": "--rate", "max_in_flight_jobs": "--max-in-flight",
                                 "download_workers": "--downloaders", "max_cost_cu": "--max-cost"}
"""Setting -> the flag that sets it, so a bad value is reported as the user typed it (`--rate`)."""


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _without_limit(argv: list[str]) -> list[str]:
    """The command line without --limit N and --spread: the whole run."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--limit":
            skip = True
        elif not arg.startswith("--limit=") and arg != "--spread":
            out.append(arg)
    return out


def settings_from(args: argparse.Namespace, **extra: object) -> Settings:
    overrides = {"output_dir": args.out, **extra}
    return load_settings(config_file=args.config, overrides=overrides, flags=SETTING_FLAGS)


def execute(args: argparse.Namespace) -> int:
    from pipeline.cli.model_schema import load_checked

    if args.spread and args.limit is None:
        raise ConfigError(Problem("--spread", "needs --limit N (how many jobs to spread across the manifest)"))
    settings = settings_from(args, api_base_url=args.api_url, max_requests_per_s=args.rate,
                             max_in_flight_jobs=args.max_in_flight, download_workers=args.downloaders,
                             project_id=args.project_id, max_cost_cu=args.max_cost)
    manifest = load_checked(args.manifest, settings, refresh=args.refresh_model, emulator=args.emulator)
    for problem in manifest.warnings:  # what `plan` would have shown: a run must not hide it
        log.warning("%s", problem)
    credentials = None if args.emulator else load_credentials()
    run_dir = Path(settings.output_dir) / manifest.name
    mode = "off" if args.quiet else "live" if sys.stderr.isatty() and not args.verbose else "log"
    options = RunOptions(retry_failed=args.retry_failed, resubmit_unknown=args.resubmit_unknown,
                         download_strays=args.download_strays,
                         freeze_long_lived=True,
                         progress=mode, manifest_path=str(Path(args.manifest).resolve()),
                         on_finish=None if args.no_report else _write_report, lock_held=True,
                         limit=None if args.limit is None else Limit.of(args.limit, manifest.job_count,
                                                                        spread=args.spread))
    resume = "ltx-batch " + shlex.join(args.argv)
    try:
        with run_lock(run_dir):  # before the emulator starts: a second run in the folder prints only its refusal
            summary = asyncio.run(_run(manifest, settings, credentials, run_dir, options, emulator=args.emulator))
    except KeyboardInterrupt:  # a second Ctrl-C where the run's own handler is not installed (e.g. results.json)
        print(f"ltx-batch run: interrupted (the journal is intact)\nto resume: {resume}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(summary_text(summary, resume_command=resume,
                       full_command="ltx-batch " + shlex.join(_without_limit(args.argv))), file=sys.stderr)
    return summary.exit_status


async def _run(manifest, settings: Settings, credentials: Credentials | None, run_dir: Path,  # noqa: ANN001
               options: RunOptions, *, emulator: bool) -> RunSummary:
    async with AsyncExitStack() as stack:
        if emulator:  # imported only for it: a run against the API starts sooner
            from pipeline.cli.emulator import embedded_emulator
            from pipeline.emulator import EMULATOR_API_KEY, EMULATOR_API_SECRET

            url = await stack.enter_async_context(embedded_emulator())
            credentials = Credentials(EMULATOR_API_KEY, EMULATOR_API_SECRET)
            settings = _replace(settings, api_base_url=url)
        assert credentials is not None
        return await run_manifest(manifest, settings, credentials, run_dir, options)


def _write_report(run_dir: Path) -> None:
    """The run's contact sheet at the end of a run; a problem with it never fails the run."""
    from pipeline.errors import PipelineError
    from pipeline.report.page import write_report

    try:
        result = write_report(run_dir)
    except (PipelineError, OSError) as exc:
        log.warning("could not write the report: %s (try: ltx-batch report %s)", exc, run_dir)
    else:
        log.info("report: %s (%d jobs, %.1fs)", result.path, result.jobs, result.build_s)


def _replace(settings: Settings, **changes: object) -> Settings:
    from dataclasses import replace

    return replace(settings, **changes)
