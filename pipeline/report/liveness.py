"""Whether the process that wrote a journal still runs (for `status`): /proc start times guard against reused pids."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.ledger.replay import LedgerState

PID_CLOCK_SLACK_S = 2.0  # /proc start times are rounded to clock ticks and boot time to seconds


def run_activity(state: LedgerState, pid: int | None, started: float) -> str:
    """not started | running | finished | stopped | interrupted (the journal's last session, and its pid)."""
    if not state.runs:
        return "not started"
    if state.ended:
        return "stopped" if state.stopped else "finished"
    return "running" if pid is not None and alive(pid, started) else "interrupted"


def alive(pid: int, started: float) -> bool:
    """Whether the process that wrote the session's `run` event at `started` still runs on this machine.

    A process with that id must exist and (where /proc tells) have started before the event: after a crash
    and a reboot, the id may belong to another program.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        pass
    born = process_start(pid)
    return born is None or born <= started + PID_CLOCK_SLACK_S


def process_start(pid: int) -> float | None:
    """When a process started (epoch seconds), from /proc on Linux; None where that cannot be told."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
