"""Table-driven tests of the cost arithmetic: price classes, the run's spend replayed from the journal, the
--max-cost verdict, dry-run answers, and how costs are shown."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pipeline.ledger.costs import committed_cu, cu, fits, parse_price, price_class, spend_text, verdict
from pipeline.ledger.replay import LedgerState, Spend, apply
from pipeline.spec import InputRef, JobSpec

VIDEO = InputRef("video", "file", path="/in/clip.mp4", sha256="a" * 64)
OTHER = InputRef("video", "file", path="/in/other.mp4", sha256="b" * 64)
BASE = {"prompt": "a cat", "negativePrompt": "blur", "seed": 1, "videoStrength": 0.5, "duration": 5}


def spec(*, params: dict[str, Any] | None = None, inputs: tuple[InputRef, ...] = (VIDEO,),
         model: str = "model_x", index: int = 0) -> JobSpec:
    return JobSpec(index, "main", f"key{index}", model, {**BASE, **(params or {})}, inputs)


@pytest.mark.parametrize(("other", "same"), [
    (spec(params={"prompt": "a dog"}), True),
    (spec(params={"negativePrompt": "grain"}), True),
    (spec(params={"seed": 99}), True),
    (spec(params={"prompt": "x", "seed": 2, "negativePrompt": None}), True),
    (spec(params={"duration": 10}), False),
    (spec(params={"videoStrength": 0.6}), False),
    (spec(params={"enhancePrompt": True}), False),
    (spec(inputs=(OTHER,)), False),
    (spec(inputs=(VIDEO, InputRef("image", "asset", asset_id="asset_1"))), False),
    (spec(model="model_y"), False),
])
def test_price_class(other: JobSpec, same: bool) -> None:
    """Jobs share a price class exactly when they differ only in prompt, negativePrompt and seed."""
    assert (price_class(other) == price_class(spec())) is same


def replayed(events: list[tuple[str, str, dict[str, Any]]]) -> LedgerState:
    state = LedgerState()
    for number, (kind, key, fields) in enumerate(events):
        apply(state, {"t": float(number), "ev": kind, "key": key, **fields})
    return state


def sent(key: str, cost: float | None, job_id: str = "") -> list[tuple[str, str, dict[str, Any]]]:
    return [("intent", key, {}), ("submitted", key, {"job_id": job_id or f"job_{key}", "cost_cu": cost})]


@pytest.mark.parametrize(("events", "recorded", "estimated", "unpriced", "failed"), [
    ([], 0, 0, 0, 0),
    (sent("a", 10), 10, 0, 0, 0),
    (sent("a", 10) + sent("b", 2.5), 12.5, 0, 0, 0),
    # a polled job's billing.cuCost outranks the generate answer's creativeUnitsCost
    (sent("a", 10) + [("succeeded", "a", {"asset_ids": ["o"], "cost_cu": 12})], 12, 0, 0, 0),
    (sent("a", 10) + [("succeeded", "a", {"asset_ids": ["o"], "cost_cu": None})], 10, 0, 0, 0),
    (sent("a", 10) + [("failed", "a", {"reason": "job-failed", "cost_cu": 11, "hint": "h"})], 11, 0, 0, 11),
    (sent("a", 10) + [("succeeded", "a", {"asset_ids": ["o"]}), ("failed", "a", {"reason": "download"})],
     10, 0, 0, 0),
    # sent without a cost: unpriced, or the gate's estimate when it priced it
    (sent("a", None), 0, 0, 1, 0),
    ([("priced", "a", {"price_class": "c1", "cost_cu": 4})] + sent("a", None), 0, 4, 0, 0),
    ([("priced", "a", {"price_class": "c1", "cost_cu": 4})] + sent("a", 5), 5, 0, 0, 0),
    # an answer lost: unknown, it may be paid
    ([("priced", "a", {"price_class": "c1", "cost_cu": 4}), ("intent", "a", {})], 0, 4, 0, 0),
    ([("intent", "a", {})], 0, 0, 1, 0),
    # refused by the server: no job, no cost
    ([("priced", "a", {"price_class": "c1", "cost_cu": 4}), ("intent", "a", {}), ("not-sent", "a", {})], 0, 0, 0, 0),
    ([("intent", "a", {}), ("failed", "a", {"reason": "rejected", "trace_id": "t"})], 0, 0, 0, 0),
    ([("failed", "a", {"reason": "upload"})], 0, 0, 0, 0),
    # a retried job: the earlier attempt's cost stays spent
    (sent("a", 10) + [("failed", "a", {"reason": "job-failed"}), ("reset", "a", {})] + sent("a", 10), 20, 0, 0, 0),
    (sent("a", 10) + [("failed", "a", {"reason": "job-failed"}), ("reset", "a", {}), ("intent", "a", {})],
     10, 0, 1, 0),
    # junk costs are not costs
    (sent("a", -1) + sent("b", math.nan) + sent("c", True), 0, 0, 3, 0),
    (sent("a", 10**400), 0, 0, 1, 0),
])
def test_spend_replay(events: list[tuple[str, str, dict[str, Any]]], recorded: float, estimated: float,
                      unpriced: int, failed: float) -> None:
    """The journal's replay keeps the run's cost current, event by event, through retries and lost answers."""
    spend = replayed(events).spend
    assert (spend.recorded_cu, spend.estimated_cu, spend.unpriced, spend.failed_cu) == pytest.approx(
        (recorded, estimated, unpriced, failed))


def test_replay_keeps_hint_trace_and_prices() -> None:
    """A failure's hint and trace id are kept until the job is sent again; a charge teaches its class's price."""
    state = replayed([("priced", "a", {"price_class": "c1", "cost_cu": 4})] + sent("a", 6)
                     + [("failed", "a", {"reason": "job-failed", "error": "e", "hint": "use less", "cost_cu": 7})])
    job = state.jobs["a"]
    assert (job.hint, job.cost_cu, job.estimate_cu, state.prices) == ("use less", 7, 4, {"c1": 7})
    apply(state, {"t": 9, "ev": "reset", "key": "a"})
    assert job.hint is None and job.cost_cu == 7
    rejected = replayed([("intent", "b", {}), ("failed", "b", {"reason": "rejected", "trace_id": "tr-1"})])
    assert rejected.jobs["b"].trace_id == "tr-1"


@pytest.mark.parametrize(("spend", "prices", "estimate", "committed"), [
    (Spend(), {}, 5, 0),
    (Spend(recorded_cu=10), {}, 5, 10),
    (Spend(recorded_cu=10, estimated_cu=3), {}, 5, 13),
    # a sent job with no cost counts at the highest price known, never less than this job's
    (Spend(recorded_cu=10, unpriced=2, highest_cu=4), {}, 5, 20),
    (Spend(recorded_cu=10, unpriced=2, highest_cu=4), {"c": 8}, 5, 26),
    (Spend(recorded_cu=10, unpriced=1, highest_cu=9), {"c": 8}, 5, 19),
])
def test_committed(spend: Spend, prices: dict[str, float], estimate: float, committed: float) -> None:
    """What the run has spent or may have spent, for the gate."""
    assert committed_cu(spend, prices, estimate) == pytest.approx(committed)


@pytest.mark.parametrize(("spend", "estimate", "cap", "admits"), [
    (Spend(), 5, 0, True),  # no cap
    (Spend(), 5, 5, True),
    (Spend(), 5, 4.99, False),
    (Spend(recorded_cu=95), 5, 100, True),
    (Spend(recorded_cu=95.01), 5, 100, False),
    (Spend(recorded_cu=0.1 + 0.2 + 0.3 + 0.1 + 0.1 + 0.1), 0.1, 1.0, True),  # float sums: 0.9 + 0.1
    (Spend(recorded_cu=150), 5, 100, False),  # already past: nothing more
    (Spend(recorded_cu=0, unpriced=1, highest_cu=60), 50, 100, False),
])
def test_verdict(spend: Spend, estimate: float, cap: float, admits: bool) -> None:
    """A job goes only while spent + in flight + its estimate stays within the budget."""
    answer = verdict(spend, {}, estimate_cu=estimate, max_cost_cu=cap)
    assert answer.admits is admits
    assert answer.total_cu == pytest.approx(answer.committed_cu + estimate)
    if not admits:
        assert "--max-cost" in answer.reason(7) and "job 7" in answer.reason(7)


def test_ten_tenths_fit_one() -> None:
    """Ten jobs of 0.1 CU fit a budget of 1 CU, an eleventh does not."""
    total = 0.0
    for _ in range(10):
        assert fits(total + 0.1, 1.0)
        total += 0.1
    assert not fits(total + 0.1, 1.0)


@pytest.mark.parametrize(("answer", "price"), [
    ({"creativeUnitsCost": 12}, 12.0),
    ({"creativeUnitsCost": 0}, 0.0),
    ({"creativeUnitsCost": 2.5, "creativeUnitsDiscount": 0.5, "costDetails": {"custom-generation": 2.5}}, 2.5),
    ({"job": {"jobId": "j"}, "creativeUnitsCost": 7}, 7.0),
])
def test_parse_price(answer: Any, price: float) -> None:
    """A dry-run answer's creativeUnitsCost."""
    assert parse_price(answer) == price


@pytest.mark.parametrize(("answer", "says"), [
    ([], "not a JSON object"),
    ("12", "not a JSON object"),
    ({}, "no creativeUnitsCost"),
    ({"cost": 3}, "no creativeUnitsCost (keys: cost)"),
    ({"creativeUnitsCost": None}, "not a number"),
    ({"creativeUnitsCost": "12"}, "not a number"),
    ({"creativeUnitsCost": True}, "not a number"),
    ({"creativeUnitsCost": -1}, "finite number >= 0"),
    ({"creativeUnitsCost": math.inf}, "finite number >= 0"),
    ({"creativeUnitsCost": math.nan}, "finite number >= 0"),
    ({"creativeUnitsCost": 10**400}, "finite number >= 0"),
])
def test_parse_price_refuses(answer: Any, says: str) -> None:
    """An answer without a usable creativeUnitsCost is refused, saying why."""
    with pytest.raises(ValueError, match=None) as caught:
        parse_price(answer)
    assert says in str(caught.value)


@pytest.mark.parametrize(("value", "text"), [
    (None, "? CU"), (0, "0 CU"), (12, "12 CU"), (12.5, "12.5 CU"), (1250.25, "1,250.25 CU"),
    (0.125, "0.125 CU"), (0.004, "0.004 CU"), (2 / 3, "0.667 CU"),
])
def test_cu(value: float | None, text: str) -> None:
    """Costs are shown with at most three decimals, thousands separated."""
    assert cu(value) == text


@pytest.mark.parametrize(("spend", "text"), [
    (Spend(), "0 CU"),
    (Spend(recorded_cu=126), "126 CU"),
    (Spend(recorded_cu=126, estimated_cu=10.5), "126 CU + about 10.5 CU estimated (answers lost)"),
    (Spend(recorded_cu=10, unpriced=2), "10 CU; 2 sent jobs without a recorded cost"),
    (Spend(recorded_cu=10, failed_cu=4),
     "10 CU (of which 4 CU on jobs that failed on the server, refund not confirmed)"),
])
def test_spend_text(spend: Spend, text: str) -> None:
    """The run's cost in words, as the summary and status show it."""
    assert spend_text(spend) == text
