"""A hostile server: answers the emulator cannot give (not JSON, the wrong shape, > 4 MiB, JSON nested a million
deep, odd ids, dates, numbers and statuses). Always a clear error or a recorded job outcome, never a traceback,
never a file outside the run folder, never the credentials sent to the CDN."""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from helpers import (
    API_KEY,
    CREDENTIALS,
    assert_no_secrets,
    assert_no_traceback,
    check_accounting,
    cli_env,
    record_figures,
    run_cli,
    start_cli,
)

from pipeline.errors import PipelineError
from pipeline.ledger.replay import JOURNAL_NAME, replay
from pipeline.run.runner import summary_text
from run_helpers import run, write_manifest

Reply = Callable[[web.Request, "Hostile"], web.StreamResponse | None]
"""A scenario's answer for one route; None means the sane answer."""

HUGE = 5 * 2**20  # over api.MAX_API_BODY_BYTES (4 MiB)
ODD_STATUSES = ["BANANA", "", "Succeeded?", "  "]
DEEP = "[" * 1_000_000 + "]" * 1_000_000  # 2 MB of JSON nested a million deep
HOSTILE_SETTINGS: dict[str, Any] = {"max_retries": 2, "backoff_max_s": 0.05, "request_timeout_s": 5.0,
                                    "download_timeout_s": 1.0, "poll_first_delay_s": 0.02, "poll_max_interval_s": 0.1}


def text(body: str, status: int = 200, content_type: str = "application/json") -> web.Response:
    return web.Response(status=status, text=body, content_type=content_type)


def html(status: int = 200) -> web.Response:
    return text("<html><body><h1>Just a moment...</h1></body></html>", status, "text/html")


def job_json(job_id: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"jobId": job_id, "status": status, **extra}


def success(job_id: str, **extra: Any) -> web.Response:
    job = job_json(job_id, "success", metadata={"assetIds": [f"asset_out_{job_id}"]}, **extra)
    return web.json_response({"job": job})


@dataclass
class Hostile:
    """The server's state and what each route does in this scenario."""

    upload: Reply | None = None  # POST /v1/uploads (the manifest's input is a video: the multipart flow)
    upload_action: Reply | None = None
    upload_status: Reply | None = None
    part: Reply | None = None
    generate: Reply | None = None
    job: Reply | None = None
    asset: Reply | None = None
    cdn: Reply | None = None
    base_url: str = ""
    created: int = 0
    polls: Counter[str] = field(default_factory=Counter)
    cdn_auth_headers: int = 0
    cdn_requests: int = 0
    part_auth_headers: int = 0
    parts_put: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/uploads", self._upload)
        app.router.add_post("/v1/uploads/{upload_id}/action", self._upload_action)
        app.router.add_get("/v1/uploads/{upload_id}", self._upload_status)
        app.router.add_put("/storage/{upload_id}/{number}", self._part)
        app.router.add_post("/v1/generate/custom/{model}", self._generate)
        app.router.add_get("/v1/jobs/{job_id}", self._job)
        app.router.add_get("/v1/assets/{asset_id}", self._asset)
        app.router.add_get("/cdn/{asset_id}", self._cdn)
        return app

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        parts = (await request.json())["parts"]
        urls = [{"number": n, "url": f"{self.base_url}/storage/upload_in/{n}?X-Amz-Signature=s", "expires": "-"}
                for n in range(1, parts + 1)]
        sane = web.json_response({"upload": {"id": "upload_in", "status": "pending", "parts": urls}})
        return (self.upload and self.upload(request, self)) or sane

    async def _upload_action(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        sane = web.json_response({"upload": {"id": "upload_in", "status": "validating", "entityId": None}})
        return (self.upload_action and self.upload_action(request, self)) or sane

    async def _upload_status(self, request: web.Request) -> web.StreamResponse:
        sane = web.json_response({"upload": {"id": "upload_in", "status": "imported", "entityId": "asset_in"}})
        return (self.upload_status and self.upload_status(request, self)) or sane

    async def _part(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.parts_put += 1
        self.part_auth_headers += "Authorization" in request.headers
        return (self.part and self.part(request, self)) or web.Response()

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.created += 1
        sane = web.json_response({"job": job_json(f"job_{self.created}", "queued")})
        return (self.generate and self.generate(request, self)) or sane

    async def _job(self, request: web.Request) -> web.StreamResponse:
        job_id = request.match_info["job_id"]
        self.polls[job_id] += 1
        return (self.job and self.job(request, self)) or success(job_id)

    async def _asset(self, request: web.Request) -> web.StreamResponse:
        asset_id = request.match_info["asset_id"]
        sane = web.json_response({"asset": {"id": asset_id, "url": f"{self.base_url}/cdn/{asset_id}?sig=1"}})
        return (self.asset and self.asset(request, self)) or sane

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        self.cdn_requests += 1
        self.cdn_auth_headers += "Authorization" in request.headers
        sane = web.Response(body=b"\0\0\0\x18ftypmp42 video of " + request.match_info["asset_id"].encode(),
                            content_type="video/mp4")
        return (self.cdn and self.cdn(request, self)) or sane


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    hostile: Callable[[], Hostile]
    expect: str  # "error": a clean PipelineError; or the first run's outcome: "ok", "unknown", "failed"


def job_id_of(request: web.Request) -> str:
    return request.match_info["job_id"]


SCENARIOS = [
    # an input that cannot be uploaded fails the jobs that need it, with the reason; the run goes on
    Scenario("upload-html", lambda: Hostile(upload=lambda r, h: html()), "failed"),
    Scenario("upload-huge", lambda: Hostile(upload=lambda r, h: text(" " * HUGE)), "failed"),
    Scenario("upload-deep-json", lambda: Hostile(upload=lambda r, h: text(DEEP)), "failed"),
    Scenario("upload-wrong-shape", lambda: Hostile(upload=lambda r, h: web.json_response({"asset": {"id": 5}})),
             "failed"),
    Scenario("upload-500-deep-json", lambda: Hostile(upload=lambda r, h: text(DEEP, 500)), "failed"),
    Scenario("upload-no-part-urls", lambda: Hostile(upload=lambda r, h: web.json_response(
        {"upload": {"id": "upload_in", "status": "pending", "parts": []}})), "failed"),
    Scenario("upload-part-url-file-scheme", lambda: Hostile(upload=lambda r, h: web.json_response(
        {"upload": {"id": "upload_in", "status": "pending", "parts": [{"number": 1, "url": "file:///etc/passwd"}]}})),
        "failed"),
    Scenario("upload-part-number-nan", lambda: Hostile(upload=lambda r, h: text(
        '{"upload": {"id": "upload_in", "status": "pending", "parts": [{"number": NaN, "url": "http://x"}]}}')),
        "failed"),
    Scenario("upload-id-odd-characters", lambda: Hostile(
        upload=lambda r, h: web.json_response({"upload": {"id": "upload ü/../#?x=1&", "status": "pending", "parts": [
            {"number": 1, "url": f"{h.base_url}/storage/upload_in/1?s=1"}]}}),
        upload_action=lambda r, h: web.json_response({"upload": {"id": "upload ü/../#?x=1&", "status": "validating"}}),
        upload_status=lambda r, h: web.json_response({"upload": {"id": "upload ü/../#?x=1&", "status": "imported",
                                                                 "entityId": "asset_in"}})), "ok"),
    Scenario("upload-part-refused", lambda: Hostile(part=lambda r, h: text("<Error>EntityTooSmall</Error>", 400)),
             "failed"),
    Scenario("upload-complete-wrong-shape", lambda: Hostile(upload_action=lambda r, h: web.json_response(
        {"upload": "done"})), "failed"),
    Scenario("upload-status-deep-json", lambda: Hostile(upload_status=lambda r, h: text(DEEP)), "failed"),
    Scenario("upload-status-other-id", lambda: Hostile(upload_status=lambda r, h: web.json_response(
        {"upload": {"id": "upload_other", "status": "imported", "entityId": "asset_in"}})), "failed"),
    Scenario("upload-imported-without-entity", lambda: Hostile(upload_status=lambda r, h: web.json_response(
        {"upload": {"id": "upload_in", "status": "imported"}})), "failed"),
    Scenario("upload-failed-odd-message", lambda: Hostile(upload_status=lambda r, h: web.json_response(
        {"upload": {"id": "upload_in", "status": "failed", "errorMessage": ["<script>", None]}})), "failed"),
    Scenario("generate-html", lambda: Hostile(generate=lambda r, h: html()), "unknown"),
    Scenario("generate-huge", lambda: Hostile(generate=lambda r, h: text(" " * HUGE)), "unknown"),
    Scenario("generate-deep-json", lambda: Hostile(generate=lambda r, h: text(DEEP)), "unknown"),
    Scenario("generate-wrong-shape",
             lambda: Hostile(generate=lambda r, h: web.json_response({"job": {"jobId": 5, "status": None}})),
             "unknown"),
    Scenario("generate-400-deep-json", lambda: Hostile(generate=lambda r, h: text(DEEP, 400)), "failed"),
    Scenario("generate-418", lambda: Hostile(generate=lambda r, h: text('{"error": "teapot"}', 418)), "failed"),
    # valid answers of 1 MiB (under the 4 MiB cap) arrive in many reads: every byte must be read
    Scenario("generate-large-valid-answer", lambda: Hostile(generate=lambda r, h: web.json_response(
        {"job": job_json(f"job_{h.created}", "queued", metadata={"input": {"prompt": "x" * 2**20}})})), "ok"),
    Scenario("job-large-valid-answer", lambda: Hostile(job=lambda r, h: success(
        job_id_of(r), padding=["\U0001F600" * 64] * 4096)), "ok"),
    Scenario("job-id-odd-characters", lambda: Hostile(
        generate=lambda r, h: web.json_response({"job": job_json(f"job ü#{h.created}?x=1&", "queued")})), "ok"),
    Scenario("job-naive-and-aware-dates", lambda: Hostile(job=lambda r, h: success(
        job_id_of(r), createdAt="2025-01-01T00:00:00Z", updatedAt="2025-01-01T00:00:05")), "ok"),
    Scenario("job-progress-huge-nan-negative", lambda: Hostile(job=lambda r, h: (
        text('{"job": {"jobId": "%s", "status": "in-progress", "progress": %s}}'
             % (job_id_of(r), ["1" + "0" * 400, "NaN", "-Infinity", "-3"][h.polls[job_id_of(r)] - 1]))
        if h.polls[job_id_of(r)] <= 4 else None)), "ok"),
    Scenario("job-unknown-statuses", lambda: Hostile(job=lambda r, h: (
        web.json_response({"job": job_json(job_id_of(r), ODD_STATUSES[h.polls[job_id_of(r)] - 1])})
        if h.polls[job_id_of(r)] <= 4 else None)), "ok"),
    Scenario("job-5xx-deep-json-then-success", lambda: Hostile(job=lambda r, h: (
        text(DEEP, 503) if h.polls[job_id_of(r)] <= 2 else None)), "ok"),
    Scenario("job-failure-odd-reason", lambda: Hostile(job=lambda r, h: web.json_response({"job": job_json(
        job_id_of(r), "FAILED", metadata={"error": {"why": ["<script>alert(1)</script>", None, 1e308]}})})),
        "failed"),
    Scenario("job-success-without-outputs", lambda: Hostile(job=lambda r, h: web.json_response(
        {"job": job_json(job_id_of(r), "success", metadata={"assetIds": []})})), "failed"),
    Scenario("asset-id-traversal", lambda: Hostile(job=lambda r, h: web.json_response({"job": job_json(
        job_id_of(r), "success", metadata={"assetIds": ["../../../../etc/passwd"]})})), "failed"),
    Scenario("asset-url-file-scheme", lambda: Hostile(asset=lambda r, h: web.json_response(
        {"asset": {"id": "x", "url": "file:///etc/passwd"}})), "failed"),
    Scenario("cdn-short-body", lambda: Hostile(cdn=lambda r, h: web.Response(
        body=b"0123456789", headers={"Content-Length": "1000"})), "failed"),
]


@pytest.fixture
async def hostile_server() -> AsyncIterator[Callable[[Hostile], Any]]:
    """`await start(hostile)` serves it on 127.0.0.1 (ephemeral port) and returns its base URL."""
    runners: list[web.AppRunner] = []

    async def start(hostile: Hostile) -> str:
        runner = web.AppRunner(hostile.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        hostile.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        return hostile.base_url

    try:
        yield start
    finally:
        for runner in runners:
            await runner.cleanup()


class Url:
    """Stands in for an EmulatorServer where run_helpers only needs `.url`."""

    def __init__(self, url: str) -> None:
        self.url = url


def tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
async def test_hostile_answers(tmp_path: Path, hostile_server, caplog, scenario: Scenario) -> None:
    """Each hostile answer ends in a clean error or recorded job outcomes; nothing outside the run folder."""
    caplog.set_level("DEBUG")
    hostile = scenario.hostile()
    url = await hostile_server(hostile)
    manifest = write_manifest(tmp_path, prompts=1, seeds=1, name="hostile")  # 2 jobs
    out = tmp_path / "out"
    before = tree(tmp_path)
    try:
        summary = await asyncio.wait_for(  # bounded: a run that never ends fails here
            run(manifest, Url(url), out, credentials=CREDENTIALS, **HOSTILE_SETTINGS), timeout=30)  # type: ignore
    except PipelineError as exc:
        outcome, message = "error", str(exc)
        assert message.strip()
    else:
        counts = summary.counts
        outcome = ("ok" if summary.exit_status == 0 else "unknown" if counts["unknown"] else
                   "failed" if counts["failed"] else f"exit {summary.exit_status}")
        message = summary_text(summary, resume_command="-")
        assert summary.exit_status == (0 if counts["downloaded"] == 2 else 1), message
        check_accounting(summary.run_dir)
        # results.json is strict JSON: no NaN or Infinity slipped in from the server
        json.loads((summary.run_dir / "results.json").read_text(encoding="utf-8"),
                   parse_constant=lambda c: pytest.fail(f"results.json holds {c}"))
        assert replay(summary.run_dir / JOURNAL_NAME).torn_lines == 0
    assert outcome == scenario.expect, message
    assert all(p.is_relative_to(out) for p in tree(tmp_path) - before), "a file was written outside the run folder"
    assert hostile.cdn_auth_headers == 0, "the credentials were sent to the CDN"
    assert hostile.part_auth_headers == 0, "the credentials were sent to the storage"
    assert_no_secrets(trees=[out], texts={"log": caplog.text, "outcome": message})
    record_figures(f"hostile {scenario.name}", outcome=outcome, created=hostile.created,
                   polls=sum(hostile.polls.values()), cdn_requests=hostile.cdn_requests,
                   message=message.splitlines()[-1][:200] if message else "")


@pytest.mark.timeout(60)
async def test_garbage_polls_forever_are_interruptible(tmp_path: Path, hostile_server) -> None:
    """Job answers that are never valid keep the job polled (it is paid); Ctrl-C ends the run cleanly with 130."""
    hostile = Hostile(job=lambda r, h: html())
    url = await hostile_server(hostile)
    manifest = write_manifest(tmp_path, prompts=1, seeds=1, name="hostile")
    env = cli_env(url, **HOSTILE_SETTINGS)
    process = await start_cli("run", str(manifest), "--out", str(tmp_path / "out"), env=env, cwd=tmp_path)
    for _ in range(500):
        if sum(hostile.polls.values()) >= 12:
            break
        await asyncio.sleep(0.02)
    assert sum(hostile.polls.values()) >= 12 and process.returncode is None
    process.send_signal(signal.SIGINT)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=20)
    text_out = (stdout + stderr).decode(errors="replace")
    assert_no_traceback(text_out, "the interrupted run")
    assert process.returncode == 130, text_out[-3000:]
    assert "to resume: ltx-batch run" in text_out
    state = replay(tmp_path / "out" / "hostile" / JOURNAL_NAME)
    assert state.counts()["submitted"] == 2  # still tracked: a resume polls them again, never resubmits
    assert_no_secrets(trees=[tmp_path / "out"], texts={"output": text_out})
    assert API_KEY not in text_out
    record_figures("hostile garbage-polls-forever", exit_status=process.returncode,
                   polls=sum(hostile.polls.values()))


async def test_run_command_against_hostile_server_prints_no_traceback(tmp_path: Path, hostile_server) -> None:
    """The real CLI facing an upload answer nested a million deep: the input's jobs fail with a clear reason
    naming the file (an input that cannot be uploaded fails only its own jobs), exit 1."""
    url = await hostile_server(Hostile(upload=lambda r, h: text(DEEP)))
    manifest = write_manifest(tmp_path, prompts=1, seeds=1, name="hostile")
    result = await run_cli("run", str(manifest), "--out", str(tmp_path / "out"),
                           env=cli_env(url, **HOSTILE_SETTINGS), cwd=tmp_path, timeout_s=60)
    assert_no_traceback(result.stdout + result.stderr, "run")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "clip.mp4 could not be uploaded: HTTP 200" in result.stderr and "answer is not JSON" in result.stderr
    assert_no_secrets(trees=[tmp_path / "out"], texts={"output": result.stdout + result.stderr})
