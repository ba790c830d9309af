"""The `ltx-batch` command line: `main(argv) -> int`; each sub-command lives in its own `cli_*` module.

A sub-command module exposes `HELP` (one line), `configure(parser)` and `execute(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from pipeline import __version__
from pipeline.errors import PipelineError

# sub-command name -> module implementing it
COMMANDS: dict[str, str] = {
    "plan": "pipeline.cli.plan",
    "run": "pipeline.cli.run",
    "emulator": "pipeline.cli.emulator",
    "status": "pipeline.cli.status",
    "report": "pipeline.cli.report",
    "rerun": "pipeline.cli.rerun",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error prints one clear line and exits 2 (its default status)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ltx-batch", description="Batch runs of Scenario's LTX-2 19B video-to-video model.")
    parser.add_argument("--version", action="version", version=f"ltx-batch {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        sub.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        sub.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
        module.configure(sub)
        sub.set_defaults(_execute=module.execute)
    return parser


def setup_logging(*, verbose: bool, quiet: bool) -> None:
    """Log lines as `12:03:04 WARNING message`; with --verbose (debug) the module that logged is named too."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    where = " %(name)s:" if verbose else ""
    logging.basicConfig(level=level, format=f"%(asctime)s %(levelname)s{where} %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr, force=True)
    if not verbose:
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, run the sub-command, map errors to exit statuses (never a traceback for ours)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    setup_logging(verbose=args.verbose, quiet=args.quiet)
    try:
        return int(args._execute(args))
    except PipelineError as exc:
        print(f"ltx-batch {args.command}: error:\n  " + str(exc).replace("\n", "\n  "), file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("ltx-batch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
