"""`ltx-batch status RUN_DIR`: counts, failures, unknown POSTs, time, requests and what a resume would do."""

from __future__ import annotations

import argparse
import json
import sys

from pipeline.status import run_status
from pipeline.status_view import status_json, status_text

HELP = "show a run's progress and what a resume would do (works while the run is going)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (holds ledger.jsonl)")
    parser.add_argument("--json", action="store_true", help="print the status as JSON (every job listed)")


def execute(args: argparse.Namespace) -> int:
    status = run_status(args.run_dir)
    if args.json:
        json.dump(status_json(status), sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    else:
        print(status_text(status))
    return 0
