"""Shared pieces of the benchmark scripts: the machine line, the emulator as a separate process, the client
as a separate process (peak RSS via os.wait4), manifests, and table printing.

Every request goes to 127.0.0.1; every wait is bounded by a deadline.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "samples" / "clip.mp4"
KEY, SECRET = "bench-key", "bench-secret"
EMULATOR_START_TIMEOUT_S = 20.0
CLIENT_TIMEOUT_S = 3600.0


def machine() -> str:
    """One line naming the machine: cores, memory, Python, OS."""
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gib = float("nan")
    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    except OSError:
        pass
    return (f"machine: {os.cpu_count()} cores{' (' + cpu + ')' if cpu else ''}, {mem_gib:.0f} GiB, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stats(port: int) -> dict[str, Any]:
    """The emulator's counters (`GET /_emulator/stats`)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_emulator/stats", timeout=5) as answer:
        return json.load(answer)


def api_requests(figures: Mapping[str, Any]) -> int:
    """API requests the emulator received (CDN downloads are not API calls)."""
    return sum(n for route, n in figures["requests"].items() if "/_cdn" not in route)


@dataclass(frozen=True, slots=True)
class EmulatorProcess:
    """A running `ltx-batch emulator` process: its port and pid."""

    port: int
    pid: int

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the emulator has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mib(self) -> float:
        """The emulator's peak resident memory so far (Linux /proc VmHWM)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc status")

    def stats(self) -> dict[str, Any]:
        return stats(self.port)


LAUNCH = Path(__file__).resolve().parent / "launch.py"


def launch(*, fsync_delay_ms: float = 0.0, no_gc: bool = False, count_fsyncs: Path | None = None,
           gc_stats: Path | None = None) -> tuple[str, ...]:
    """Interpreter arguments that run the module under an experimental condition (see launch.py)."""
    flags = [*(["--fsync-delay-ms", str(fsync_delay_ms)] if fsync_delay_ms else []),
             *(["--no-gc"] if no_gc else []), *(["--count-fsyncs", str(count_fsyncs)] if count_fsyncs else []),
             *(["--gc-stats", str(gc_stats)] if gc_stats else [])]
    return (str(LAUNCH), *flags) if flags else ()


def longest_gc_pause_ms(gc_stats: Path) -> float | None:
    """The longest collection the program did not ask for, from a `launch(gc_stats=...)` file."""
    if not gc_stats.exists():
        return None
    pauses = json.loads(gc_stats.read_text())
    return max((p["max_ms"] for generation, p in pauses.items() if generation != "explicit"), default=None)


@contextmanager
def emulator(*, python: Sequence[str] = (), **knobs: object) -> Iterator[EmulatorProcess]:
    """`ltx-batch emulator` in its own process on a free loopback port, with these knobs.

    `python` adds interpreter arguments before `-m pipeline` (e.g. `launch(no_gc=True)`)."""
    port = free_port()
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in knobs.items()]
    env = {**os.environ, "SCENARIO_API_KEY": KEY, "SCENARIO_API_SECRET": SECRET}
    process = subprocess.Popen([sys.executable, *python, "-m", "pipeline", "emulator", "--host", "127.0.0.1",
                                "--port", str(port), *flags],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + EMULATOR_START_TIMEOUT_S
        while True:
            try:
                stats(port)
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("the emulator did not start") from None
                time.sleep(0.1)
        yield EmulatorProcess(port, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def seed_manifest(folder: Path, jobs: int, *, name: str | None = None) -> Path:
    """A manifest of `jobs` jobs: one prompt over the sample clip, seeds 0..jobs-1."""
    name = name or f"bench{jobs}"
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\ninputs: {{video: {CLIP}}}\nprompts: [A benchmark landscape]\n"
                    f"seeds: {{count: {jobs}, from: 0}}\n")
    return path


@dataclass(frozen=True, slots=True)
class ClientRun:
    """One `ltx-batch run` process: exit status, wall time, peak RSS and CPU seconds (user + system)."""

    exit_status: int
    wall_s: float
    peak_rss_mib: float
    cpu_s: float
    stderr: str


def client_env(**settings: object) -> dict[str, str]:
    """The environment of a client process: bench credentials and `LTX_BATCH_<NAME>` settings only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LTX_BATCH_", "SCENARIO_"))}
    env.update({"SCENARIO_API_KEY": KEY, "SCENARIO_API_SECRET": SECRET})
    env.update({f"LTX_BATCH_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def run_process(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path = ROOT,
                timeout_s: float = CLIENT_TIMEOUT_S) -> ClientRun:
    """Run `argv` to completion (killed after `timeout_s`); its own peak RSS and CPU time via os.wait4."""
    started = time.monotonic()
    with open(os.devnull, "wb") as devnull, _temp_text() as errors:
        process = subprocess.Popen(list(argv), cwd=cwd, env=dict(env) if env is not None else None,
                                   stdout=devnull, stderr=errors)
        deadline = started + timeout_s
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                _, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.01)
        wall = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        text = errors.read().decode(errors="replace")
    return ClientRun(process.returncode, wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, text[-4000:])


@contextmanager
def _temp_text() -> Iterator[Any]:
    import tempfile

    with tempfile.TemporaryFile() as handle:
        yield handle


def run_client(manifest: Path, port: int, out: Path, *, rate: float, in_flight: int, downloaders: int = 4,
               settings: Mapping[str, object] | None = None, python: Sequence[str] = (),
               extra: Sequence[str] = (), tree: Path = ROOT) -> ClientRun:
    """`ltx-batch run MANIFEST` in its own process against the emulator on `port` (no report, quiet).

    `python` adds interpreter arguments before `-m pipeline` (e.g. `-m cProfile -o FILE`); `tree` is the
    source tree whose `pipeline` package runs (see `source_tree`)."""
    argv = [sys.executable, *python, "-m", "pipeline", "run", str(manifest), "--api-url", f"http://127.0.0.1:{port}",
            "--out", str(out), "--rate", str(rate), "--max-in-flight", str(in_flight),
            "--downloaders", str(downloaders), "--no-report", "-q", *extra]
    result = run_process(argv, env=client_env(**(settings or {})), cwd=tree)
    if result.exit_status != 0:
        sys.stderr.write(f"client exited {result.exit_status}:\n{result.stderr}\n")
    return result


@contextmanager
def source_tree(ref: str | None, revert: Sequence[str] = ()) -> Iterator[Path]:
    """The working tree (ref None) or the `pipeline/` package of git `ref` extracted to a temporary folder
    (`git archive`, no change to the repository), for before/after figures measured in one run.

    A process started with `cwd` there and `-m pipeline` imports that copy (the current directory comes
    first on sys.path, before the editable install). `revert` lists commits whose `pipeline/` changes are
    undone in the copy (e.g. ref HEAD, revert [X]: today's code without change X)."""
    if ref is None:
        yield ROOT
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ltx-bench-tree-") as folder:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "pipeline"], check=True,
                                 capture_output=True, timeout=60).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True, timeout=60)
        for commit in revert:
            undo = subprocess.run(["git", "-C", str(ROOT), "diff", commit, f"{commit}^", "--", "pipeline"],
                                  check=True, capture_output=True, timeout=60).stdout
            subprocess.run(["git", "apply"], input=undo, cwd=folder, check=True, timeout=60)
        yield Path(folder)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A plain-text table, numbers right-aligned."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    numeric = [all(_is_number(row.get(c)) for row in rows) for c in columns]
    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric)).rstrip()
    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) or value is None


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
