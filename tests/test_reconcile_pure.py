"""Reconciling a lost POST with the server's listing: the pure rules (what matches, the window, settling)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from pipeline.run.reconcile import ListedJob, assign, is_custom, listed_job, listing_start, matches, same, settled

MODEL = "model_ltx-2-19b-video-to-video"
BODY = {"prompt": "a fox", "video": "asset_1", "videoStrength": 0.5, "numInferenceSteps": 40, "seed": 7,
        "enhancePrompt": False}


@pytest.mark.parametrize(("server_input", "expected"), [
    ({**BODY, "modelId": MODEL, "numOutputs": 1}, True),  # the server adds keys of its own
    ({**BODY, "numInferenceSteps": 40.0, "modelId": MODEL}, True),  # 40 == 40.0
    ({**BODY, "modelId": "model_other"}, False),
    ({**BODY, "seed": 8, "modelId": MODEL}, False),
    ({k: v for k, v in BODY.items() if k != "seed"} | {"modelId": MODEL}, False),  # a key we sent is missing
    ({**BODY, "enhancePrompt": 0, "modelId": MODEL}, False),  # False is not 0
    ({**BODY, "video": "asset_2"}, False),
    (dict(BODY), True),  # no modelId in the input: the parameters decide
])
def test_a_server_job_matches_when_it_holds_every_key_we_sent(server_input: dict, expected: bool) -> None:
    """Our model and every key we sent with an equal value; extra server keys do not matter."""
    assert matches(MODEL, BODY, server_input) is expected


@pytest.mark.parametrize(("ours", "theirs", "expected"), [
    (1, 1.0, True), (0.1 + 0.2, 0.3, True), (True, 1, False), ("1", 1, False), ([1, 2], [1.0, 2], True),
    ({"a": 1}, {"a": 1.0}, True), ({"a": 1}, {"a": 1, "b": 2}, False), (None, None, True),
])
def test_values_compare_as_json(ours: object, theirs: object, expected: bool) -> None:
    """Numbers by value, booleans by type and value, containers element by element."""
    assert same(ours, theirs) is expected


def test_the_window_starts_before_the_earliest_intent_by_the_clock_skew() -> None:
    """createdAfter is the earliest intent less the skew allowance, in UTC ISO 8601."""
    t = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone.utc).timestamp()
    assert listing_start([t + 50, t, t + 10], skew_s=300) == "2026-11-30T11:55:00.000Z"


def test_listed_rows_are_read_tolerantly() -> None:
    """A row without metadata.input is kept (fetched by id later); one without a job id is not a row."""
    row = {"jobId": "job_1", "jobType": "custom", "createdAt": "2026-11-30T12:00:00.000Z",
           "metadata": {"input": {"prompt": "x"}}}
    job = listed_job(row)
    assert job is not None and job.input == {"prompt": "x"} and is_custom(job)
    bare = listed_job({"jobId": "job_2", "jobType": "upload"})
    assert bare is not None and bare.input is None and not is_custom(bare)
    assert listed_job({"status": "success"}) is None and listed_job("junk") is None


def test_a_recent_post_is_not_settled() -> None:
    """Absence proves nothing for a POST younger than the settle time."""
    assert not settled(100.0, 150.0, settle_s=60) and settled(100.0, 160.0, settle_s=60)


def test_each_server_job_goes_to_one_lost_post_the_closest_first() -> None:
    """A body that is a subset of another's does not take the other's job; extra matches follow the closest."""
    small = {"prompt": "a fox", "seed": 7}
    large = {**small, "negativePrompt": "blur"}
    spec = {"model": MODEL}
    jobs = [ListedJob("job_large", None, "custom", {**large, "modelId": MODEL, "numOutputs": 1}),
            ListedJob("job_small", None, "custom", {**small, "modelId": MODEL}),
            ListedJob("job_small_again", None, "custom", {**small, "modelId": MODEL, "numOutputs": 1}),
            ListedJob("job_bare", None, "custom", None)]
    made = assign({"k_small": {"request": small, "spec": spec}, "k_large": {"request": large, "spec": spec},
                   "k_lost": {"request": {"prompt": "never made", "seed": 1}, "spec": spec}}, jobs)
    assert [j.job_id for j in made["k_large"]] == ["job_large"]
    assert [j.job_id for j in made["k_small"]] == ["job_small", "job_small_again"]
    assert "k_lost" not in made
