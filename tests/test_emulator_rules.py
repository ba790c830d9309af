"""The emulator's pure rules added for issue 11: job statuses, prices, listing, the 429s, uploads, part URLs, model."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from multidict import MultiDict

from pipeline.emulator.gates import Cooldown, access_refusal, concurrency_refusal, cooldown_reply, spending_refusal
from pipeline.emulator.jobs import Job, JobBoard, history
from pipeline.emulator.listing import JobQuery, Row, parse_query, select
from pipeline.emulator.model import model_json
from pipeline.emulator.multipart import MultipartUpload, parts_problem
from pipeline.emulator.pricing import cost_answer, price_cu
from pipeline.emulator.replies import ErrorReply
from pipeline.emulator.s3 import MIN_PART_BYTES, PartSigner, S3Error
from pipeline.manifest.params import PARAMS

# -- statuses --------------------------------------------------------------------------------------


def timeline(*, pending_s: float = 0.0, blocked_s: float = 0.0, run_s: float = 1.0, fate: str = "success",
             warmup: bool = False) -> list[tuple[str, float]]:
    board = JobBoard(max_running=1)
    if blocked_s:
        board.add(Job("job_0", "m", {}, {}, 0.0, blocked_s, "asset_0"), 0.0)
    job = Job("job_1", "m", {}, {}, 0.0, run_s, "asset_1", fate=fate, warmup=warmup)
    board.add(job, 0.0, pending_s=pending_s)
    board.advance(100.0)
    return [(status, round(at_s, 6)) for status, at_s in history(job, unknown_status="rescheduling")]


@pytest.mark.parametrize(("shape", "expect"), [
    ({}, [("warming-up", 0.0), ("in-progress", 0.1), ("finalizing", 0.9), ("success", 1.0)]),
    ({"pending_s": 0.2}, [("pending", 0.0), ("warming-up", 0.2), ("in-progress", 0.3), ("finalizing", 1.1),
                          ("success", 1.2)]),
    ({"pending_s": 0.2, "blocked_s": 0.5}, [("pending", 0.0), ("queued", 0.2), ("warming-up", 0.5),
                                            ("in-progress", 0.6), ("finalizing", 1.4), ("success", 1.5)]),
    ({"fate": "failure"}, [("warming-up", 0.0), ("in-progress", 0.1), ("finalizing", 0.9), ("failure", 1.0)]),
    ({"fate": "canceled", "run_s": 0.0}, [("canceled", 0.0)]),
    ({"warmup": True, "blocked_s": 0.5}, [("rescheduling", 0.0), ("in-progress", 0.6), ("finalizing", 1.4),
                                          ("success", 1.5)]),
])
def test_status_history_follows_the_timeline(shape: dict[str, Any], expect: list[tuple[str, float]]) -> None:
    """pending -> queued -> warming-up -> in-progress -> finalizing -> final; statuses that last no time are
    left out (a free slot skips queued); the unknown-status fault renames queued and warming-up."""
    assert timeline(**shape) == expect


# -- prices ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "cu"), [
    ({}, 20),
    ({"prompt": "x", "video": "asset_1"}, 20),
    ({"duration": 10}, 40),
    ({"duration": 3, "numInferenceSteps": 20}, 6),
    ({"resolution": "1080p"}, 45),
    ({"resolution": "2160p", "duration": 20}, 720),
    ({"width": 1920, "height": 1080}, 45),
    ({"width": 64, "height": 64, "numInferenceSteps": 1}, 1),
    ({"duration": "ten", "resolution": 5, "numInferenceSteps": True}, 20),
    ("not an object", 20),
])
def test_price_model(params: Any, cu: int) -> None:
    """ceil(4 CU/s x seconds (5 when absent) x pixels factor x steps/40): deterministic, whole CU, never 0."""
    assert price_cu(params, cu_per_second=4.0) == cu


def test_cost_answer_has_the_sdk_keys() -> None:
    """creativeUnitsCost, creativeUnitsDiscount and costDetails keyed like the SDK's CostDetails."""
    assert cost_answer(20) == {"creativeUnitsCost": 20, "creativeUnitsDiscount": 0,
                               "costDetails": {"custom-generation": 20}}


# -- GET /v1/jobs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "named"), [
    ({"pageSize": "0"}, "pageSize"), ({"pageSize": "101"}, "pageSize"), ({"pageSize": "ten"}, "pageSize"),
    ({"status": "done"}, "status"), ({"type": "video"}, "types"), ({"hideResults": "yes"}, "hideResults"),
    ({"createdAfter": "yesterday"}, "createdAfter"), ({"paginationToken": "nope"}, "paginationToken"),
    ({"createdAfter": "2025-01-01T00:00:00Z", "status": "success"}, "createdAfter"),
    ({"createdAfter": "2025-01-01T00:00:00Z", "type": "custom"}, "createdAfter"),
    ({"createdAfter": "2025-01-01T00:00:00Z", "workflowId": "w"}, "createdAfter"),
    ({"updatedAfter": "2025-01-01T00:00:00Z"}, "updatedAfter"),
    ({"updatedAfter": "2025-01-01T00:00:00Z", "authorId": "a"}, "updatedAfter"),
])
def test_listing_query_rules(query: dict[str, str], named: str) -> None:
    """Bad values and the date-filter rules of the notes are a 400 naming the parameter."""
    with pytest.raises(ErrorReply) as caught:
        parse_query(MultiDict(query))
    assert caught.value.status == 400 and named in caught.value.message


def test_listing_query_reads_types_comma_separated_or_repeated() -> None:
    """`types` wins over `type`; comma-separated (as scenario-sdk sends it) or repeated; defaults 50."""
    assert parse_query(MultiDict([("types", "custom,upload"), ("type", "inference")])).types == ("custom", "upload")
    assert parse_query(MultiDict([("types", "custom"), ("types", "upload")])).types == ("custom", "upload")
    checked = parse_query(MultiDict({"type": "custom", "updatedAfter": "2025-01-01T00:00:00+00:00"}))
    assert checked.types == ("custom",) and checked.by_update and checked.page_size == 50


ROWS = [Row(f"job_{i}", "custom", "success" if i % 2 else "in-progress", 1000.0 + i, 2000.0 - i) for i in range(7)]


def ids(rows: list[Row]) -> list[str]:
    return [row.job_id for row in rows]


def test_listing_sorts_by_creation_or_update_date_and_pages_with_tokens() -> None:
    """Without status/type rows go by creation date, with them by update date; tokens walk every row once."""
    page, token = select(ROWS, JobQuery(page_size=3), author_id="me", now_s=3000.0, newest_first=True)
    assert ids(page) == ["job_6", "job_5", "job_4"] and token
    seen = ids(page)
    while token:
        page, token = select(ROWS, parse_query(MultiDict({"pageSize": "3", "paginationToken": token})),
                             author_id="me", now_s=3000.0, newest_first=True)
        seen += ids(page)
    assert seen == [f"job_{i}" for i in range(6, -1, -1)]
    page, _ = select(ROWS, JobQuery(types=("custom",)), author_id="me", now_s=3000.0, newest_first=False)
    assert ids(page) == [f"job_{i}" for i in range(6, -1, -1)]  # oldest update first: the last created


@pytest.mark.parametrize(("query", "expect"), [
    (JobQuery(status="success"), ["job_1", "job_3", "job_5"]),
    (JobQuery(created_after_s=1004.0), ["job_5", "job_6"]),
    (JobQuery(types=("custom",), updated_after_s=1997.0), ["job_0", "job_1", "job_2"]),
    (JobQuery(types=("upload",)), []),
    (JobQuery(workflow_id="wf_1"), []),
    (JobQuery(author_id="someone else"), []),
    (JobQuery(author_id="me"), [f"job_{i}" for i in range(7)]),
])
def test_listing_filters(query: JobQuery, expect: list[str]) -> None:
    """status, type(s), workflowId, authorId and the date filters select rows (listed oldest first here)."""
    assert sorted(ids(select(ROWS, query, author_id="me", now_s=3000.0, newest_first=False)[0])) == expect


def test_listing_keeps_30_days_with_author_id_or_hide_results_false() -> None:
    """With authorId or hideResults=false and no date filter, only the last 30 days are listed."""
    old = [*ROWS, Row("job_old", "custom", "success", 0.0, 0.0)]
    now_s = 30 * 86400 + 500.0
    for query in (JobQuery(author_id="me"), JobQuery(hide_results=False)):
        assert "job_old" not in ids(select(old, query, author_id="me", now_s=now_s, newest_first=True)[0])
    assert "job_old" in ids(select(old, JobQuery(), author_id="me", now_s=now_s, newest_first=True)[0])


# -- gates -----------------------------------------------------------------------------------------


def test_cooldown_starts_when_set_or_at_the_first_request() -> None:
    """A cooldown set before the loop runs starts at the first request; 0 ends it; the 429 has remainingSeconds."""
    cooldown = Cooldown()
    cooldown.arm(30.0, None)
    assert cooldown.peek_s(90.0) == 30.0 and cooldown.until_s is None  # looking does not start it
    assert cooldown.remaining_s(100.0) == 30.0 and cooldown.remaining_s(110.5) == 19.5
    assert cooldown.remaining_s(130.0) == 0.0
    cooldown.arm(5.0, 200.0)
    cooldown.arm(0.0, 201.0)
    assert cooldown.remaining_s(201.0) == 0.0
    reply = cooldown_reply(19.2)
    assert reply.status == 429 and reply.fields == {"remainingSeconds": 20} and not reply.headers


def test_refusals_carry_the_shapes_of_the_notes() -> None:
    """Concurrency cap: 429 details {actionName model_run, actionLimit}; plan: 403 ModelAccessRestrictedError
    naming modelId and requiredPlan; CU cap: the status asked for, its message saying the cap is reached."""
    assert concurrency_refusal(3, 4) is None and concurrency_refusal(9, None) is None
    capped = concurrency_refusal(4, 4)
    assert capped is not None and capped.status == 429 and not capped.headers
    assert capped.details == {"actionName": "model_run", "actionLimit": 4}
    assert access_refusal("model_x", None) is None
    restricted = access_refusal("model_x", "pro")
    assert restricted is not None and restricted.status == 403
    assert restricted.fields == {"name": "ModelAccessRestrictedError", "modelId": "model_x", "requiredPlan": "pro"}
    assert spending_refusal(80, 20, 100, status=403) is None and spending_refusal(80, 21, None, status=403) is None
    spent = spending_refusal(80, 21, 100, status=402)
    assert spent is not None and spent.status == 402 and "cap" in spent.message and "CU" in spent.message


# -- uploads ---------------------------------------------------------------------------------------


def made(**fields: Any) -> MultipartUpload:
    return MultipartUpload("upload_1", "a.mp4", "video/mp4", "video", 100, 2, 0.0, [], **fields)


@pytest.mark.parametrize(("fields", "now", "expect"), [
    ({}, 5.0, ("pending", 0.0)),
    ({"completed_s": 1.0, "processing_s": 1.0}, 1.5, ("validating", 1.0)),
    ({"completed_s": 1.0, "processing_s": 1.0, "done_s": 1.1}, 1.5, ("validating", 1.0)),
    ({"completed_s": 1.0, "processing_s": 1.0, "done_s": 1.1}, 1.7, ("validated", 1.6)),
    ({"completed_s": 1.0, "processing_s": 1.0, "done_s": 1.1, "asset_id": "asset_1"}, 2.0, ("imported", 2.0)),
    ({"completed_s": 1.0, "processing_s": 1.0}, 9.0, ("validating", 1.0)),  # the work is not done yet
    ({"completed_s": 1.0, "processing_s": 1.0, "done_s": 5.0}, 5.0, ("imported", 5.0)),
    ({"completed_s": 1.0, "processing_s": 1.0, "done_s": 1.1, "error": "bad"}, 1.7, ("failed", 1.6)),
])
def test_upload_status_moves_on_in_time(fields: dict[str, Any], now: float, expect: tuple[str, float]) -> None:
    """pending until complete; validating for 60% of the processing time (and until the check is done), then
    validated, then imported; or failed once checked."""
    assert made(**fields).status(now) == expect


@pytest.mark.parametrize(("received", "problem"), [
    ({1: MIN_PART_BYTES, 2: 1}, None),
    ({1: MIN_PART_BYTES}, "Missing parts: 2"),
    ({}, "Missing parts: 1, 2"),
    ({1: MIN_PART_BYTES - 1, 2: 1}, "EntityTooSmall"),
])
def test_parts_rules(received: dict[int, int], problem: str | None) -> None:
    """Every part present, every part but the last at least 5 MiB."""
    found = parts_problem(made(received={n: (f"/p{n}", size) for n, size in received.items()}))
    assert found == problem if problem is None else problem in (found or "")


def test_part_urls_are_signed_per_part_and_expire() -> None:
    """A part URL grants one part of one upload until it expires; changing anything breaks it."""
    signer = PartSigner(b"k" * 32)
    url = signer.url("http://h", "upload_1", 3, 5000)
    split = urlsplit(url)
    key, query = split.path.rsplit("/", 1)[1], dict(parse_qsl(split.query))
    grant = signer.check(key, query, 4999)
    assert (grant.upload_id, grant.number) == ("upload_1", 3)
    for changed, code in [({"partNumber": "4"}, "SignatureDoesNotMatch"), ({"Expires": "9000"}, "SignatureDoesNotMatch"),
                          ({"Signature": "0" * 40}, "SignatureDoesNotMatch"), ({"partNumber": "x"}, "AccessDenied")]:
        with pytest.raises(S3Error) as caught:
            signer.check(key, {**query, **changed}, 0)
        assert caught.value.code == code
    with pytest.raises(S3Error) as caught:
        signer.check(key, query, 5000)
    assert caught.value.status == 403 and "expired" in caught.value.message


# -- the model -------------------------------------------------------------------------------------


def test_model_inputs_follow_the_parameter_table() -> None:
    """Every parameter is an input with its type (integers: number, step 1), range, allowed values, file kind and
    `required` as an object."""
    model = model_json()
    inputs = {i["name"]: i for i in model["inputs"]}
    assert list(inputs) == list(PARAMS) and model["type"] == "custom" and model["capabilities"] == ["video2video"]
    assert inputs["prompt"]["required"] == {"always": True} and inputs["prompt"]["type"] == "string"
    assert (inputs["video"]["type"], inputs["video"]["kind"], inputs["image"]["kind"]) == ("file", "video", "image")
    assert inputs["numInferenceSteps"].items() >= {"type": "number", "step": 1, "min": 1, "max": 100,
                                                   "default": 40}.items()
    assert inputs["resolution"]["allowedValues"] == ["auto", "720p", "1080p", "1440p", "2160p"]
    assert set(inputs["width"]["required"]["ifDefined"]) == {"height"} and inputs["width"]["step"] == 64
    assert "default" not in inputs["seed"] and inputs["enhancePrompt"]["default"] is False


@pytest.mark.parametrize("now_s", [0.1, 3631.627, 8184.81, 32264.368, 523711.722])
def test_an_armed_cooldown_answers_its_whole_length_whatever_the_clock(now_s: float) -> None:
    """The first request after arming sees exactly the length set: (now + L) - now may round to a hair over L."""
    cooldown = Cooldown()
    cooldown.arm(1200, None)
    assert cooldown_reply(cooldown.remaining_s(now_s)).fields["remainingSeconds"] == 1200
