"""`ltx-batch report RUN_DIR`: write RUN_DIR/report.html (the sweep's contact sheet) and results.csv."""

from __future__ import annotations

import argparse
import sys

from pipeline.report.page import write_report

HELP = "write RUN_DIR/report.html, a self-contained contact sheet of the run's videos (and results.csv)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (holds results.json / ledger.jsonl)")
    parser.add_argument("--rows", metavar="NAME", help="parameter down the rows (default: the swept one with "
                                                       "the most values)")
    parser.add_argument("--cols", metavar="NAME", help="parameter along the columns (default: the next one)")
    parser.add_argument("--no-posters", action="store_true", help="do not extract poster frames with ffmpeg")


def execute(args: argparse.Namespace) -> int:
    result = write_report(args.run_dir, rows=args.rows, cols=args.cols, posters=not args.no_posters)
    if not args.quiet:
        source = "" if result.source == "results.json" else f", from {result.source}"
        print(f"{result.path} ({result.jobs} jobs{source}, {result.bytes / 1e6:.2f} MB, {result.posters} posters, "
              f"{result.kind} layout, {result.build_s:.1f}s)", file=sys.stderr)
    print(result.path)
    return 0
