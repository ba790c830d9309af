"""Table-driven tests of the run engine's pure parts: journal replay, backoff, Retry-After, poll schedule, names."""

from __future__ import annotations

import json
import random
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pipeline.api.answers import classify, parse_job
from pipeline.errors import AuthError, BadResponse, CreditsError, RequestRejected, TransientApiError
from pipeline.ledger.journal import Journal
from pipeline.ledger.replay import (
    DOWNLOADED,
    FAILED,
    PENDING,
    SUBMITTED,
    SUCCEEDED,
    UNKNOWN,
    LedgerState,
    SessionPacing,
    apply,
    replay,
)
from pipeline.api.retry import backoff_s, parse_retry_after
from pipeline.ledger.rundir import lost_files
from pipeline.run.schedule import DurationModel, PollTiming, first_poll_delay, next_poll_delay
from pipeline.run.storage import output_name, safe_path, slug

FILE = {"asset_id": "asset_o", "path": "videos/a.mp4", "bytes": 10, "sha256": "ab"}


@pytest.mark.parametrize(("events", "expected"), [
    ([], None),
    ([("intent", {})], UNKNOWN),
    ([("intent", {}), ("not-sent", {})], PENDING),
    ([("intent", {}), ("submitted", {"job_id": "job_1"})], SUBMITTED),
    ([("intent", {}), ("submitted", {"job_id": "job_1"}), ("succeeded", {"asset_ids": ["asset_o"]})], SUCCEEDED),
    ([("intent", {}), ("submitted", {"job_id": "j"}), ("succeeded", {"asset_ids": ["asset_o"]}),
      ("downloaded", FILE)], DOWNLOADED),
    ([("intent", {}), ("submitted", {"job_id": "j"}), ("succeeded", {"asset_ids": ["asset_o", "asset_p"]}),
      ("downloaded", FILE)], SUCCEEDED),
    ([("intent", {}), ("submitted", {"job_id": "j"}), ("succeeded", {"asset_ids": ["asset_o"]}),
      ("downloaded", FILE), ("file-lost", {"asset_id": "asset_o"})], SUCCEEDED),
    ([("intent", {}), ("failed", {"reason": "rejected", "error": "bad"})], FAILED),
    ([("intent", {}), ("failed", {"reason": "rejected"}), ("reset", {})], PENDING),
    ([("intent", {}), ("submitted", {"job_id": "j"}), ("succeeded", {"asset_ids": ["asset_o"]}),
      ("failed", {"reason": "download"}), ("retry-download", {})], SUCCEEDED),
])
def test_replay_states(events: list[tuple[str, dict]], expected: str | None) -> None:
    """Each event sequence leaves the job in the state the journal's state machine defines."""
    state = LedgerState()
    for number, (kind, fields) in enumerate(events):
        apply(state, {"t": float(number), "ev": kind, "key": "k1", **fields})
    if expected is None:
        assert "k1" not in state.jobs
    else:
        assert state.jobs["k1"].state == expected
        assert state.counts()[expected] == 1
        assert sum(state.counts().values()) == 1


def test_request_counts_add_up_over_sessions() -> None:
    """API request totals are summed across sessions from the running per-session counts."""
    state = LedgerState()
    for event in ({"ev": "run"}, {"ev": "requests", "count": 5}, {"ev": "requests", "count": 9},
                  {"ev": "run"}, {"ev": "requests", "count": 4}):
        apply(state, event)
    assert state.api_requests == 13


async def test_journal_tolerates_a_torn_last_line(tmp_path: Path) -> None:
    """A crash mid-write leaves a torn line: it is ignored on replay and cut before new appends."""
    path = tmp_path / "ledger.jsonl"
    journal = Journal(path)
    await journal.write("intent", key="k1", attempt=1)
    await journal.write("submitted", key="k1", job_id="job_1")
    journal.close()
    with path.open("ab") as handle:
        handle.write(b'{"t": 1, "ev": "succeeded", "key": "k1", "asset_')
    assert replay(path).jobs["k1"].state == SUBMITTED
    journal = Journal(path)
    await journal.write("status", key="k1", status="in-progress", progress=0.5)
    journal.close()
    lines = path.read_bytes().splitlines()
    assert all(json.loads(line) for line in lines)
    assert replay(path).jobs["k1"].server_status == "in-progress"


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (10, 30.0, 60.0)])
def test_backoff_grows_exponentially_with_jitter_and_a_cap(attempt: int, low: float, high: float) -> None:
    """Backoff is uniform in [d/2, d] with d = base * 2**(attempt-1), capped at max."""
    rng = random.Random(1)
    for _ in range(50):
        assert low <= backoff_s(attempt, base_s=1.0, max_s=60.0, rng=rng) <= high


NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("", None), ("3", 3.0), ("0.5", 0.5), ("-4", 0.0), ("junk", None), ("99999", 3600.0),
    ("Thu, 01 Jan 2026 12:00:07 GMT", 7.0), ("Thu, 01 Jan 2026 11:00:00 GMT", 0.0),
])
def test_retry_after_parsing(header: str | None, expected: float | None) -> None:
    """Retry-After is read as seconds or an HTTP date, clamped to [0, 1 h]; junk is ignored."""
    assert parse_retry_after(header, now=NOW) == expected


@pytest.mark.parametrize(("status", "body", "kind"), [
    (429, "{}", TransientApiError), (500, "<html>oops</html>", TransientApiError), (503, "", TransientApiError),
    (401, '{"error": "Unauthorized"}', AuthError), (403, "{}", AuthError),
    (402, '{"error": "Insufficient credits"}', CreditsError),
    (400, '{"error": "not enough credits left"}', CreditsError),
    (400, '{"error": "videoStrength out of range"}', RequestRejected), (422, "{}", RequestRejected),
])
def test_error_statuses_map_to_the_exception_tree(status: int, body: str, kind: type) -> None:
    """Every error status maps to the exception that decides retry, fail-the-job or stop-the-run."""
    assert type(classify(status, body, None, "u")) is kind


@pytest.mark.parametrize("body", [None, [], {"job": None}, {"job": {"jobId": 3, "status": "x"}},
                                  {"job": {"jobId": "j", "status": "success", "metadata": {"assetIds": "a"}}}])
def test_malformed_job_answers_are_bad_responses(body: object) -> None:
    """A job answer of the wrong shape raises BadResponse (retried), never a KeyError."""
    with pytest.raises(BadResponse):
        parse_job(body)


def test_job_answer_is_read_tolerantly() -> None:
    """Status is lower-cased, a percentage progress becomes a fraction, the error is found in metadata."""
    view = parse_job({"job": {"jobId": "j", "status": "Failure", "progress": 40,
                              "metadata": {"error": "GPU fell over"},
                              "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:05Z"}})
    assert (view.status, view.progress, view.error, view.duration_s) == ("failure", 0.4, "GPU fell over", 5.0)


TIMING = PollTiming(first_delay_s=5.0, min_interval_s=0.5, max_interval_s=30.0)


def _model(*durations: float) -> DurationModel:
    model = DurationModel()
    for d in durations:
        model.observe(d)
    return model


@pytest.mark.parametrize(("durations", "expected"), [((), 5.0), ((10.0,), 10.0), ((8, 9, 10, 11, 12), 11.0),
                                                     ((100.0,), 30.0), ((0.1,), 0.5)])
def test_first_poll_waits_for_a_typical_job(durations: tuple[float, ...], expected: float) -> None:
    """The first poll comes when 80% of jobs like it are done (clamped), or after first_delay_s."""
    assert first_poll_delay(_model(*durations), TIMING) == expected


@pytest.mark.parametrize(("elapsed", "status", "progress", "polls", "durations", "expected"), [
    (10.0, "in-progress", 0.5, 1, (), 10.5),  # half done after 10 s: about 10 s left
    (9.0, "in-progress", 0.9, 1, (), 1.05),
    (4.0, "queued", None, 1, (10.0,), 6.0),  # typical job takes 10 s
    (12.0, "queued", None, 1, (10.0,), 3.75),  # past typical: back off from a quarter of it
    (12.0, "warming-up", None, 3, (10.0,), 8.4375),
    (5.0, "queued", None, 1, (), 7.5),  # nothing learnt yet: geometric from first_delay_s
    (5.0, "queued", None, 20, (), 30.0),
])
def test_next_poll_uses_progress_and_history(elapsed: float, status: str, progress: float | None, polls: int,
                                             durations: tuple[float, ...], expected: float) -> None:
    """Later polls estimate the time left from progress, else from observed durations, else back off."""
    got = next_poll_delay(elapsed_s=elapsed, status=status, progress=progress, polls=polls,
                          model=_model(*durations), timing=TIMING)
    assert got == pytest.approx(expected)


@pytest.mark.parametrize(("prompt", "swept", "expected"), [
    ("A fantasy landscape", {"videoStrength": 0.8}, "00007_a-fantasy-landscape_videoStrength=0.8_s3.mp4"),
    ("../../etc/passwd\x00", {}, "00007_etc-passwd_s3.mp4"),
    ("<b>Ünïcode</b> 🎬🎬", {"modality": "depth", "enhancePrompt": True},
     "00007_b-unicode-b_modality=depth_enhancePrompt=true_s3.mp4"),
    ("", {"aspectRatio": "16:9"}, "00007_x_aspectRatio=16-9_s3.mp4"),
    ("x" * 500, {f"k{i}": "v" * 30 for i in range(20)}, None),
])
def test_output_names_are_safe(prompt: str, swept: dict, expected: str | None) -> None:
    """Names keep index, prompt slug, swept values and seed, using only safe characters, at most 120 long."""
    name = output_name(7, prompt, swept, 3)
    if expected is not None:
        assert name == expected
    assert len(name) <= 120 and "/" not in name and "\\" not in name and ".." not in name
    assert name.startswith("00007_") and name.endswith("_s3.mp4")


@pytest.mark.parametrize("relative", ["../x.mp4", "/etc/passwd", "videos/../../x", ".", ""])
def test_paths_cannot_escape_the_run_folder(tmp_path: Path, relative: str) -> None:
    """safe_path refuses anything that resolves outside the run folder."""
    from pipeline.errors import PipelineError

    with pytest.raises(PipelineError):
        safe_path(tmp_path, relative)


def test_slug_is_bounded() -> None:
    """A slug never exceeds its length and never ends in a dash."""
    assert slug("hello " * 50, 20) == "hello-hello-hello-he"
    assert not slug("ab " * 30, 10).endswith("-")


def test_lost_files_lists_missing_resized_and_unsafe_records(tmp_path: Path) -> None:
    """One listing per folder finds files missing, of another size, in a missing folder, or recorded outside."""
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "a.mp4").write_bytes(b"x" * 10)
    (tmp_path / "videos" / "b.mp4").write_bytes(b"x" * 9)
    (tmp_path / "videos" / "link.mp4").symlink_to(tmp_path / "videos" / "a.mp4")
    (tmp_path / "top.mp4").write_bytes(b"x" * 3)
    records = [("ok", "videos/a.mp4", 10), ("resized", "videos/b.mp4", 10), ("missing", "videos/c.mp4", 10),
               ("link", "videos/link.mp4", 10), ("top", "top.mp4", 3), ("no-folder", "gone/a.mp4", 10),
               ("outside", "../videos/a.mp4", 10), ("absolute", str(tmp_path / "videos" / "a.mp4"), 10)]
    assert lost_files(tmp_path, records) == {"resized", "missing", "no-folder", "outside", "absolute"}
    assert lost_files(tmp_path, []) == set()


def test_requests_events_carry_the_sessions_429s_and_sending_rate() -> None:
    """The last "requests" event of a session gives its 429s and rate; a new session starts with none; junk is None."""
    state = LedgerState()
    apply(state, {"t": 1.0, "ev": "run"})
    assert state.session_pacing is None
    apply(state, {"t": 2.0, "ev": "requests", "count": 10, "throttled": 3, "rate_cuts": 2,
                  "sending_per_s": 47.5, "lowest_sending_per_s": 33.2})
    assert state.session_pacing == SessionPacing(3, 2, 47.5, 33.2) and state.api_requests == 10
    apply(state, {"t": 3.0, "ev": "requests", "count": 12})  # an older tool's event: counts only
    assert state.session_pacing == SessionPacing(0, 0, None, None) and state.api_requests == 12
    apply(state, {"t": 4.0, "ev": "requests", "count": 13, "throttled": "x", "rate_cuts": -1,
                  "sending_per_s": True, "lowest_sending_per_s": "x"})
    assert state.session_pacing == SessionPacing(0, 0, None, None)
    apply(state, {"t": 5.0, "ev": "run"})
    assert state.session_pacing is None and state.api_requests == 13


@pytest.mark.parametrize(("status", "body", "kind", "extra"), [
    (429, '{"error": "Too many jobs", "details": {"actionName": "model_run", "actionLimit": 4}}',
     "ConcurrencyLimited", {"limit": 4}),
    (429, '{"details": {"actionName": "model_run"}}', "ConcurrencyLimited", {"limit": None}),
    (429, '{"error": "cooling down", "remainingSeconds": 2400}', "CooldownApiError", {"retry_after_s": 2400.0}),
    (429, '{"remainingSeconds": "90"}', "CooldownApiError", {"retry_after_s": 90.0}),
    (429, '{"remainingSeconds": -5}', "TransientApiError", {"retry_after_s": None}),
    (429, "Too Many Requests", "TransientApiError", {"retry_after_s": None}),
    (403, '{"name": "ModelAccessRestrictedError", "message": "no access", "modelId": "model_x", '
          '"requiredPlan": "pro"}', "ModelAccessRestricted", {"required_plan": "pro", "model_id": "model_x"}),
    (403, '{"error": "Forbidden"}', "AuthError", {}),
    (403, '{"message": "Your API key reached its CU spending cap"}', "CreditsError", {}),
    (400, '{"reason": "not enough credits"}', "CreditsError", {}),
    (402, '{}', "CreditsError", {}),
    (400, '{"detail": "bad prompt", "traceId": "tr-42"}', "RequestRejected", {"trace_id": "tr-42", "message": "bad prompt"}),
    (422, '{"message": "x", "trace_id": 7}', "RequestRejected", {"trace_id": "7"}),
])
def test_classify_tells_the_three_429s_access_and_credits_apart(status: int, body: str, kind: str,
                                                                 extra: dict[str, object]) -> None:
    """Error answers map to the exception the pipeline acts on, keeping the cap, wait, plan and trace id."""
    from pipeline.api.answers import classify

    error = classify(status, body, None, "http://api/v1/x")
    assert type(error).__name__ == kind
    for name, value in extra.items():
        assert getattr(error, name) == value, name


def test_a_cooldown_pause_is_shown_with_its_reason_and_time_left() -> None:
    """The budget says what every request waits for, with a countdown, and nothing once it is over."""
    from pipeline.api.budget import RequestBudget

    budget = RequestBudget(10.0)
    assert budget.waiting is None
    budget.pause(2400.0, reason="cooldown (429)")
    budget.pause(1.0, reason="rate limit (429)")  # a shorter pause does not replace the longer one
    assert budget.waiting in ("cooldown (429): 40:00 left", "cooldown (429): 39:59 left")


def test_eager_polling_looks_sooner_when_jobs_wait_for_places() -> None:
    """With jobs waiting for an in-flight place, the first poll comes at the first decile, a late job is polled
    again after 2% of the typical time (not a quarter), and nothing learnt yet is not a 1.5 x first_delay wait."""
    model = _model(*[10.0 + i * 0.1 for i in range(11)])  # 10.0 .. 11.0 s
    timing = PollTiming(first_delay_s=5.0, min_interval_s=0.05, max_interval_s=30.0)
    assert first_poll_delay(model, timing, eager=True) == 10.1
    assert first_poll_delay(model, timing) == 10.8
    late = {"elapsed_s": 12.0, "status": "in-progress", "progress": None, "polls": 1, "model": model, "timing": timing}
    assert next_poll_delay(**late, eager=True) == pytest.approx(10.5 * 0.02 * 1.5)
    assert next_poll_delay(**late) == pytest.approx(10.5 * 0.25 * 1.5)
    blank = {**late, "model": _model()}
    assert next_poll_delay(**blank, eager=True) == pytest.approx(5.0 * 0.02 * 1.5)
