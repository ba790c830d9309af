"""The `ltx-batch` command line: `main(argv) -> int`; each sub-command lives in its own `cli_*` module.

A sub-command module exposes `HELP` (one line), `configure(parser)` and `execute(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import textwrap
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
    "models": "pipeline.cli.models",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error prints one clear line and exits 2 (its default status)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


EXIT_STATUSES = (
    (0, "success"),
    (1, "run: some jobs failed, are unknown or unfinished; the disk is full; an API error a command cannot get "
        "past (plan --cost, status --server)"),
    (2, "bad input: manifest, config file, environment variable, flag; no credentials; not a run folder; "
        "another run holds the run folder"),
    (3, "stopped by the API (credentials refused, out of credits, the model not in the plan) or by --max-cost"),
    (130, "interrupted (Ctrl-C, SIGTERM)"),
)
"""Every exit status the tool uses (each command's --help lists its own)."""


def exit_text(statuses: Sequence[tuple[int, str]]) -> str:
    """The `exit status:` block of an epilog."""
    return "exit status:\n" + "\n".join(textwrap.fill(text, width=79, initial_indent=f"  {code:>3}  ",
                                                       subsequent_indent=" " * 7) for code, text in statuses)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every sub-command; given the arguments and they start with a sub-command, the parser of that
    one alone (the other commands' modules are not imported: a run starts sooner)."""
    parser = _Parser(prog="ltx-batch", description="Batch runs of Scenario's LTX-2 19B video-to-video model.",
                     epilog=exit_text(EXIT_STATUSES), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"ltx-batch {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    for name, module_name in COMMANDS.items():
        if chosen is not None and name != chosen:
            continue
        module = importlib.import_module(module_name)
        statuses = getattr(module, "EXIT_STATUSES", None)
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP,
                                    epilog=exit_text(statuses) if statuses else None,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
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
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(arguments)
    args = parser.parse_args(arguments)
    args.argv = arguments
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
