"""Uploads (issue 11, section 1): small images as JSON, videos and big images by the multipart flow of the
API notes, parts streamed and sent a few at once without the Authorization header, each retried on its own,
expired URLs, `failed` uploads, malformed answers, and resumes that continue an upload or start it again."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import struct
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from pipeline.emulator import EMULATOR_API_KEY, EMULATOR_API_SECRET, EmulatorServer
from pipeline.emulator.faults import UPLOAD_FAILURE
from pipeline.errors import BadResponse
from pipeline.ledger.replay import JOURNAL_NAME, LedgerState, apply, read_events, replay
from pipeline.run.outcome import RunSummary, summary_text
from pipeline.api.parts import PartFile
from pipeline.api.uploads import JSON_IMAGE_MAX_BYTES, part_plan, parse_upload, uses_multipart
from proxy import serve
from run_helpers import CLIP, FAST, check_consistent, run

ROOT = CLIP.parent.parent

MIB = 2**20


# -- pure parts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "size", "multipart"), [
    ("video", 10, True), ("audio", 10, True), ("video", 0, True),
    ("image", JSON_IMAGE_MAX_BYTES - 1, False), ("image", JSON_IMAGE_MAX_BYTES, True), ("image", 1, False),
])
def test_which_files_take_the_multipart_flow(kind: str, size: int, multipart: bool) -> None:
    """Every video or audio file, and images of 6 MB or more, take the multipart flow; smaller images go as JSON."""
    assert uses_multipart(kind, size) is multipart


@pytest.mark.parametrize(("size", "preferred", "plan"), [
    (0, 8 * MIB, (8 * MIB, 1)),
    (1, 8 * MIB, (8 * MIB, 1)),
    (8 * MIB, 8 * MIB, (8 * MIB, 1)),
    (8 * MIB + 1, 8 * MIB, (8 * MIB, 2)),
    (2 * 10**9, 8 * MIB, (8 * MIB, 239)),
    (80 * 10**9, 5 * MIB, (8_000_000, 10_000)),  # parts grow so that no file needs more than 10,000
    (80 * 10**9 + 1, 5 * MIB, (8_000_001, 10_000)),
])
def test_part_plan(size: int, preferred: int, plan: tuple[int, int]) -> None:
    """Part size = max(setting, ceil(size / 10,000)); at least one part."""
    assert part_plan(size, part_bytes=preferred) == plan


@pytest.mark.parametrize(("number", "span"), [(1, (0, 5)), (2, (5, 5)), (3, (10, 2))])
def test_part_spans(number: int, span: tuple[int, int]) -> None:
    """Parts cut a file in order; the last one is shorter."""
    assert PartFile(fd=-1, name="x", size_bytes=12, part_bytes=5, mime="video/mp4").span(number) == span


def test_parse_upload_reads_the_sdk_fields() -> None:
    """id, status (any case), parts by number, entityId and errorMessage, as the SDK's Upload type names them."""
    view = parse_upload({"upload": {"id": "upload_1", "status": "Validating", "entityId": None, "parts": [
        {"number": 2, "url": "https://s3/b?sig=2", "expires": "x"}, {"number": 1.0, "url": "https://s3/a"}]}},
        url="u")
    assert (view.upload_id, view.status, view.entity_id) == ("upload_1", "validating", None)
    assert view.part_urls == {1: "https://s3/a", 2: "https://s3/b?sig=2"}
    failed = parse_upload({"upload": {"id": "upload_1", "status": "failed", "errorMessage": "bad codec"}}, url="u")
    assert failed.error_message == "bad codec" and failed.part_urls == {}


@pytest.mark.parametrize(("answer", "words"), [
    (None, "lacks an 'upload' object"),
    ([], "lacks an 'upload' object"),
    ({"upload": "x"}, "lacks an 'upload' object"),
    ({"upload": {"status": "pending"}}, "lacks upload.id"),
    ({"upload": {"id": 5, "status": "pending"}}, "lacks upload.id"),
    ({"upload": {"id": "u"}}, "lacks upload.status"),
    ({"upload": {"id": "u", "status": "pending", "parts": "all"}}, "not a list"),
    ({"upload": {"id": "u", "status": "pending", "parts": [7]}}, "malformed part"),
    ({"upload": {"id": "u", "status": "pending", "parts": [{"number": 0, "url": "https://a"}]}}, "malformed part"),
    ({"upload": {"id": "u", "status": "pending", "parts": [{"number": 1.5, "url": "https://a"}]}}, "malformed part"),
    ({"upload": {"id": "u", "status": "pending", "parts": [{"number": float("nan"), "url": "https://a"}]}},
     "malformed part"),
    ({"upload": {"id": "u", "status": "pending", "parts": [{"number": True, "url": "https://a"}]}}, "malformed part"),
    ({"upload": {"id": "u", "status": "pending", "parts": [{"number": 1, "url": "file:///etc/passwd"}]}},
     "malformed part"),
])
def test_parse_upload_refuses_malformed_answers(answer: Any, words: str) -> None:
    """A malformed upload answer is a BadResponse naming what is wrong and where, never a traceback."""
    with pytest.raises(BadResponse, match=words) as caught:
        parse_upload(answer, url="http://api/v1/uploads")
    assert "http://api/v1/uploads" in str(caught.value)


def test_the_journal_remembers_uploads_begun_until_imported() -> None:
    """`upload-started` records the upload id; `upload` the asset id, and the upload is no longer in progress."""
    state = LedgerState()
    apply(state, {"ev": "upload-started", "sha256": "s1", "upload_id": "upload_a", "path": "/a.mp4", "param": "video"})
    apply(state, {"ev": "upload-started", "sha256": "s1", "upload_id": "upload_b", "path": "/a.mp4", "param": "video"})
    apply(state, {"ev": "upload-started", "sha256": None, "upload_id": 3})  # junk: ignored
    assert state.upload_ids == {"s1": "upload_b"} and state.uploads == {}
    apply(state, {"ev": "upload", "sha256": "s1", "asset_id": "asset_1", "path": "/a.mp4", "param": "video"})
    assert state.upload_ids == {} and state.uploads == {"s1": "asset_1"}


# -- against the emulator, through a spy -----------------------------------------------------------

PART_MIB = 5  # the smallest part size the storage takes (but for the last part)
FAST_UPLOADS: dict[str, Any] = {"upload_part_bytes": PART_MIB * MIB, "upload_parts_in_flight": 3}
UPLOAD_KNOBS: dict[str, Any] = {"upload_processing_s": 0.05}

Rule = Callable[[web.Request, "Spy"], Awaitable[web.StreamResponse | None]]


@dataclass(frozen=True, slots=True)
class PartSeen:
    """One part PUT as the storage received it."""

    upload_id: str
    number: int
    headers: dict[str, str]
    size: int


@dataclass
class Spy:
    """An HTTP proxy in front of the emulator (API and storage: the part URLs the emulator hands out point back
    here): records part PUTs and their headers, the parts in flight at once, and every route asked; a `rule`
    may answer a request itself (fail it, hold it) before it reaches the emulator."""

    target: str
    rule: Rule | None = None
    parts: list[PartSeen] = field(default_factory=list)
    asked: Counter[str] = field(default_factory=Counter)  # by route
    paths: Counter[str] = field(default_factory=Counter)  # by method and path
    in_flight: int = 0
    peak_in_flight: int = 0
    url: str = ""
    _session: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.read()
        except ConnectionResetError:  # the client went away mid-body (a test's crash)
            return web.Response(status=400)
        route = f"{request.method} {_route(request.path)}"
        self.asked[route] += 1
        self.paths[f"{request.method} {request.path}"] += 1
        is_part = route == "PUT /_s3"
        if is_part:
            self.parts.append(PartSeen(request.query.get("uploadId", ""), int(request.query.get("partNumber", 0)),
                                       dict(request.headers), len(body)))
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.rule is not None and (reply := await self.rule(request, self)) is not None:
                return reply
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
            assert self._session is not None
            async with self._session.request(request.method, self.target + request.path_qs, data=io.BytesIO(body),
                                             headers=headers, allow_redirects=False) as answer:
                data = await answer.read()
                kept = {k: v for k, v in answer.headers.items() if k.lower() in ("content-type", "etag", "retry-after")}
                return web.Response(status=answer.status, body=data, headers=kept)
        finally:
            if is_part:
                self.in_flight -= 1

    def parts_of(self, upload_id: str) -> Counter[int]:
        return Counter(p.number for p in self.parts if p.upload_id == upload_id)


HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "keep-alive"}  # Host is kept: URLs point here


def _route(path: str) -> str:
    if path.startswith("/_s3/"):
        return "/_s3"
    if path.startswith("/v1/uploads/"):
        return "/v1/uploads/{id}/action" if path.endswith("/action") else "/v1/uploads/{id}"
    return path


@pytest.fixture
async def spy_factory(emulator_factory) -> AsyncIterator[Callable[..., Awaitable[tuple[Spy, EmulatorServer]]]]:
    """`await spy_factory(**knobs)`: an emulator (upload knobs of these tests, overridable) and a Spy before it."""
    runners: list[web.AppRunner] = []
    async with aiohttp.ClientSession() as session:
        async def start(**knobs: Any) -> tuple[Spy, EmulatorServer]:
            server = await emulator_factory(**{**UPLOAD_KNOBS, **knobs})
            spy = Spy(server.url, _session=session)
            runner, spy.url = await serve(spy.handle, max_body_bytes=64 * MIB)
            runners.append(runner)
            return spy, server

        try:
            yield start
        finally:
            for runner in runners:
                await runner.cleanup()


def padded_clip(folder: Path, total_bytes: int, name: str = "big.mp4") -> Path:
    """The sample clip with a `free` box appended: a valid MP4 of `total_bytes` (another sha256 than the clip)."""
    pad = total_bytes - CLIP.stat().st_size - 8
    path = folder / name
    path.write_bytes(CLIP.read_bytes() + struct.pack(">I", 8 + pad) + b"free" + bytes(pad))
    return path


def video_manifest(folder: Path, videos: list[Path], *, name: str = "up", image: Path | None = None,
                   seeds: int = 2) -> Path:
    """One prompt over each video (x `seeds`), optionally with a first-frame image."""
    lines = [f"name: {name}", "inputs:", "  video:", *[f"    - {v}" for v in videos]]
    lines += [f"  image: {image}"] if image else []
    lines += ["prompts: [a slow pan over a harbour]", f"seeds: {{count: {seeds}, from: 1}}"]
    path = folder / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def run_via(spy: Spy, manifest: Path, out: Path, **overrides: Any) -> RunSummary:
    return await asyncio.wait_for(run(manifest, SimpleNamespace(url=spy.url), out,  # type: ignore[arg-type]
                                      **{**FAST_UPLOADS, **overrides}), 60)


def events(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    return [e for e in read_events(run_dir / JOURNAL_NAME) if e.get("ev") == kind]


async def test_the_demo_runs_through_the_multipart_upload(tmp_path: Path, spy_factory) -> None:
    """samples/demo.yaml's shape (12 jobs over the clip): the video goes create, part, complete, imported;
    nothing is posted to /v1/assets; the upload id is journaled before the asset id; every job downloaded."""
    spy, server = await spy_factory()
    demo = (ROOT / "samples" / "demo.yaml").read_text().replace("video: clip.mp4", f"video: {CLIP}")
    manifest = tmp_path / "demo.yaml"
    manifest.write_text(demo)
    summary = await run_via(spy, manifest, tmp_path / "out")
    assert summary.exit_status == 0, summary_text(summary, resume_command="-")
    stats = server.emulator.stats()
    assert (stats["multipart_created"], stats["multipart_imported"], stats["parts_refused"]) == (1, 1, 0)
    assert spy.asked["POST /v1/assets"] == 0 and spy.asked["PUT /_s3"] == 1
    started, done = events(summary.run_dir, "upload-started"), events(summary.run_dir, "upload")
    assert len(started) == len(done) == 1 and started[0]["sha256"] == done[0]["sha256"]
    lines = [e["ev"] for e in read_events(summary.run_dir / JOURNAL_NAME)]
    assert lines.index("upload-started") < lines.index("upload")
    results = await check_consistent(summary.run_dir, server, expect_jobs=12)
    assert {job["request"]["video"] for job in results["jobs"]} == {done[0]["asset_id"]}


async def test_a_large_video_goes_in_parts_a_few_at_once_without_credentials(tmp_path: Path, spy_factory) -> None:
    """A 5-part video: parts of upload_part_bytes (the last shorter), 3 in flight at once, each PUT with
    Content-Type and Content-Length and never the Authorization header; the asset is the file, byte for byte."""
    spy, server = await spy_factory()

    async def slow_parts(request: web.Request, spy: Spy) -> None:
        if request.path.startswith("/_s3/"):
            await asyncio.sleep(0.1)  # parts overlap visibly

    spy.rule = slow_parts
    big = padded_clip(tmp_path, 4 * PART_MIB * MIB + 123_456)
    summary = await run_via(spy, video_manifest(tmp_path, [big], seeds=1), tmp_path / "out")
    assert summary.exit_status == 0, summary_text(summary, resume_command="-")
    assert sorted(p.number for p in spy.parts) == [1, 2, 3, 4, 5]
    assert [p.size for p in sorted(spy.parts, key=lambda p: p.number)] == [PART_MIB * MIB] * 4 + [123_456]
    assert spy.peak_in_flight == 3
    for part in spy.parts:
        assert "Authorization" not in part.headers
        assert part.headers["Content-Type"] == "video/mp4" and int(part.headers["Content-Length"]) == part.size
    stats = server.emulator.stats()
    assert stats["parts_refused"] == 0 and stats["multipart_size_mismatch"] == 0
    assert stats["upload_bytes"] == big.stat().st_size
    await check_consistent(summary.run_dir, server, expect_jobs=1)


async def test_a_part_failing_transiently_is_retried_alone(tmp_path: Path, spy_factory) -> None:
    """Part 2 answered 503 twice: only part 2 is sent again (3 times in all), the others once; one upload."""
    spy, server = await spy_factory()

    async def flaky_part_two(request: web.Request, spy: Spy) -> web.StreamResponse | None:
        if request.query.get("partNumber") == "2" and spy.parts_of(request.query["uploadId"])[2] <= 2:
            return web.Response(status=503, text="<Error><Code>SlowDown</Code></Error>", content_type="application/xml")
        return None

    spy.rule = flaky_part_two
    big = padded_clip(tmp_path, 2 * PART_MIB * MIB + 1000)
    summary = await run_via(spy, video_manifest(tmp_path, [big], seeds=1), tmp_path / "out")
    assert summary.exit_status == 0, summary_text(summary, resume_command="-")
    (upload_id,) = {p.upload_id for p in spy.parts}
    assert spy.parts_of(upload_id) == Counter({1: 1, 2: 3, 3: 1})
    assert server.emulator.stats()["multipart_created"] == 1


async def test_an_expired_part_url_means_a_new_upload(tmp_path: Path, spy_factory) -> None:
    """The storage refuses a part with 403 (its URL expired, as the emulator's clock says): the upload is
    created again, its id journaled, and the file goes whole to the new one."""
    spy, server = await spy_factory(upload_url_ttl_s=0.2)

    async def late_first_part(request: web.Request, spy: Spy) -> None:
        if request.path.startswith("/_s3/") and len(spy.parts) == 1:
            await asyncio.sleep(0.3)  # the first upload's URLs expire meanwhile
            server.emulator.configure(upload_url_ttl_s=3600.0)

    spy.rule = late_first_part
    big = padded_clip(tmp_path, PART_MIB * MIB + 1000)
    summary = await run_via(spy, video_manifest(tmp_path, [big], seeds=1), tmp_path / "out")
    assert summary.exit_status == 0, summary_text(summary, resume_command="-")
    stats = server.emulator.stats()
    assert stats["multipart_created"] == 2 and stats["parts_refused"] >= 1 and stats["multipart_imported"] == 1
    first, second = [e["upload_id"] for e in events(summary.run_dir, "upload-started")]
    assert spy.parts_of(second) == Counter({1: 1, 2: 1})
    assert replay(summary.run_dir / JOURNAL_NAME).upload_ids == {}


async def test_part_urls_expiring_again_and_again_fail_only_that_input(tmp_path: Path, spy_factory) -> None:
    """URLs that are always expired: after 3 uploads the big video's jobs fail naming the file; the clip's run."""
    spy, server = await spy_factory()

    big = padded_clip(tmp_path, PART_MIB * MIB + 1000)

    async def expire_big(request: web.Request, spy: Spy) -> web.StreamResponse | None:
        if request.path.startswith("/_s3/") and request.content_length != CLIP.stat().st_size:  # big.mp4's parts
            return web.Response(status=403, text="<Error><Code>AccessDenied</Code><Message>Request has expired"
                                "</Message></Error>", content_type="application/xml")
        return None

    spy.rule = expire_big
    summary = await run_via(spy, video_manifest(tmp_path, [CLIP, big]), tmp_path / "out")
    assert summary.exit_status == 1
    assert summary.counts["downloaded"] == 2 and summary.counts["failed"] == 2
    assert server.emulator.stats()["multipart_created"] == 4  # the clip once, the big file 3 times
    assert all("big.mp4 could not be uploaded" in error and "3 uploads in a row" in error
               for _, _, error in summary.failures)


async def crash_at(spy: Spy, manifest: Path, out: Path, where: Callable[[web.Request, Spy], bool]) -> None:
    """Run until a request matching `where` arrives, then cancel the run while that request is held: as a
    crash would, it leaves the journal as it was at that moment. The held request is then answered 503."""
    held, release = asyncio.Event(), asyncio.Event()

    async def hold(request: web.Request, spy: Spy) -> web.StreamResponse | None:
        if held.is_set() or not where(request, spy):
            return None
        held.set()
        await release.wait()
        return web.Response(status=503)

    spy.rule = hold
    task, holding = asyncio.create_task(run_via(spy, manifest, out)), asyncio.create_task(held.wait())
    await asyncio.wait({task, holding}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    holding.cancel()
    assert held.is_set() and not task.done(), task.done() and task.result()  # the run's error, if it ended
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    release.set()
    spy.rule = None


def first_part(request: web.Request, spy: Spy) -> bool:
    return request.path.startswith("/_s3/")


def first_status(request: web.Request, spy: Spy) -> bool:
    return request.method == "GET" and request.path.startswith("/v1/uploads/")


@pytest.mark.parametrize(("crash", "processing_s", "gone", "created", "parts", "asked_again"), [
    (first_part, 0.05, False, 2, 2, (1, 1)),  # pending: started again, the file sent whole
    (first_part, 0.05, True, 2, 2, (1, 1)),  # the server no longer knows it (404): started again
    (first_status, 1.0, False, 1, 0, (2, 99)),  # still validating: polled on, nothing sent again
    (first_status, 0.05, False, 1, 0, (1, 1)),  # imported meanwhile: its entityId taken at once
], ids=["pending", "gone", "validating", "imported"])
async def test_a_resume_continues_or_restarts_an_upload_never_resends_a_known_one(
        tmp_path: Path, spy_factory, crash: Callable[[web.Request, Spy], bool], processing_s: float, gone: bool,
        created: int, parts: int, asked_again: tuple[int, int]) -> None:
    """A crash between creating an upload and its import: the journal holds the upload id; the resume asks
    the server: pending or gone -> a new upload; validating -> polled until imported; imported -> its id.
    A run after that sends nothing of the file again."""
    spy, server = await spy_factory(upload_processing_s=processing_s)
    big = padded_clip(tmp_path, PART_MIB * MIB + 1000)
    manifest, out = video_manifest(tmp_path, [big], seeds=1), tmp_path / "out"
    await crash_at(spy, manifest, out, crash)
    state = replay(out / "up" / JOURNAL_NAME)
    assert len(state.upload_ids) == 1 and state.uploads == {}
    (journaled,) = state.upload_ids.values()
    if processing_s < 1.0:
        await asyncio.sleep(0.2)
    if gone:
        async def not_found(request: web.Request, spy: Spy) -> web.StreamResponse | None:
            return web.json_response({"message": "Upload not found"}, status=404) \
                if request.path == f"/v1/uploads/{journaled}" else None
        spy.rule = not_found
    spy.paths.clear()
    sent_before = len(spy.parts)
    summary = await run_via(spy, manifest, out)
    assert summary.exit_status == 0, summary_text(summary, resume_command="-")
    stats = server.emulator.stats()
    assert stats["multipart_created"] == created and stats["multipart_imported"] == 1
    resent = spy.parts[sent_before:]
    assert len(resent) == parts and journaled not in {p.upload_id for p in resent}
    assert asked_again[0] <= spy.paths[f"GET /v1/uploads/{journaled}"] <= asked_again[1]
    assert len(events(summary.run_dir, "upload-started")) == created
    await check_consistent(summary.run_dir, server, expect_jobs=1)
    spy.rule = None
    spy.asked.clear()
    summary = await run_via(spy, manifest, out)
    assert summary.exit_status == 0
    assert not [r for r in spy.asked if r.startswith(("POST /v1/uploads", "GET /v1/uploads", "PUT", "POST /v1/assets"))]


async def test_a_failed_upload_fails_only_its_inputs_jobs_naming_the_file(tmp_path: Path, spy_factory) -> None:
    """The second video's upload ends `failed`: its jobs fail with the file's name and the server's
    errorMessage, the first video's jobs are downloaded; a resume uploads it again and completes the run."""
    spy, server = await spy_factory()

    async def fail_second_upload(request: web.Request, spy: Spy) -> None:
        if request.path.endswith("/action"):  # the draw happens at `complete`: fail the second upload only
            server.emulator.configure(fault_upload_failure_rate=1.0 if spy.asked[
                "POST /v1/uploads/{id}/action"] == 2 else 0.0)

    spy.rule = fail_second_upload
    big = padded_clip(tmp_path, 100_000)
    manifest, out = video_manifest(tmp_path, [CLIP, big]), tmp_path / "out"
    summary = await run_via(spy, manifest, out)
    assert summary.exit_status == 1
    assert summary.counts["downloaded"] == 2 and summary.counts["failed"] == 2
    for _, _, error in summary.failures:
        assert f"input video {big} could not be uploaded" in error and UPLOAD_FAILURE in error
    summary = await run_via(spy, manifest, out)
    assert summary.exit_status == 0, summary_text(summary, resume_command="-")
    assert server.emulator.stats()["multipart_created"] == 3
    await check_consistent(summary.run_dir, server, expect_jobs=4)


async def test_a_malformed_upload_answer_is_asked_again(tmp_path: Path, spy_factory) -> None:
    """`imported` without its entityId once: the status is asked again and the run goes on."""
    spy, server = await spy_factory()

    async def once_without_entity(request: web.Request, spy: Spy) -> web.StreamResponse | None:
        if first_status(request, spy) and spy.asked["GET /v1/uploads/{id}"] == 1:
            return web.json_response({"upload": {"id": request.path.rsplit("/", 1)[1], "status": "imported"}})
        return None

    spy.rule = once_without_entity
    summary = await run_via(spy, video_manifest(tmp_path, [CLIP], seeds=1), tmp_path / "out")
    assert summary.exit_status == 0, summary_text(summary, resume_command="-")
    assert spy.asked["GET /v1/uploads/{id}"] >= 2


@pytest.mark.parametrize(("route", "answer", "words"), [
    ("POST /v1/uploads", {"upload": {"id": "upload_x", "status": "pending"}}, "0 part URLs for 1 parts"),
    ("POST /v1/uploads/{id}/action", {"message": "ok"}, "lacks an 'upload' object"),
    ("GET /v1/uploads/{id}", {"upload": {"id": "upload_elsewhere", "status": "imported", "entityId": "asset_x"}},
     "answered upload_elsewhere"),
])
async def test_malformed_upload_answers_fail_only_that_input_with_a_located_error(
        tmp_path: Path, spy_factory, route: str, answer: Any, words: str) -> None:
    """Create, complete or status always malformed: that input's jobs fail with the URL and what is wrong,
    naming the file; no traceback; the run ends normally (exit 1)."""
    spy, server = await spy_factory()

    async def malformed(request: web.Request, spy: Spy) -> web.StreamResponse | None:
        return web.json_response(answer) if f"{request.method} {_route(request.path)}" == route else None

    spy.rule = malformed
    summary = await run_via(spy, video_manifest(tmp_path, [CLIP]), tmp_path / "out", max_retries=2)
    assert summary.exit_status == 1 and summary.counts["failed"] == 2
    for _, _, error in summary.failures:
        assert f"input video {CLIP} could not be uploaded: HTTP 200 from {spy.url}/v1/uploads" in error
        assert words in error
    assert spy.asked[route] == 3  # one answer and two retries


async def test_images_under_6_mb_go_as_json_bigger_ones_in_parts(tmp_path: Path, spy_factory) -> None:
    """The sample first-frame PNG is posted to /v1/assets as base64 JSON; a 6 MB PNG takes the multipart flow
    as kind image, image/png; both become the jobs' `image`."""
    spy, server = await spy_factory()
    small = ROOT / "samples" / "first-frame.png"
    big = tmp_path / "big-frame.png"
    big.write_bytes(small.read_bytes() + bytes(JSON_IMAGE_MAX_BYTES - small.stat().st_size))
    summary = await run_via(spy, video_manifest(tmp_path, [CLIP], image=small, seeds=1, name="small"),
                            tmp_path / "out")
    assert summary.exit_status == 0, summary_text(summary, resume_command="-")
    assert spy.asked["POST /v1/assets"] == 1 and server.emulator.stats()["multipart_created"] == 1
    results = await check_consistent(summary.run_dir, server, expect_jobs=1)
    image_id = results["jobs"][0]["request"]["image"]
    assert image_id == next(e["asset_id"] for e in events(summary.run_dir, "upload") if e["param"] == "image")
    summary = await run_via(spy, video_manifest(tmp_path, [CLIP], image=big, seeds=1, name="big"), tmp_path / "out")
    assert summary.exit_status == 0, summary_text(summary, resume_command="-")
    assert spy.asked["POST /v1/assets"] == 1 and server.emulator.stats()["multipart_created"] == 3
    assert {p.headers["Content-Type"] for p in spy.parts} == {"video/mp4", "image/png"}


async def test_ctrl_c_during_an_upload_sends_no_more_parts_and_a_resume_uploads_again(tmp_path: Path,
                                                                                      spy_factory) -> None:
    """The real command, its parts answered 503 again and again: after Ctrl-C no part is sent again (the
    retries stop), the run exits 130 at once with the upload id journaled; the next run starts a new upload
    (the first one is still pending) and completes."""
    spy, server = await spy_factory()

    async def storage_down(request: web.Request, spy: Spy) -> web.StreamResponse | None:
        return web.Response(status=503, text="<Error><Code>SlowDown</Code></Error>") \
            if request.path.startswith("/_s3/") else None

    spy.rule = storage_down
    big = padded_clip(tmp_path, PART_MIB * MIB + 1000)
    manifest, out = video_manifest(tmp_path, [big]), tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LTX_BATCH_", "SCENARIO_"))}
    env.update({f"LTX_BATCH_{k.upper()}": str(v) for k, v in {**FAST, **FAST_UPLOADS}.items()})
    env.update({"SCENARIO_API_KEY": EMULATOR_API_KEY, "SCENARIO_API_SECRET": EMULATOR_API_SECRET,
                "SCENARIO_API_URL": spy.url})
    argv = [sys.executable, "-m", "pipeline", "run", str(manifest), "--out", str(out), "--no-report"]
    process = await asyncio.create_subprocess_exec(*argv, env=env, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    for _ in range(1000):
        if len(spy.parts) >= 4:
            break
        await asyncio.sleep(0.01)
    process.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 130, stderr.decode()[-2000:]
    assert time.monotonic() - signalled < 1.5 and "Traceback" not in stderr.decode()
    sent = len(spy.parts)
    await asyncio.sleep(0.3)
    assert len(spy.parts) == sent
    state = replay(out / "up" / JOURNAL_NAME)
    assert len(state.upload_ids) == 1 and not state.uploads and not state.counts()["unknown"]
    spy.rule = None
    process = await asyncio.create_subprocess_exec(*argv, env=env, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert server.emulator.stats()["multipart_created"] == 2
    await check_consistent(out / "up", server, expect_jobs=2)
