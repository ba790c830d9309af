"""The pure parts of following the job listing: the cursor, listed rows, the listing's interval, when a silent
job is polled on its own, and when the listing counts as unreliable."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.api.answers import iso_z, stamp_s
from pipeline.run.cursor import FeedCursor, read_row, unreliable
from pipeline.run.resolve import gather_s
from pipeline.run.schedule import DurationModel, PollTiming, feed_interval, verify_delay

TIMING = PollTiming(first_delay_s=5.0, min_interval_s=1.0, max_interval_s=30.0, feed_interval_s=2.0)


def model_of(*durations_s: float) -> DurationModel:
    model = DurationModel()
    for duration_s in durations_s:
        model.observe(duration_s)
    return model


@pytest.mark.parametrize(("durations", "eager", "rate", "expected_s"), [
    ((), False, 10.0, 2.0),  # calm: feed_interval_s
    ((100.0,), False, 10.0, 2.0),
    ((), True, 10.0, 0.3),  # jobs wait for a place, nothing learnt: every third request of the budget
    ((5.0,), True, 10.0, 0.3),  # 2% of 5 s is less than the budget allows
    ((5.0,), True, 200.0, 0.1),  # at 200/s, 2% of a typical job
    ((60.0,), True, 5.0, 1.2),  # long jobs: 2% of 60 s
    ((500.0,), True, 5.0, 2.0),  # never less often than feed_interval_s
    ((), True, 1000.0, 0.05),  # never more often than every 50 ms
])
def test_feed_interval(durations: tuple[float, ...], eager: bool, rate: float, expected_s: float) -> None:
    """One listing every feed_interval_s; sooner when a finish noticed late costs time, within a third of the
    budget and 2% of a typical job's time."""
    assert feed_interval(model_of(*durations), TIMING, eager=eager, requests_per_s=rate) == pytest.approx(expected_s)


@pytest.mark.parametrize(("durations", "checks", "expected_s"), [
    ((), 0, 15.0),  # nothing learnt: three times poll_first_delay_s
    ((), 1, 22.5),  # half as long again after each poll that found it running
    ((10.0, 20.0, 30.0), 0, 60.0),  # twice the 90th percentile of observed durations
    ((10.0, 20.0, 30.0), 2, 135.0),
    ((0.5,), 0, 6.0),  # never under three listings (3 x feed_interval_s)
])
def test_verify_delay(durations: tuple[float, ...], checks: int, expected_s: float) -> None:
    """A job the listing leaves silent is polled on its own after much longer than jobs like it take."""
    assert verify_delay(model_of(*durations), TIMING, checks=checks) == pytest.approx(expected_s)


def test_cursor_starts_before_the_session_and_follows_the_newest_update_less_the_overlap() -> None:
    """The first listing starts CLOCK_SKEW_S before the session; each next one at the newest updatedAt seen less
    the overlap, never earlier than the last; rows in any order."""
    cursor = FeedCursor.starting(1000.0, overlap_s=2.0, skew_s=300.0)
    assert (cursor.start_s, cursor.after_s) == (700.0, 700.0)
    cursor.advance([])  # an empty listing moves nothing
    assert cursor.after_s == 700.0
    cursor.advance([990.0, 1010.0, 1000.0])  # the newest wherever it is in the page
    assert cursor.after_s == 1008.0
    cursor.advance([1005.0])  # rows older than the cursor (listed again by the overlap) never move it back
    assert cursor.after_s == 1008.0


@pytest.mark.parametrize(("updated_s", "missed"), [
    (None, False),  # no stamp: no proof
    (650.0, False),  # before this session's first listing: a job of an earlier session
    (900.0, True),  # inside what the listings covered
    (1008.0, True),
    (1008.5, False),  # newer than the cursor: the next listing shows it
])
def test_cursor_missed(updated_s: float | None, missed: bool) -> None:
    """A change counts as missed only when the listings had moved past it within this session."""
    cursor = FeedCursor.starting(1000.0, overlap_s=2.0, skew_s=300.0)
    cursor.advance([1010.0])
    assert cursor.missed(updated_s) is missed


def row(status: str, metadata: Any = None, **extra: Any) -> dict[str, Any]:
    body = {"jobId": "job_1", "status": status, "createdAt": "2025-01-02T03:04:00.000Z",
            "updatedAt": "2025-01-02T03:04:05.500Z", **extra}
    if metadata is not None:
        body["metadata"] = metadata
    return body


@pytest.mark.parametrize(("listed", "final", "complete"), [
    (row("success", {"assetIds": ["asset_1"]}), True, True),
    (row("success", {}), True, False),  # results not carried by listed rows: fetch by id
    (row("success"), True, False),
    (row("success", {"assetIds": []}), True, False),  # a success without outputs: ask the job itself
    (row("failure", {"assetIds": [], "error": "boom"}), True, True),
    (row("failure", {"error": "boom"}), True, False),
    (row("Canceled", {"assetIds": []}), True, True),  # statuses compared case-insensitively
    (row("in-progress", {}), False, False),
    (row("rescheduling", {}), False, False),  # an unknown word is running
])
def test_read_row(listed: dict[str, Any], final: bool, complete: bool) -> None:
    """A listed row says whether the job ended and whether it carries the results a finished job needs."""
    seen = read_row(listed)
    assert seen is not None and seen.view.job_id == "job_1"
    assert (seen.final, seen.complete) == (final, complete)
    assert seen.view.updated_s == stamp_s("2025-01-02T03:04:05.500Z")


@pytest.mark.parametrize("junk", [{}, {"jobId": 3, "status": "success"}, {"jobId": "job_1"},
                                  row("success", {"assetIds": [1]})])
def test_read_row_junk(junk: dict[str, Any]) -> None:
    """A row that is not a job answer is skipped."""
    assert read_row(junk) is None


@pytest.mark.parametrize(("missed", "seen", "verdict"), [
    (0, 0, False), (2, 0, False),  # one or two can be bad luck
    (3, 0, True), (3, 297, True),  # three, and at least 1% of the finished jobs
    (3, 298, False), (10, 990, True), (10, 991, False),
])
def test_unreliable(missed: int, seen: int, verdict: bool) -> None:
    """auto falls back after a few missed jobs, unless they are a tiny share of those the listing showed."""
    assert unreliable(missed, seen) is verdict


@pytest.mark.parametrize(("text", "unix_s"), [
    ("1970-01-01T00:00:01.500Z", 1.5), ("1970-01-01T00:00:01.500+00:00", 1.5),
    ("1970-01-01T00:00:01", 1.0),  # no zone: UTC
    ("yesterday", None), (None, None), (12, None),
])
def test_stamps(text: Any, unix_s: float | None) -> None:
    """API dates read as Unix time; written back with milliseconds and a Z."""
    assert stamp_s(text) == unix_s
    if unix_s is not None:
        assert iso_z(unix_s) == "1970-01-01T00:00:0" + ("1.500Z" if unix_s == 1.5 else "1.000Z")


@pytest.mark.parametrize(("rate", "expected_s"), [(200.0, 1.0), (50.0, 1.0), (25.0, 2.0), (10.0, 5.0), (5.0, 5.0),
                                                  (0.0, 5.0)])
def test_get_bulk_batches_gather_for_fifty_requests_of_the_budget(rate: float, expected_s: float) -> None:
    """A batch of URL lookups waits about fifty requests' worth of the budget for more ids: 1 to 5 s."""
    assert gather_s(rate) == pytest.approx(expected_s)


@pytest.mark.parametrize(("used", "expected_s"), [(0.0, 0.5), (0.49, 0.5), (0.5, 5.0), (1.0, 5.0)])
def test_get_bulk_batches_leave_within_half_a_second_while_the_budget_has_room(used: float,
                                                                              expected_s: float) -> None:
    """At 10 requests/s a batch gathers 5 s while the last seconds used half the budget or more, 0.5 s below."""
    assert gather_s(10.0, used) == pytest.approx(expected_s)

