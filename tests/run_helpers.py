"""Helpers for end-to-end tests of `run`: small manifests, fast settings, and consistency checks."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.config import Credentials, Settings, load_settings
from pipeline.emulator import EMULATOR_API_KEY, EMULATOR_API_SECRET, EmulatorServer
from pipeline.ledger.replay import JOURNAL_NAME, read_events, replay
from pipeline.manifest.load import load_manifest
from pipeline.run.runner import RunOptions, RunSummary, run_manifest

CLIP = Path(__file__).resolve().parent.parent / "samples" / "clip.mp4"
CREDENTIALS = Credentials(EMULATOR_API_KEY, EMULATOR_API_SECRET)

FAST: dict[str, Any] = {
    "max_requests_per_s": 200.0, "max_in_flight_jobs": 16, "poll_first_delay_s": 0.1,
    "poll_min_interval_s": 0.05, "poll_max_interval_s": 0.5, "feed_interval_s": 0.05, "feed_overlap_s": 0.05,
    "download_workers": 4,
    "backoff_base_s": 0.02, "backoff_max_s": 0.2, "max_retries": 12, "shutdown_grace_s": 2.0,
    "request_timeout_s": 10.0, "connect_timeout_s": 2.0, "download_timeout_s": 20.0, "reconcile_settle_s": 1.0,
}
"""Settings for tests: tiny poll intervals and backoffs, a high rate limit (speed from configuration)."""


def write_manifest(folder: Path, *, prompts: int = 2, seeds: int = 2, name: str = "t",
                   extra: str = "") -> Path:
    """A manifest of prompts x 2 strengths x seeds jobs over the sample clip."""
    lines = [f"name: {name}", "inputs:", f"  video: {CLIP}", "prompts:"]
    lines += [f"  - prompt number {i}" for i in range(prompts)]
    lines += ["sweep:", "  videoStrength: [0.5, 1.0]", f"seeds: {{count: {seeds}, from: 7}}", extra]
    path = folder / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def settings_for(server: EmulatorServer, out: Path, **overrides: Any) -> Settings:
    return load_settings(overrides={**FAST, "api_base_url": server.url, "output_dir": str(out), **overrides},
                         environ={})


async def run(manifest_path: Path, server: EmulatorServer, out: Path, *,
              credentials: Credentials = CREDENTIALS, options: RunOptions | None = None,
              **overrides: Any) -> RunSummary:
    """Run a manifest in-process against the emulator, no progress display."""
    manifest = load_manifest(manifest_path)
    settings = settings_for(server, out, **overrides)
    return await run_manifest(manifest, settings, credentials, out / manifest.name,
                              options or RunOptions(progress="off"))


def body_key(body: dict[str, Any]) -> str:
    """What makes two generate requests the same job: the body without nothing removed, canonically."""
    return json.dumps(body, sort_keys=True)


async def check_consistent(run_dir: Path, server: EmulatorServer, *, expect_jobs: int,
                           allow_unknown: bool = False) -> dict[str, Any]:
    """No job paid twice, every file present and identical to what the emulator served, no .part left,
    results.json agreeing with the journal. Returns the parsed results."""
    records = await server.emulator.job_records()
    created = Counter(body_key(r["body"]) for r in records)
    state = replay(run_dir / JOURNAL_NAME)
    unknown = {k for k, j in state.jobs.items() if j.state == "unknown"}
    duplicates = {b: n for b, n in created.items() if n > 1}
    if not allow_unknown:
        assert not duplicates, f"jobs created more than once: {duplicates}"
    by_job_id = {r["jobId"]: r for r in records}
    results = json.loads((run_dir / "results.json").read_text())
    assert len(results["jobs"]) == expect_jobs
    for job in results["jobs"]:
        journal_job = state.jobs.get(job["key"])
        assert job["status"] == (journal_job.state if journal_job else "pending")
        if job["status"] != "downloaded":
            continue
        served = by_job_id[job["job_id"]]
        assert served["body"] == job["request"]
        assert len(job["files"]) == 1
        file = job["files"][0]
        data = (run_dir / file["path"]).read_bytes()
        assert len(data) == file["bytes"] == served["outputSize"]
        assert hashlib.sha256(data).hexdigest() == file["sha256"] == served["outputSha256"]
    assert not list(run_dir.rglob("*.part")), "partial files left behind"
    if not allow_unknown:
        assert not unknown
    return results


def ever_unknown(journal: Path) -> set[str]:
    """Keys that were left with an intent and no answer at the end of some session (a lost POST)."""
    last: dict[str, str] = {}
    unknown: set[str] = set()

    def close_session() -> None:
        unknown.update(k for k, kind in last.items() if kind in ("intent", "answer-lost"))

    for event in read_events(journal):
        if event.get("ev") == "run":
            close_session()
        elif "key" in event:
            last[event["key"]] = event["ev"]
    close_session()
    return unknown


def audit_creations(journal: Path, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Hold the emulator's created jobs against the journal: every job created had a journaled intent, every
    extra creation of a body follows a `reset` the user asked for (--retry-failed / --resubmit-unknown), and a
    body with more than one job that did not fail on the server (paid twice) was reported unknown.
    Returns the figures: created, distinct bodies, paid twice, ever unknown."""
    events = list(read_events(journal))
    key_of = {body_key(e["request"]): e["key"] for e in events if e.get("ev") == "intent"}
    resets = Counter(e["key"] for e in events if e.get("ev") == "reset")
    created = Counter(body_key(r["body"]) for r in records)
    not_failed = Counter(body_key(r["body"]) for r in records if r["status"] != "failure")
    unknown = ever_unknown(journal)
    orphans = [b for b in created if b not in key_of]
    assert not orphans, f"{len(orphans)} job(s) created without a journaled intent"
    unexplained = {key_of[b]: n for b, n in created.items() if n > 1 + resets[key_of[b]]}
    assert not unexplained, f"jobs created more often than the user asked for: {unexplained}"
    paid_twice = {key_of[b] for b, n in not_failed.items() if n > 1}
    assert paid_twice <= unknown, f"paid twice without being reported unknown: {sorted(paid_twice - unknown)}"
    return {"created": len(records), "bodies": len(created), "paid_twice": len(paid_twice),
            "ever_unknown": len(unknown), "resets": sum(resets.values())}
