"""`ltx-batch report RUN_DIR`: write RUN_DIR/report.html (the sweep's contact sheet) and results.csv."""

from __future__ import annotations

import argparse
import sys

from pipeline.report.page import write_report

HELP = "write RUN_DIR/report.html, a self-contained contact sheet of the run's videos (and results.csv)"


AXES = ("Axes (NAME): anything the run varies: a parameter the manifest sweeps or zips (videoStrength, "
        "modality, width, ...), prompt (several prompts), seed (several seeds), video (several input videos) or "
        "batch (several batches). A name the run does not vary is refused (exit 2) with the list of those it "
        "does; the page's header lists them too. Exit status: 0 written, 2 bad folder or axis, 1 other errors.")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = AXES
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (holds results.json / ledger.jsonl)")
    parser.add_argument("--rows", metavar="NAME", help="the axis down the rows (default: the swept parameter "
                                                       "with the most values); see Axes below")
    parser.add_argument("--cols", metavar="NAME", help="the axis along the columns (default: the next one)")
    parser.add_argument("--no-posters", action="store_true", help="do not extract poster frames with ffmpeg")


def execute(args: argparse.Namespace) -> int:
    result = write_report(args.run_dir, rows=args.rows, cols=args.cols, posters=not args.no_posters)
    if not args.quiet:
        source = "" if result.source == "results.json" else f", from {result.source}"
        print(f"{result.path} ({result.jobs} jobs{source}, {result.bytes / 1e6:.2f} MB, {result.posters} posters, "
              f"{result.kind} layout, {result.build_s:.1f}s)", file=sys.stderr)
    print(result.path)
    return 0
