"""The named predicates over a job's replayed state (`JobState`) and over counts by state: one definition each,
read by produce, status and the summary alike."""

from __future__ import annotations

import pytest

from pipeline.ledger.replay import (
    DOWNLOAD_FAILED,
    DOWNLOADED,
    FAILED,
    FINISHED,
    PENDING,
    POLL_NOT_FOUND,
    POLL_TIMEOUT,
    STATES,
    SUBMITTED,
    SUCCEEDED,
    UNFINISHED,
    UNKNOWN,
    UPLOAD_FAILED,
    JobState,
    LedgerState,
    apply,
    count_in,
)

PREDICATES = ("upload_failed", "download_failed", "generation_failed", "to_poll", "to_download", "polling_gave_up")


@pytest.mark.parametrize(("state", "error_kind", "job_id", "asset_ids", "true"), [
    (PENDING, None, None, [], set()),
    (UNKNOWN, None, None, [], set()),
    (SUBMITTED, None, "job_1", [], {"to_poll"}),
    (SUBMITTED, None, None, [], set()),  # no job id to poll
    (SUBMITTED, POLL_TIMEOUT, "job_1", [], {"to_poll", "polling_gave_up"}),
    (SUBMITTED, POLL_NOT_FOUND, "job_1", [], {"to_poll", "polling_gave_up"}),
    (SUCCEEDED, None, "job_1", ["asset_1"], {"to_download"}),
    (SUCCEEDED, None, "job_1", [], set()),  # no outputs known
    (DOWNLOADED, None, "job_1", ["asset_1"], set()),
    (FAILED, DOWNLOAD_FAILED, "job_1", ["asset_1"], {"download_failed"}),
    (FAILED, DOWNLOAD_FAILED, "job_1", [], set()),  # nothing known to fetch; paid, so never --retry-failed either
    (FAILED, UPLOAD_FAILED, None, [], {"upload_failed"}),
    (FAILED, "rejected", None, [], {"generation_failed"}),
    (FAILED, "submit", None, [], {"generation_failed"}),
    (FAILED, "job-failed", "job_1", [], {"generation_failed"}),
    (FAILED, None, None, [], {"generation_failed"}),
])
def test_job_state_predicates(state: str, error_kind: str | None, job_id: str | None, asset_ids: list[str],
                              true: set[str]) -> None:
    """Each predicate holds for exactly the states it names (and a failed job is failed in exactly one way)."""
    job = JobState("k1", state=state, error_kind=error_kind, job_id=job_id, asset_ids=asset_ids)
    assert {name for name in PREDICATES if getattr(job, name)} == true


def test_a_download_that_gave_up_is_download_failed_until_retried() -> None:
    """The journal's events make a failed download `download_failed`; its retry makes it `to_download` again."""
    state = LedgerState()
    events = [("intent", {}), ("submitted", {"job_id": "job_1"}), ("succeeded", {"asset_ids": ["asset_1"]}),
              ("failed", {"reason": DOWNLOAD_FAILED, "error": "gave up"})]
    for number, (kind, fields) in enumerate(events):
        apply(state, {"t": float(number), "ev": kind, "key": "k1", **fields})
    job = state.jobs["k1"]
    assert job.download_failed and not job.generation_failed and not job.to_download
    apply(state, {"t": 9.0, "ev": "retry-download", "key": "k1"})
    assert job.to_download and not job.download_failed


@pytest.mark.parametrize(("states", "expected"), [(FINISHED, 2 + 5), (UNFINISHED, 1 + 3 + 4), (STATES, 21)])
def test_count_in_sums_the_named_states(states: tuple[str, ...], expected: int) -> None:
    """count_in adds up the jobs in the named states; unknown jobs are neither finished nor unfinished."""
    counts = {PENDING: 1, UNKNOWN: 6, SUBMITTED: 3, SUCCEEDED: 4, DOWNLOADED: 2, FAILED: 5}
    assert count_in(counts, states) == expected
