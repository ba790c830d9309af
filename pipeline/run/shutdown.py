"""Ctrl-C and SIGTERM: the first halts the run gracefully (requests under way finish, within a grace time),
a second one cancels at once. Any halt (a signal, credentials refused, the disk unwritable) gets the same
grace time: the run ends within it whatever it was waiting for."""

from __future__ import annotations

import asyncio
import logging
import signal

from pipeline.run.context import RunContext

log = logging.getLogger("pipeline.run.runner")


def install_signals(loop: asyncio.AbstractEventLoop, ctx: RunContext, stages: asyncio.Task[None]) -> list[int]:
    """Route SIGINT/SIGTERM to a staged shutdown of `stages`; returns the signals installed."""
    received = 0

    def on_signal(signum: int) -> None:
        nonlocal received
        received += 1
        if received == 1:
            log.warning("%s: stopping (no new submissions; running downloads get %.0fs); press again to quit now",
                        signal.Signals(signum).name, ctx.settings.shutdown_grace_s)
            ctx.stop.halt("interrupted", "interrupted")  # `grace_after_halt` gives the stages their grace time
        else:
            log.warning("second signal: quitting now")
            stages.cancel()

    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            pass
    return installed


def remove_signals(loop: asyncio.AbstractEventLoop, installed: list[int]) -> None:
    for signum in installed:
        loop.remove_signal_handler(signum)


async def grace_after_halt(ctx: RunContext, stages: asyncio.Task[None]) -> None:
    """Once the run halts, the stages wind down by themselves (requests under way finish); cut them off
    `shutdown_grace_s` later if they have not."""
    await ctx.stop.halted.wait()
    log.info("stopping (%s): what is under way gets %.0fs to finish", ctx.stop.reason, ctx.settings.shutdown_grace_s)
    try:
        await asyncio.wait_for(asyncio.shield(stages), timeout=ctx.settings.shutdown_grace_s)
    except TimeoutError:
        stages.cancel()
    except asyncio.CancelledError:
        stages.cancel()
        raise
    except Exception:  # noqa: BLE001 - the stages' own error surfaces where they are awaited
        pass
