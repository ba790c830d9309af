"""The cost arithmetic (pure): which jobs cost the same, what a run has spent, whether the next job fits a budget.

Jobs that differ only in `prompt`, `negativePrompt` and `seed` cannot differ in cost: they share a *price
class* and one dry run (or one charge) prices them all. The `--max-cost` gate lets a job go only while the
run's committed cost (every cost recorded in the journal, the estimate of each job sent whose cost is not
recorded, and this job's estimate) stays within the budget; otherwise submitting stops and the job stays
pending. `pricing` does the I/O (dry runs, journaling) around these functions.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.ledger.replay import Spend
from pipeline.spec import JobSpec, canonical_json, input_identities

PRICE_FREE = ("prompt", "negativePrompt", "seed")
"""Parameters that cannot change what a job costs."""

CLASS_CHARS = 20  # of the sha256 hex: a price class names a kind of job, not a security boundary
TOLERANCE = 1e-9  # relative: 10 jobs of 0.1 CU fit a budget of 1 CU despite float sums


def price_class(spec: JobSpec) -> str:
    """The job's price class: a hash of everything sent but `PRICE_FREE` (model, parameters, input identities)."""
    material = {
        "model": spec.model,
        "params": {k: v for k, v in spec.params.items() if k not in PRICE_FREE},
        "inputs": input_identities(spec.inputs),
    }
    return hashlib.sha256(canonical_json(material).encode()).hexdigest()[:CLASS_CHARS]


def committed_cu(spend: Spend, prices: Mapping[str, float], estimate_cu: float) -> float:
    """What the run has spent or may have spent: recorded costs, the gate's estimates of sent jobs whose cost is
    not recorded, and each sent job with neither at the highest price known (at least `estimate_cu`)."""
    fallback = max(spend.highest_cu, estimate_cu, max(prices.values(), default=0.0))
    return spend.recorded_cu + spend.estimated_cu + spend.unpriced * fallback


@dataclass(frozen=True, slots=True)
class Verdict:
    """The gate's answer for one job: whether it fits, and the figures behind it."""

    admits: bool
    committed_cu: float  # spent or possibly spent before this job
    estimate_cu: float  # this job's estimated cost
    max_cost_cu: float  # the budget (0: none)

    @property
    def total_cu(self) -> float:
        """The run's cost if this job is sent too."""
        return self.committed_cu + self.estimate_cu

    def reason(self, index: int) -> str:
        """Why submitting stopped, for the summary and the journal's end event."""
        return (f"--max-cost {self.max_cost_cu:g} CU: job {index} (about {self.estimate_cu:g} CU) would bring the "
                f"run's cost to {self.total_cu:.6g} CU ({self.committed_cu:.6g} CU spent or in flight): submitting "
                f"stopped; the jobs not sent stay pending (the same command with a larger --max-cost sends them)")


def fits(total_cu: float, max_cost_cu: float) -> bool:
    """Whether a total keeps within the budget (0 = no budget), allowing for float rounding."""
    return max_cost_cu <= 0 or total_cu <= max_cost_cu * (1 + TOLERANCE) + TOLERANCE


def verdict(spend: Spend, prices: Mapping[str, float], *, estimate_cu: float, max_cost_cu: float) -> Verdict:
    """May a job estimated at `estimate_cu` be sent under `max_cost_cu`, given what the run has spent?"""
    committed = committed_cu(spend, prices, estimate_cu)
    return Verdict(fits(committed + estimate_cu, max_cost_cu), committed, estimate_cu, max_cost_cu)


def parse_price(data: Any) -> float:
    """The `creativeUnitsCost` of a dry-run (or generate) answer; ValueError says what is wrong with it."""
    if not isinstance(data, dict):
        raise ValueError(f"the answer is not a JSON object ({type(data).__name__})")
    if "creativeUnitsCost" not in data:
        keys = ", ".join(sorted(map(str, data))[:8]) or "none"
        raise ValueError(f"the answer has no creativeUnitsCost (keys: {keys})")
    value = data["creativeUnitsCost"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"creativeUnitsCost is not a number: {str(value)[:60]!r}")
    try:
        cost = float(value)
    except OverflowError:
        cost = math.inf
    if not 0 <= cost < math.inf:  # also NaN
        raise ValueError(f"creativeUnitsCost is not a finite number >= 0: {str(value)[:60]}")
    return cost


def amount(value: float) -> str:
    """A number of CU as shown to people: `1,250`, `12.5`, `0.004` (three decimals at most, or two digits)."""
    return f"{value:,.3f}".rstrip("0").rstrip(".") if value == 0 or abs(value) >= 0.01 else f"{value:.2g}"


def cu(value: float | None) -> str:
    """A cost as shown to people: `12.5 CU`; `? CU` when unknown."""
    return "? CU" if value is None else f"{amount(value)} CU"


def spend_text(spend: Spend) -> str:
    """The run's cost in a few words: `126 CU`, with what is estimated, unknown or on failed jobs."""
    text = cu(spend.recorded_cu)
    if spend.estimated_cu > 0:
        text += f" + about {cu(spend.estimated_cu)} estimated (answers lost)"
    if spend.unpriced:
        text += f"; {spend.unpriced} sent job{'' if spend.unpriced == 1 else 's'} without a recorded cost"
    if spend.failed_cu > 0:
        text += f" (of which {cu(spend.failed_cu)} on jobs that failed on the server, refund not confirmed)"
    return text
