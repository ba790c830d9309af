"""Shared pieces of the reliability suite: short/full sizing, distinctive credentials and the secret scan,
the CLI as a subprocess, the accounting checks every scenario ends with, and the figures it measures."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Credentials
from pipeline.emulator import EmulatorServer
from pipeline.ledger.replay import JOURNAL_NAME, STATES, replay
from run_helpers import FAST, check_consistent

FULL = os.environ.get("LTX_RELIABILITY", "").strip().lower() == "full"
"""`LTX_RELIABILITY=full pytest tests/reliability` runs the long versions; the normal suite the short ones."""

REPO = Path(__file__).resolve().parents[2]

API_KEY = "rk_live-Q7xT2mZp9W4vLk3N"
API_SECRET = "rs_8HfJ2dK5sQ1wE6rT9yU0iO3pA7zX"
CREDENTIALS = Credentials(API_KEY, API_SECRET)
BASIC_TOKEN = base64.b64encode(f"{API_KEY}:{API_SECRET}".encode()).decode()
NEEDLES: tuple[str, ...] = (API_KEY, API_SECRET, BASIC_TOKEN)
"""What must never appear in a file the tool wrote or in anything it printed."""


def scaled(short: Any, full: Any) -> Any:
    """`full` under LTX_RELIABILITY=full, else `short`."""
    return full if FULL else short


def secret_hits(text: str | bytes, where: str) -> list[str]:
    """`where: <needle kind>` for each secret found in `text`."""
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    names = ("api key", "api secret", "Basic token")
    return [f"{where}: {name}" for name, needle in zip(names, NEEDLES, strict=True) if needle.encode() in data]


def assert_no_secrets(*, trees: Iterable[Path] = (), texts: Mapping[str, str | bytes] | None = None) -> int:
    """No secret in any file under `trees` (recursively) nor in `texts`; returns how many files were scanned."""
    hits: list[str] = []
    scanned = 0
    for tree in trees:
        for path in sorted(tree.rglob("*")):
            if path.is_file() and not path.is_symlink():
                scanned += 1
                hits += secret_hits(path.read_bytes(), str(path))
    for where, text in (texts or {}).items():
        hits += secret_hits(text, where)
    assert not hits, f"secrets leaked: {hits}"
    return scanned


def cli_env(server_url: str | None, **settings: Any) -> dict[str, str]:
    """The environment of a CLI subprocess: no inherited LTX_BATCH_/SCENARIO_ variables, the fast test settings
    (overridable), the distinctive credentials, and the emulator's URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LTX_BATCH_", "SCENARIO_"))}
    env.update({f"LTX_BATCH_{k.upper()}": str(v) for k, v in {**FAST, **settings}.items()})
    env.update({"SCENARIO_API_KEY": API_KEY, "SCENARIO_API_SECRET": API_SECRET, "PYTHONPATH": str(REPO)})
    if server_url is not None:
        env["SCENARIO_API_URL"] = server_url
    return env


@dataclass(slots=True)
class CliResult:
    """One finished CLI process."""

    returncode: int
    stdout: str
    stderr: str
    wall_s: float


async def start_cli(*args: str, env: Mapping[str, str], cwd: Path) -> asyncio.subprocess.Process:
    """`python -m pipeline ARGS` with pipes for stdout and stderr."""
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "pipeline", *args, env=dict(env), cwd=cwd,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def run_cli(*args: str, env: Mapping[str, str], cwd: Path, timeout_s: float) -> CliResult:
    """Run the CLI to its end (killed and failed after `timeout_s`)."""
    started = time.monotonic()
    process = await start_cli(*args, env=env, cwd=cwd)
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=timeout_s)
    except TimeoutError:
        process.kill()
        stdout, stderr = await process.communicate()
        raise AssertionError(f"ltx-batch {' '.join(args[:2])} still running after {timeout_s}s:\n"
                             f"{stderr.decode(errors='replace')[-3000:]}") from None
    assert process.returncode is not None
    return CliResult(process.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace"),
                     time.monotonic() - started)


@dataclass(slots=True)
class Session:
    """One CLI process that was either left to finish or SIGKILLed."""

    returncode: int
    killed: bool
    output: bytes  # stdout then stderr


async def run_or_kill(*args: str, env: Mapping[str, str], cwd: Path, kill_after_s: float) -> Session:
    """Run the CLI and SIGKILL it after `kill_after_s` unless it ended first; its output is read all along
    (so a full pipe never stalls it) and kept whole."""
    process = await start_cli(*args, env=env, cwd=cwd)
    sinks = (bytearray(), bytearray())

    async def drain(stream: asyncio.StreamReader | None, sink: bytearray) -> None:
        while stream is not None and (chunk := await stream.read(65536)):
            sink += chunk

    readers = [asyncio.create_task(drain(s, b)) for s, b in zip((process.stdout, process.stderr), sinks)]
    killed = False
    try:
        await asyncio.wait_for(process.wait(), timeout=kill_after_s)
    except TimeoutError:
        process.kill()
        killed = True
        await process.wait()
    await asyncio.gather(*readers)
    assert process.returncode is not None
    return Session(process.returncode, killed, bytes(sinks[0] + sinks[1]))


def assert_no_traceback(text: str, where: str) -> None:
    assert "Traceback" not in text, f"{where} printed a traceback:\n{text[-4000:]}"


def check_accounting(run_dir: Path) -> dict[str, Any]:
    """results.json lists every job of the manifest with a known state, its counts add up and match the
    journal, every recorded file is on disk with its size and sha256, and no `.part` file is counted.
    Returns the results."""
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    run, jobs = results["run"], results["jobs"]
    in_manifest = [j for j in jobs if j["in_manifest"]]
    assert len(in_manifest) == run["job_count"]
    assert all(j["status"] in STATES for j in jobs)
    by_status = Counter(j["status"] for j in in_manifest)
    assert {s: by_status.get(s, 0) for s in STATES} == run["counts"]
    assert sum(run["counts"].values()) == run["job_count"]
    state = replay(run_dir / JOURNAL_NAME)
    for job in jobs:
        journal_job = state.jobs.get(job["key"])
        assert job["status"] == (journal_job.state if journal_job else "pending"), job["key"]
        for file in job["files"]:
            assert not file["path"].endswith(".part")
            data = (run_dir / file["path"]).read_bytes()
            assert len(data) == file["bytes"] and hashlib.sha256(data).hexdigest() == file["sha256"], file["path"]
    return results


async def check_complete(run_dir: Path, server: EmulatorServer, *, expect_jobs: int) -> dict[str, Any]:
    """Every job downloaded with the bytes the emulator served, accounting consistent, no `.part` left."""
    results = await check_consistent(run_dir, server, expect_jobs=expect_jobs, allow_unknown=True)
    check_accounting(run_dir)
    assert all(j["status"] == "downloaded" for j in results["jobs"]), Counter(j["status"] for j in results["jobs"])
    return results


def poll_modes(run_dir: Path) -> dict[str, int]:
    """How the sessions watched their jobs, from the journal's poll-mode events: `setting: mode` counted
    (`auto: feed` for a session that followed the listing, `auto: per-job` for a fall-back, with its reason)."""
    counts: Counter[str] = Counter()
    with open(run_dir / JOURNAL_NAME, encoding="utf-8") as journal:
        for line in journal:
            if '"poll-mode"' in line:
                try:
                    event = json.loads(line)
                except ValueError:  # a torn last line (a kill mid-write)
                    continue
                why = f" ({event['why']})" if event.get("why") else ""
                counts[f"{event.get('setting')}: {event.get('mode')}{why}"] += 1
    return dict(counts)


def record_figures(name: str, **figures: Any) -> None:
    """Append one scenario's measurements to $LTX_RELIABILITY_FIGURES (JSON lines), when that is set."""
    target = os.environ.get("LTX_RELIABILITY_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"scenario": name, "full": FULL, **figures}) + "\n")
