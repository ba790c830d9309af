"""`status --server`: the journal held against the account's job listing, changing nothing."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import aiohttp

from pipeline.api.client import basic_auth
from pipeline.emulator import EMULATOR_API_KEY, EMULATOR_API_SECRET
from pipeline.ledger.replay import JOURNAL_NAME, replay
from pipeline.manifest.load import load_manifest
from pipeline.run.runner import RunOptions
from run_helpers import CREDENTIALS, FAST, run, write_manifest


async def _status(run_dir: Path, url: str, *flags: str, credentials: bool = True) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LTX_BATCH_", "SCENARIO_"))}
    env.update({f"LTX_BATCH_{k.upper()}": str(v) for k, v in FAST.items()})
    env["SCENARIO_API_URL"] = url
    if credentials:
        env.update({"SCENARIO_API_KEY": EMULATOR_API_KEY, "SCENARIO_API_SECRET": EMULATOR_API_SECRET})
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "pipeline", "status", str(run_dir), *flags,
                                                   env=env, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_status_server_tells_which_unknown_jobs_exist_and_which_server_jobs_it_does_not_know(
        tmp_path: Path, emulator_factory) -> None:
    """Lost answers the run could not reconcile (listing refused) and a pending job made by hand outside the run:
    with the listing allowed, --server says the unknown ones exist and names the untracked one; the journal is
    not touched."""
    server = await emulator_factory(fault_lost_response_rate=1.0, list_jobs_refused=403, credits_jobs=2)
    manifest_path = write_manifest(tmp_path, prompts=1, seeds=2)  # 4 jobs: 2 sent (answers lost), then 402
    summary = await run(manifest_path, server, tmp_path / "out", max_in_flight_jobs=1,
                        options=RunOptions(progress="off", manifest_path=str(manifest_path)))
    assert len(summary.unknown) == 2 and summary.counts["pending"] == 2
    state = replay(summary.run_dir / JOURNAL_NAME)
    pending = next(spec for spec in load_manifest(manifest_path).jobs() if spec.key not in state.jobs
                   or state.jobs[spec.key].state == "pending")
    server.emulator.configure(list_jobs_refused=None, credits_jobs=None, fault_lost_response_rate=0.0)
    async with aiohttp.ClientSession() as http:  # another tool sends one of the pending jobs
        async with http.post(f"{server.url}/v1/generate/custom/{pending.model}", json=pending.body(state.uploads),
                             headers={"Authorization": basic_auth(CREDENTIALS)}) as resp:
            assert resp.status == 200
            made = (await resp.json())["job"]["jobId"]
    events = (summary.run_dir / JOURNAL_NAME).read_bytes()
    code, out, err = await _status(summary.run_dir, server.url, "--server")
    assert code == 0, err
    assert "2 unknown job(s) exist on the server" in out and "nothing was changed" in out
    assert "1 server job(s) match jobs of the manifest" in out and made in out
    code, out, err = await _status(summary.run_dir, server.url, "--server", "--json")
    data = json.loads(out)
    assert len(data["server"]["unknown_found"]) == 2 and data["server"]["untracked"] == [[made, pending.key]]
    assert (summary.run_dir / JOURNAL_NAME).read_bytes() == events  # nothing changed


async def test_status_server_without_credentials_is_a_clear_error(tmp_path: Path, emulator) -> None:
    """--server needs the API key: exit 2 with the variables to set, no traceback."""
    summary = await run(write_manifest(tmp_path, prompts=1, seeds=1), emulator, tmp_path / "out")
    code, out, err = await _status(summary.run_dir, emulator.url, "--server", credentials=False)
    assert code == 2 and "SCENARIO_API_KEY" in err and "Traceback" not in err
