"""Input asset ids remembered from an earlier session: checked once a session before a job uses them, and the
file uploaded again when the server no longer knows one (a new emulator, another key or project, a deleted
asset); a generate refused for an unknown input asset is sent once more with the new id. Never paid twice."""

from __future__ import annotations

import asyncio
import io
import json
import struct
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from pipeline.emulator import EmulatorServer
from pipeline.ledger.replay import JOURNAL_NAME, LedgerState, apply, read_events, uploads_when_sent
from pipeline.run.limit import Limit
from pipeline.run.outcome import RunSummary, summary_text
from pipeline.run.runner import RunOptions
from proxy import serve
from run_helpers import CLIP, body_key, check_consistent, run

Rule = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


@dataclass
class Spy:
    """A proxy before the emulator that counts every `METHOD path` asked; `rule` may answer a request itself."""

    target: str
    session: aiohttp.ClientSession
    rule: Rule | None = None
    paths: Counter[str] = field(default_factory=Counter)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.paths[f"{request.method} {request.path}"] += 1
        if self.rule is not None and (reply := await self.rule(request)) is not None:
            return reply
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        async with self.session.request(request.method, self.target + request.path_qs, data=io.BytesIO(body),
                                        headers=headers, allow_redirects=False) as answer:
            kept = {k: v for k, v in answer.headers.items() if k.lower() in ("content-type", "etag", "retry-after")}
            return web.Response(status=answer.status, body=await answer.read(), headers=kept)

    def asset_checks(self) -> Counter[str]:
        """`GET /v1/assets/{id}` asked, by asset id."""
        return Counter({path.split(" /v1/assets/")[1]: n for path, n in self.paths.items()
                        if path.startswith("GET /v1/assets/")})

    def generates(self) -> int:
        return sum(n for path, n in self.paths.items() if path.startswith("POST /v1/generate/"))


HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "keep-alive"}  # Host kept: part URLs come back


@pytest.fixture
async def spy_on() -> AsyncIterator[Callable[[EmulatorServer], Awaitable[Spy]]]:
    """`await spy_on(server)`: a Spy before that emulator (its URL: `spy.url`)."""
    runners: list[web.AppRunner] = []
    async with aiohttp.ClientSession() as session:
        async def start(server: EmulatorServer) -> Spy:
            spy = Spy(server.url, session)
            runner, spy.url = await serve(spy.handle, max_body_bytes=16 * 2**20)
            runners.append(runner)
            return spy

        try:
            yield start
        finally:
            for runner in runners:
                await runner.cleanup()


def two_inputs(folder: Path) -> tuple[Path, Path]:
    """A manifest of 2 videos x 2 prompts x 2 seeds (8 jobs; the first 4 over the sample clip) and its 2nd video."""
    other = folder / "other.mp4"
    other.write_bytes(CLIP.read_bytes() + struct.pack(">I", 8 + 1000) + b"free" + bytes(1000))
    manifest = folder / "re.yaml"
    manifest.write_text("\n".join(["name: re", "inputs:", "  video:", f"    - {CLIP}", f"    - {other}",
                                   "prompts: [a harbour at dawn, a harbour at dusk]", "seeds: {count: 2, from: 1}"])
                        + "\n")
    return manifest, other


async def run_at(url: str, manifest: Path, out: Path, *, limit: Limit | None = None) -> RunSummary:
    options = RunOptions(progress="off", limit=limit)
    summary = await asyncio.wait_for(run(manifest, SimpleNamespace(url=url), out,  # type: ignore[arg-type]
                                         options=options), 60)
    return summary


def uploads(run_dir: Path) -> Counter[str]:
    """Uploads journaled, by input file name."""
    return Counter(Path(e["path"]).name for e in read_events(run_dir / JOURNAL_NAME) if e.get("ev") == "upload")


def journaled(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    return [e for e in read_events(run_dir / JOURNAL_NAME) if e.get("ev") == kind]


@pytest.mark.parametrize(("sent_at", "asset_id"), [(5.0, "asset_1"), (15.0, "asset_2"), (25.0, "asset_3"),
                                                   (20.0, "asset_3"), (None, "asset_3")])
def test_a_job_record_names_the_asset_its_request_was_sent_with(sent_at: float | None, asset_id: str) -> None:
    """An input uploaded again (the server lost it) keeps, for the jobs sent before, the id they were sent with:
    results.json rebuilds each request from the ids as they were at its intent."""
    state = LedgerState(keep_specs=False)
    for t, uploaded in ((1.0, "asset_1"), (10.0, "asset_2"), (20.0, "asset_3")):
        apply(state, {"ev": "upload", "t": t, "sha256": "s1", "asset_id": uploaded, "path": "/a.mp4", "param": "video"})
    apply(state, {"ev": "upload", "t": 2.0, "sha256": "s2", "asset_id": "asset_b", "path": "/b.mp4", "param": "video"})
    if sent_at is not None:
        apply(state, {"ev": "intent", "t": sent_at, "key": "k", "attempt": 1})
    ids = uploads_when_sent(state, state.job("k"))
    assert (ids["s1"], ids["s2"]) == (asset_id, "asset_b") and state.uploads["s1"] == "asset_3"


async def test_a_resume_against_a_new_emulator_uploads_the_inputs_again(tmp_path: Path, emulator_factory) -> None:
    """`run --limit 3` then the same run without it, each with its own emulator (as `--emulator` does): the
    second does not know the asset uploaded by the first, so the file goes up again once, every job is
    downloaded, nothing is created twice; a third run asks the server nothing."""
    manifest, _ = two_inputs(tmp_path)
    first, second = await emulator_factory(seed=1), await emulator_factory(seed=2)  # `--emulator`: a seed each
    summary = await run_at(first.url, manifest, tmp_path / "out", limit=Limit.of(3, 8))
    assert summary.counts["downloaded"] == 3, summary_text(summary, resume_command="-")
    assert uploads(summary.run_dir) == {"clip.mp4": 1}
    summary = await run_at(second.url, manifest, tmp_path / "out")
    assert summary.exit_status == 0, summary_text(summary, resume_command="-")
    assert summary.counts["downloaded"] == 8
    assert uploads(summary.run_dir) == {"clip.mp4": 2, "other.mp4": 1}
    assert (first.emulator.stats()["uploads"], second.emulator.stats()["uploads"]) == (1, 2)
    created = [*await first.emulator.job_records(), *await second.emulator.job_records()]
    assert len(created) == 8 and len({body_key(r["body"]) for r in created}) == 8
    assert not journaled(summary.run_dir, "failed") and not journaled(summary.run_dir, "not-sent")
    results = json.loads((summary.run_dir / "results.json").read_text())
    assert all(job["status"] == "downloaded" for job in results["jobs"])
    asked = second.emulator.stats()["requests"]
    summary = await run_at(second.url, manifest, tmp_path / "out")
    assert summary.exit_status == 0 and second.emulator.stats()["requests"] == asked


async def test_a_resume_checks_each_remembered_input_once_and_uploads_nothing(tmp_path: Path, emulator,
                                                                             spy_on) -> None:
    """Against the same server, a resume asks `GET /v1/assets/{id}` once per remembered input that its jobs
    use (not once per job), before the first POST with it, and uploads nothing again."""
    manifest, _ = two_inputs(tmp_path)
    spy = await spy_on(emulator)
    summary = await run_at(spy.url, manifest, tmp_path / "out", limit=Limit.of(6, 8))  # both videos uploaded
    (clip, other) = [e["asset_id"] for e in journaled(summary.run_dir, "upload")]
    assert not spy.asset_checks()
    spy.paths.clear()
    summary = await run_at(spy.url, manifest, tmp_path / "out")
    assert summary.exit_status == 0 and summary.counts["downloaded"] == 8
    assert spy.asset_checks()[other] == 1 and spy.asset_checks()[clip] == 0  # clip's jobs were all sent before
    assert not [p for p in spy.paths if p.startswith(("POST /v1/uploads", "POST /v1/assets ", "PUT"))]
    assert uploads(summary.run_dir) == {"clip.mp4": 1, "other.mp4": 1}
    await check_consistent(summary.run_dir, emulator, expect_jobs=8)


def gone_answer(kind: str, asset_id: str) -> web.Response:
    """What the server may answer for an asset it no longer has for us."""
    if kind == "deleted":
        return web.json_response({"asset": {"id": asset_id, "status": "success", "deletedAt": "2026-01-01T00:00:00Z"}})
    if kind == "failed":
        return web.json_response({"asset": {"id": asset_id, "status": "error"}})
    status = {"forbidden": 403, "gone": 410}[kind]
    return web.json_response({"message": f"Asset {asset_id} is not available"}, status=status)


@pytest.mark.parametrize("kind", ["deleted", "failed", "forbidden", "gone"])
async def test_an_asset_shown_deleted_or_refused_is_uploaded_again(tmp_path: Path, emulator, spy_on,
                                                                   kind: str) -> None:
    """The check answers that the remembered asset is deleted (`deletedAt`), failed (`status: error`), or
    refuses it (403, 410): the file is uploaded again and the jobs are sent with the new id."""
    manifest, _ = two_inputs(tmp_path)
    spy = await spy_on(emulator)
    summary = await run_at(spy.url, manifest, tmp_path / "out", limit=Limit.of(2, 8))
    (stale,) = [e["asset_id"] for e in journaled(summary.run_dir, "upload")]

    async def rule(request: web.Request) -> web.StreamResponse | None:
        return gone_answer(kind, stale) if request.method == "GET" and request.path == f"/v1/assets/{stale}" else None

    spy.rule = rule
    summary = await run_at(spy.url, manifest, tmp_path / "out")
    assert summary.exit_status == 0, summary_text(summary, resume_command="-")
    assert uploads(summary.run_dir) == {"clip.mp4": 2, "other.mp4": 1} and spy.asset_checks()[stale] == 1
    results = await check_consistent(summary.run_dir, emulator, expect_jobs=8)
    assert sum(job["request"]["video"] == stale for job in results["jobs"]) == 2  # only the first run's


async def test_a_generate_refused_for_an_unknown_input_asset_uploads_it_and_sends_again(tmp_path: Path, emulator,
                                                                                       spy_on) -> None:
    """The check says the remembered asset is there, but the POSTs are refused (400) naming it: one more check
    finds it gone, the file is uploaded again once, and each refused job is sent once more with the new id
    (a 400 made no job: nothing is paid twice); no job fails."""
    manifest, _ = two_inputs(tmp_path)
    spy = await spy_on(emulator)
    summary = await run_at(spy.url, manifest, tmp_path / "out", limit=Limit.of(1, 8))
    (stale,) = [e["asset_id"] for e in journaled(summary.run_dir, "upload")]
    checks = 0

    async def rule(request: web.Request) -> web.StreamResponse | None:
        nonlocal checks
        if request.method == "GET" and request.path == f"/v1/assets/{stale}":
            checks += 1
            if checks == 1:  # the first check: still there (it goes just after)
                return web.json_response({"asset": {"id": stale, "status": "success"}})
            return web.json_response({"message": f"Asset not found: {stale}"}, status=404)
        if request.method == "POST" and request.path.startswith("/v1/generate/"):
            if json.loads(await request.read()).get("video") == stale:
                return web.json_response({"error": f"Invalid parameters: video: asset {stale!r} not found"}, status=400)
        return None

    spy.rule = rule
    summary = await run_at(spy.url, manifest, tmp_path / "out")
    assert summary.exit_status == 0, summary_text(summary, resume_command="-")
    assert uploads(summary.run_dir) == {"clip.mp4": 2, "other.mp4": 1}
    assert checks == 2  # once before the first POST, once again after the first refusal: not once per job
    refused = journaled(summary.run_dir, "not-sent")
    assert 1 <= len(refused) <= 3 and all(stale in e["error"] for e in refused)  # clip's 3 jobs left, at most
    results = await check_consistent(summary.run_dir, emulator, expect_jobs=8)
    assert all(job["status"] == "downloaded" for job in results["jobs"])


async def test_a_refusal_naming_an_input_asset_that_is_there_fails_the_job_as_before(tmp_path: Path, emulator,
                                                                                    spy_on) -> None:
    """A POST refused (400) naming an input asset the server still has (too long, wrong kind...): the asset is
    checked again once for all such jobs, nothing is uploaded again, and those jobs fail with the message."""
    manifest, _ = two_inputs(tmp_path)
    spy = await spy_on(emulator)
    summary = await run_at(spy.url, manifest, tmp_path / "out", limit=Limit.of(1, 8))
    (asset,) = [e["asset_id"] for e in journaled(summary.run_dir, "upload")]

    async def rule(request: web.Request) -> web.StreamResponse | None:
        if request.method == "POST" and request.path.startswith("/v1/generate/"):
            if json.loads(await request.read()).get("video") == asset:
                return web.json_response({"error": f"video: asset {asset!r} is longer than maxDuration"}, status=400)
        return None

    spy.rule = rule
    summary = await run_at(spy.url, manifest, tmp_path / "out")
    assert summary.exit_status == 1
    assert summary.counts["failed"] == 3 and summary.counts["downloaded"] == 5
    assert uploads(summary.run_dir) == {"clip.mp4": 1, "other.mp4": 1}
    assert spy.asset_checks()[asset] == 2  # before the first POST, and once again after the first refusal
    assert all("maxDuration" in error for _, _, error in summary.failures)
    assert [e["reason"] for e in journaled(summary.run_dir, "failed")] == ["rejected"] * 3
