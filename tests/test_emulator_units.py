"""The emulator's pure parts: job timeline, token bucket, Range parsing, URL tokens, MP4 boxes, uploads, knobs.

The rules added for issue 11 (statuses, prices, listing, 429s, multipart) are in test_emulator_rules.py."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from typing import Any

import pytest

from pipeline.emulator import EmulatorKnobs
from pipeline.emulator.access import TokenBucket, retry_after_header
from pipeline.emulator.cdn import ByteRange, UrlSigner, parse_range
from pipeline.emulator.faults import FaultDice
from pipeline.emulator.jobs import Job, JobBoard, view
from pipeline.emulator.knobs import apply_changes
from pipeline.emulator.media import (
    FileSpan,
    Layout,
    Zeros,
    free_box,
    layout_sha256,
    open_ended_box,
    output_layout,
    top_level_boxes,
)
from pipeline.emulator.replies import ErrorReply
from pipeline.emulator.uploads import read_upload

CLIP = b"\x00\x00\x00\x10ftypisom\x00\x00\x00\x00" + b"\x00\x00\x00\x0cmdatabcd"


def make_job(n: int, run_s: float, created_s: float = 0.0, **extra: Any) -> Job:
    return Job(f"job_{n}", "model", {}, {}, created_s, run_s, f"asset_{n}", **extra)


# -- job timeline --------------------------------------------------------------------------------


def test_board_runs_at_most_max_running_and_starts_waiting_jobs_when_slots_free() -> None:
    """Jobs start in FIFO order at the exact instant a slot frees, however late we look."""
    board = JobBoard(max_running=2)
    jobs = [make_job(i, run_s) for i, run_s in enumerate([1.0, 3.0, 1.0, 1.0])]
    for job in jobs:
        board.add(job, 0.0)
    assert (board.running, board.queued) == (2, 2)
    finished = board.advance(10.0)  # one late look replays every event
    assert [j.job_id for j in finished] == ["job_0", "job_2", "job_1", "job_3"]
    assert [j.started_s for j in jobs] == [0.0, 0.0, 1.0, 2.0]
    assert [j.finished_s for j in jobs] == [1.0, 3.0, 2.0, 3.0]
    assert (board.peak_running, board.peak_in_flight, board.in_flight) == (2, 4, 0)


@pytest.mark.parametrize("looks", [[10.0], [0.5, 1.5, 2.5, 10.0], [0.1 * i for i in range(101)]])
def test_board_timeline_does_not_depend_on_how_often_it_is_advanced(looks: list[float]) -> None:
    """Advancing once or many times gives the same start and finish times."""
    board = JobBoard(max_running=3)
    jobs = [make_job(i, 0.3 + (i % 4) * 0.7, created_s=i * 0.05) for i in range(12)]
    for job in jobs:
        board.add(job, job.created_s)
    for now in looks:
        board.advance(now)
    reference = JobBoard(max_running=3)
    again = [make_job(i, j.run_s, j.created_s) for i, j in enumerate(jobs)]
    for job in again:
        reference.add(job, job.created_s)
    reference.advance(10.0)
    assert [(j.started_s, j.finished_s) for j in jobs] == [(j.started_s, j.finished_s) for j in again]


def test_board_zero_length_jobs_finish_at_once() -> None:
    """A job with run_s=0 and no pending time is finished by the time `add` returns."""
    board = JobBoard(max_running=1)
    job = make_job(1, 0.0)
    assert board.add(job, 5.0) == [job] and job.finished_s == 5.0 and board.advance(5.0) == []


def test_board_pending_jobs_enter_the_queue_after_their_pending_time() -> None:
    """A job is pending (not queued, not running) for `pending_s`, then queued/started at that instant."""
    board = JobBoard(max_running=1)
    job = make_job(1, 1.0)
    board.add(job, 0.0, pending_s=0.5)
    assert (board.pending, board.queued, board.running, board.in_flight) == (1, 0, 0, 1)
    board.advance(0.4)
    assert job.queued_s is None
    board.advance(0.6)
    assert (job.queued_s, job.started_s, board.pending, board.running) == (0.5, 0.5, 0, 1)


def test_board_lowering_the_cap_lets_running_jobs_finish() -> None:
    """A lower cap stops new starts until running jobs drop below it; a higher one starts jobs now."""
    board = JobBoard(max_running=3)
    jobs = [make_job(i, 1.0) for i in range(5)]
    for job in jobs:
        board.add(job, 0.0)
    board.set_max_running(1, 0.5)
    board.advance(1.0)
    assert board.running == 1 and jobs[3].started_s == 1.0 and jobs[4].started_s is None
    board.set_max_running(2, 1.2)
    assert jobs[4].started_s == 1.2


@pytest.mark.parametrize(("now", "warmup", "expect"), [
    (0.05, False, ("pending", 0.0)),
    (0.5, False, ("queued", 0.0)),
    (1.1, False, ("warming-up", 0.0)),
    (1.1, True, ("rescheduling", 0.0)),
    (0.5, True, ("rescheduling", 0.0)),
    (1.2, False, ("in-progress", 0.0)),
    (1.6, False, ("in-progress", 0.25)),
    (2.2, True, ("in-progress", 0.625)),
    (2.9, False, ("finalizing", 0.99)),
    (3.0, False, ("success", 1.0)),
])
def test_view_reports_status_and_progress(now: float, warmup: bool, expect: tuple[str, float]) -> None:
    """Status and progress follow the timeline (10% warm-up, 10% finalizing of a 2 s run after a 1 s wait);
    jobs hit by the unknown-status fault say the unknown word while queued and warming up."""
    board = JobBoard(max_running=1)
    blocker, job = make_job(0, 1.0), make_job(1, 2.0, warmup=warmup)
    board.add(blocker, 0.0)
    board.add(job, 0.0, pending_s=0.1)
    board.advance(now)
    seen = view(job, now, unknown_status="rescheduling")
    assert (seen.status, seen.progress) == expect


# -- rate limit ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "burst", "times", "waits"), [
    (1.0, 1, [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]),
    (2.0, 3, [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.5]),
    (10.0, 1, [0.0, 0.05, 0.1], [0.0, 0.05, 0.0]),
    (1.0, 2, [0.0, 0.0, 100.0, 100.0, 100.0], [0.0, 0.0, 0.0, 0.0, 1.0]),
])
def test_token_bucket(rate: float, burst: int, times: list[float], waits: list[float]) -> None:
    """The bucket grants `burst` at once, then one request per 1/rate seconds; refused takes cost nothing."""
    bucket = TokenBucket(rate, burst)
    assert [bucket.take(t) for t in times] == pytest.approx(waits)


@pytest.mark.parametrize(("wait_s", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2"), (30.0, "30")])
def test_retry_after_is_whole_seconds_rounded_up(wait_s: float, header: str) -> None:
    """Retry-After is the wait in whole seconds, at least 1."""
    assert retry_after_header(wait_s) == header


# -- CDN -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "size", "expect"), [
    (None, 100, None),
    ("bytes=0-9", 100, ByteRange(0, 10)),
    ("bytes=90-", 100, ByteRange(90, 100)),
    ("bytes=90-500", 100, ByteRange(90, 100)),
    ("bytes=-10", 100, ByteRange(90, 100)),
    ("bytes=-500", 100, ByteRange(0, 100)),
    ("bytes=100-", 100, "unsatisfiable"),
    ("bytes=-0", 100, "unsatisfiable"),
    ("bytes=0-", 0, "unsatisfiable"),
    ("bytes=9-3", 100, None),
    ("bytes=0-1,5-6", 100, None),
    ("items=0-1", 100, None),
    ("bytes=-", 100, None),
])
def test_parse_range(header: str | None, size: int, expect: Any) -> None:
    """Single ranges are honoured, unsatisfiable ones flagged, anything else served whole."""
    assert parse_range(header, size) == expect


def test_url_tokens_are_signed_and_expire() -> None:
    """A token is valid until its expiry, and any change to it breaks the signature."""
    signer = UrlSigner(b"k" * 32)
    token = signer.token("asset_abc", 2000)
    assert signer.check(token, 1999).asset_id == "asset_abc"
    assert signer.check(token, 2000).problem == "expired"
    assert signer.check(token.replace("asset_abc", "asset_abd"), 1000).problem == "invalid"
    assert signer.check(token.replace(".2000.", ".9000."), 1000).problem == "invalid"
    assert UrlSigner(b"x" * 32).check(token, 1000).problem == "invalid"
    assert signer.check("garbage", 0).problem == "invalid"


# -- media ---------------------------------------------------------------------------------------


def test_output_appends_a_free_box_and_keeps_the_input() -> None:
    """The output is the input followed by one `free` box whose size field is right."""
    layout = output_layout(Layout((CLIP,)), job_id="job_1", seed=3, prompt="a fox")
    data = layout.read()
    assert data.startswith(CLIP) and len(data) == layout.size
    boxes = list(top_level_boxes(data))
    assert [b[2] for b in boxes] == [b"ftyp", b"mdat", b"free"]
    assert boxes[-1][0] + boxes[-1][1] == len(data) and b"job_1" in data[boxes[-1][0]:]


def test_output_patches_a_last_box_that_runs_to_the_end() -> None:
    """A final box with size 0 ("to the end") gets its real size so the free box stays separate."""
    source = Layout((CLIP[:16] + b"\x00\x00\x00\x00mdat" + b"payload",))
    layout = output_layout(source, job_id="job_1", seed=None, prompt="", open_box_at=open_ended_box(source))
    assert open_ended_box(source) == 16
    boxes = list(top_level_boxes(layout.read()))
    assert [(b[2], b[1]) for b in boxes][:2] == [(b"ftyp", 16), (b"mdat", 15)] and boxes[-1][2] == b"free"
    assert layout_sha256(layout) == hashlib.sha256(layout.read()).hexdigest()


def test_free_box_uses_a_64_bit_size_when_needed() -> None:
    """A free box over 4 GiB uses size=1 and a 64-bit largesize."""
    head, pad = free_box(b"x", 2**32)
    assert struct.unpack(">I4sQ", head[:16]) == (1, b"free", 2**32 + 17) and pad == Zeros(2**32)


@pytest.mark.parametrize(("start", "end"), [(0, 10), (5, 40), (20, 31), (30, 2000), (0, 3000), (2999, 3000)])
def test_layout_ranges_and_hash_match_the_materialised_bytes(start: int, end: int) -> None:
    """Slicing and hashing segments (with zero padding) give exactly what the flat bytes give."""
    layout = output_layout(Layout((CLIP,)), job_id="job_1", seed=1, prompt="p", pad_bytes=2500)
    flat = layout.read()
    chunks = b"".join(bytes(c) for c in layout.iter_range(start, end, chunk_bytes=7))
    assert chunks == flat[start:end]
    assert layout_sha256(layout, hashlib.sha256(CLIP)) == hashlib.sha256(flat).hexdigest()


def test_layout_of_plain_bytes() -> None:
    """A single-segment layout is just its bytes."""
    assert Layout((b"abc",)).read() == b"abc" and Layout((b"abc", Zeros(2))).size == 5


@pytest.mark.parametrize(("start", "end"), [(0, 100), (3, 97), (20, 30), (49, 51), (0, 0)])
async def test_file_spans_read_like_the_bytes_they_hold(tmp_path: Any, start: int, end: int) -> None:
    """Parts on disk (file spans), sliced and streamed in the loop or read in a thread, give the same bytes."""
    from pipeline.emulator.media import stream_range
    data = bytes(range(100))
    paths = [tmp_path / "a", tmp_path / "b"]
    paths[0].write_bytes(data[:50])
    paths[1].write_bytes(data[50:])
    layout = Layout(tuple(FileSpan(str(p), 0, 50) for p in paths))
    assert b"".join(bytes(c) for c in layout.iter_range(start, end, chunk_bytes=7)) == data[start:end]
    assert b"".join([bytes(c) async for c in stream_range(layout, start, end)]) == data[start:end]
    assert Layout(layout.slice(start, end)).read() == data[start:end]
    assert layout_sha256(layout) == hashlib.sha256(data).hexdigest()


# -- knobs and dice ------------------------------------------------------------------------------


@pytest.mark.parametrize("changes", [
    {"fault_reset_rate": 1.5}, {"job_time_s": -1}, {"max_running_jobs": 0}, {"rate_limit_per_s": 0},
    {"url_ttl_s": float("inf")}, {"unknown_status": "success"}, {"unknown_status": "finalizing"},
    {"rate_limit_burst": 0}, {"job_concurrency_limit": 0}, {"spending_cap_status": 500},
    {"error_message_key": "msg"}, {"jobs_list_order": "random"}, {"fault_job_canceled_rate": 2},
])
def test_knobs_reject_bad_values(changes: dict[str, Any]) -> None:
    """Out-of-range knobs are refused when the dataclass is built."""
    with pytest.raises(ValueError):
        EmulatorKnobs(**changes)


def test_apply_changes_coerces_json_numbers() -> None:
    """JSON ints are fine for float knobs; bools are not numbers; null only where optional."""
    knobs = apply_changes(EmulatorKnobs(), {"job_time_s": 1, "credits_jobs": None, "max_running_jobs": 2.0})
    assert (knobs.job_time_s, knobs.credits_jobs, knobs.max_running_jobs) == (1.0, None, 2)
    for bad in ({"job_time_s": True}, {"max_running_jobs": None}, {"nope": 1}, {"max_running_jobs": 1.5}):
        with pytest.raises(ValueError):
            apply_changes(EmulatorKnobs(), bad)


def test_dice_are_reproducible_per_kind() -> None:
    """Each fault kind draws from its own seeded stream, independent of the others."""
    knobs = EmulatorKnobs(fault_5xx_rate=0.5, fault_reset_rate=0.5)
    first, second = FaultDice(9), FaultDice(9)
    pattern = [first.hit("5xx", knobs) for _ in range(50)]
    for _ in range(7):
        second.hit("reset", knobs)  # draws of another kind do not shift this one
    assert pattern == [second.hit("5xx", knobs) for _ in range(50)]
    assert first.new_id("job") != first.new_id("job")


# -- upload bodies -------------------------------------------------------------------------------

BIG = bytes(range(256)) * 2048  # 512 KiB: over the threshold where the base64 text is cut out of the JSON


def upload_body(data: bytes, *, escape_slashes: bool = False, mime: str = "image/png", field: str = "image") -> bytes:
    text = json.dumps({"name": "a.png", field: f"data:{mime};base64,{base64.b64encode(data).decode()}"})
    return (text.replace("/", "\\/") if escape_slashes else text).encode()


@pytest.mark.parametrize("data", [CLIP, BIG, BIG + b"x", BIG + b"xy"])
@pytest.mark.parametrize("escape_slashes", [False, True])
def test_read_upload_decodes_small_big_and_escaped_bodies(data: bytes, escape_slashes: bool) -> None:
    """Any JSON encoding of the body gives back the exact bytes and their sha256 (fast or fallback path)."""
    upload = read_upload(upload_body(data, escape_slashes=escape_slashes), max_bytes=2**20)
    assert bytes(upload.data) == data and upload.digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert (upload.name, upload.kind, upload.mime_type) == ("a.png", "image", "image/png")


@pytest.mark.parametrize(("mangle", "status"), [
    (lambda b: b.replace(b"AAEC", b"AA!C", 1), 400),  # a bad character early in a big body
    (lambda b: b[:-3] + b'"}', 400),  # length no longer a multiple of 4
    (lambda b: b.replace(b"AAEC", b"AA==", 1), 400),  # padding in the middle
    (lambda b: b[:-10], 400),  # cut-off JSON
])
def test_read_upload_rejects_broken_big_bodies(mangle: Any, status: int) -> None:
    """Corruption anywhere in a big body is a 400 naming the field (or the JSON)."""
    with pytest.raises(ErrorReply) as caught:
        read_upload(mangle(upload_body(BIG)), max_bytes=2**20)
    assert caught.value.status == status


def test_read_upload_enforces_the_size_limit() -> None:
    """Decoded data over max_bytes is a 413."""
    with pytest.raises(ErrorReply) as caught:
        read_upload(upload_body(BIG), max_bytes=len(BIG) - 1)
    assert caught.value.status == 413 and "image" in caught.value.message


def test_read_upload_refuses_videos_and_big_images() -> None:
    """POST /v1/assets bodies: a video is a 400 pointing at POST /v1/uploads, so is an image at the size cap."""
    with pytest.raises(ErrorReply) as caught:
        read_upload(upload_body(CLIP, mime="video/mp4", field="video"), max_bytes=2**20)
    assert caught.value.status == 400 and "videos must be uploaded with POST /v1/uploads" in caught.value.message
    with pytest.raises(ErrorReply) as caught:
        read_upload(upload_body(BIG), max_bytes=2**30, image_max_bytes=len(BIG))
    assert caught.value.status == 400 and "POST /v1/uploads" in caught.value.message
    assert read_upload(upload_body(BIG), max_bytes=2**30, image_max_bytes=len(BIG) + 1).data == BIG
