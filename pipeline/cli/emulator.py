"""`ltx-batch emulator`: run the local Scenario API emulator as a server until Ctrl-C; `embedded_emulator`, the
one `run`, `plan` and `models --emulator` start on a free loopback port."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import fields
from typing import Any

from pipeline.emulator import EMULATOR_API_KEY, EMULATOR_API_SECRET, Emulator, EmulatorKnobs, EmulatorServer
from pipeline.emulator.knobs import knob_type
from pipeline.errors import ConfigError, Problem
from pipeline.gcpause import IdleFreezer, freeze_long_lived

HELP = "run a local emulator of the Scenario API (for trying the pipeline and for tests)"
DEFAULT_PORT = 8765
EXIT_STATUSES = (
    (0, "stopped by Ctrl-C or SIGTERM"),
    (2, "a bad flag or knob, or the port cannot be listened on"),
)

log = logging.getLogger(__name__)

# the embedded emulator: a few seconds a job, 8 running at once, 10 requests/s (above our default 5)
EMBEDDED_KNOBS: dict[str, object] = {"job_time_s": 3.0, "job_time_spread_s": 1.0, "max_running_jobs": 8,
                                     "rate_limit_per_s": 10.0}


@asynccontextmanager
async def embedded_emulator(**knobs: object) -> AsyncIterator[str]:
    """The built-in emulator on a free loopback port, with demo-like timing; yields its base URL. Each one draws
    its own seed: like a real server, it never hands out again the ids an earlier command's emulator gave (a
    resume must not find its remembered asset ids naming other files)."""
    knobs = {"seed": random.randrange(2**32), **knobs}
    server = EmulatorServer(Emulator(**{**EMBEDDED_KNOBS, **knobs}), host="127.0.0.1", port=0)
    await server.start()
    log.info("emulator listening on %s", server.url)
    try:
        yield server.url
    finally:
        await server.close()


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _parser_for(kind: type, optional: bool) -> Any:
    def parse(text: str) -> Any:
        if optional and text.strip().lower() in ("none", "null", ""):
            return None
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a valid {kind.__name__}: {text!r}") from None
    parse.__name__ = kind.__name__  # argparse names the type in its error message
    return parse


def configure(parser: argparse.ArgumentParser) -> None:
    """Add --host, --port and one flag per `EmulatorKnobs` field (defaults shown in --help)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to bind, 0 for any (default: %(default)s)")
    knobs = parser.add_argument_group("knobs", "how the emulated service behaves")
    defaults = EmulatorKnobs()
    for f in fields(EmulatorKnobs):
        kind, optional = knob_type(f.name)
        default = getattr(defaults, f.name)
        text = f"{f.metadata['help']} (default: {'none' if default is None else default})"
        if kind is bool:
            knobs.add_argument(_flag(f.name), dest=f.name, action=argparse.BooleanOptionalAction,
                               default=default, help=text)
        else:
            knobs.add_argument(_flag(f.name), dest=f.name, type=_parser_for(kind, optional), default=default,
                               metavar=kind.__name__.upper(), help=text)


def _as_typed(problem: str) -> Problem:
    """A knob's problem ("job_time_s must not be negative") as one of its flag ("--job-time-s: must not ...")."""
    name, _, rest = problem.partition(" ")
    if rest and name in {f.name for f in fields(EmulatorKnobs)}:
        return Problem(_flag(name), rest)
    return Problem("", problem)


def _credentials(environ: dict[str, str] | os._Environ[str]) -> tuple[str, str, bool]:
    key, secret = environ.get("SCENARIO_API_KEY", ""), environ.get("SCENARIO_API_SECRET", "")
    if key and secret:
        return key, secret, True
    return EMULATOR_API_KEY, EMULATOR_API_SECRET, False


async def _serve(server: EmulatorServer, *, from_env: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with server:
            freeze_long_lived()  # modules and the app: out of the GC's walks (see pipeline.gcpause)
            lines = [f"Scenario API emulator listening on {server.url}"]
            if from_env:
                lines.append("credentials: SCENARIO_API_KEY / SCENARIO_API_SECRET from the environment")
            else:
                lines += ["test credentials (SCENARIO_API_KEY / SCENARIO_API_SECRET unset):",
                          f"  export SCENARIO_API_URL={server.url}",
                          f"  export SCENARIO_API_KEY={EMULATOR_API_KEY} SCENARIO_API_SECRET={EMULATOR_API_SECRET}"]
            lines.append(f"stats: {server.url}/_emulator/stats   (Ctrl-C stops)")
            print("\n".join(lines), flush=True)
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def execute(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM, then stop cleanly and return 0."""
    try:
        knobs = EmulatorKnobs(**{f.name: getattr(args, f.name) for f in fields(EmulatorKnobs)})
    except ValueError as exc:  # "job_time_s must not be negative": named by its flag, as the user typed it
        raise ConfigError([_as_typed(p) for p in str(exc).split("; ")]) from None
    key, secret, from_env = _credentials(os.environ)
    server = EmulatorServer(Emulator(api_key=key, api_secret=secret, knobs=knobs), host=args.host, port=args.port,
                            freezer=IdleFreezer())
    try:
        asyncio.run(_serve(server, from_env=from_env))
    except KeyboardInterrupt:  # a second Ctrl-C, or one before the handlers were installed
        pass
    except OSError as exc:
        raise ConfigError(Problem("--port", f"cannot listen on {args.host}:{args.port}: {exc.strerror}")) from None
    print("emulator stopped", file=sys.stderr)
    return 0
