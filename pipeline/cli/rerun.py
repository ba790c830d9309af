"""`ltx-batch rerun RUN_DIR --keys K1,K2 | --failed`: a manifest that reproduces exactly those jobs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline.errors import InputError
from pipeline.ledger.rundir import load_run
from pipeline.report.rerun import rerun_manifest, select_jobs

HELP = "write a manifest (YAML) that reproduces chosen jobs: same inputs, parameters and seeds"
EXIT_STATUSES = (
    (0, "the manifest was written (or, with --failed alone, nothing had failed: nothing to rerun)"),
    (2, "not a run folder, no jobs chosen, a key that matches no job or several, or -o cannot be written"),
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (holds results.json / ledger.jsonl)")
    parser.add_argument("--keys", metavar="K1,K2", help="job keys, or unambiguous key prefixes, comma-separated")
    parser.add_argument("--failed", action="store_true", help="every failed job")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the manifest here (default: stdout)")


def execute(args: argparse.Namespace) -> int:
    keys = [k.strip() for k in (args.keys or "").split(",") if k.strip()]
    if not keys and not args.failed:
        raise InputError("say which jobs: --keys K1,K2 (key prefixes work) and/or --failed")
    view = load_run(args.run_dir)
    chosen = select_jobs(view.jobs, keys=keys, failed=args.failed)
    if not chosen:  # --failed, and no job failed: a fine outcome
        print(f"nothing to rerun: no failed jobs in {view.run_dir}", file=sys.stderr)
        return 0
    rerun = rerun_manifest(str(view.run.get("name") or view.run_dir.name), chosen)
    for note in rerun.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.output:
        target = Path(args.output)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            temporary.write_text(rerun.text, encoding="utf-8")
            os.replace(temporary, target)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise InputError(f"-o {target}: cannot write it: {exc.strerror or exc}") from None
        if not args.quiet:
            print(f"{target}: {rerun.jobs} job(s); run it with: ltx-batch run {target}", file=sys.stderr)
    else:
        sys.stdout.write(rerun.text)
    return 0
