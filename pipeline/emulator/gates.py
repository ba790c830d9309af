"""What stops a request before it does anything: the cooldown, the concurrency cap, the plan and the CU cap (pure).

The shapes follow api-notes "Errors and limits": three kinds of 429 (the request
rate limit lives in `access`), 403 `ModelAccessRestrictedError` naming `modelId` and
`requiredPlan` (observed; its `name` field as the official tooling reads it), and a
spending cap refused with a 4xx whose message says the CU cap is reached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.emulator.replies import ErrorReply


@dataclass(slots=True)
class Cooldown:
    """A cooldown: every API request is refused until `until_s` (loop time); None: none, or not started yet."""

    until_s: float | None = None
    armed_s: float = 0.0  # a length set before the loop ran: it starts at the next request

    def arm(self, length_s: float, now_s: float | None) -> None:
        """Start a cooldown of `length_s` now (or at the next request when `now_s` is None); 0 ends it."""
        if length_s <= 0:
            self.until_s, self.armed_s = None, 0.0
        elif now_s is None:
            self.until_s, self.armed_s = None, length_s
        else:
            self.until_s, self.armed_s = now_s + length_s, 0.0

    def remaining_s(self, now_s: float) -> float:
        """Seconds left at `now_s` (0.0: none), for a request: an armed cooldown starts now."""
        if self.armed_s > 0:
            length_s = self.armed_s
            self.arm(length_s, now_s)
            return length_s  # not (now + length) - now, which float rounding can make a hair longer
        return self.peek_s(now_s)

    def peek_s(self, now_s: float) -> float:
        """Seconds left at `now_s` without starting an armed cooldown (its whole length then)."""
        if self.armed_s > 0:
            return self.armed_s
        if self.until_s is None or now_s >= self.until_s:
            return 0.0
        return self.until_s - now_s


def cooldown_reply(remaining_s: float) -> ErrorReply:
    """429 with `remainingSeconds` in the body and no Retry-After (api-notes: a cooldown, seen in tens of minutes)."""
    seconds = max(1, math.ceil(remaining_s))
    return ErrorReply(429, f"Too many requests: the account is cooling down, retry in {seconds} seconds",
                      fields={"remainingSeconds": seconds})


def concurrency_refusal(in_flight: int, limit: int | None) -> ErrorReply | None:
    """429 `details: {actionName: "model_run", actionLimit: N}`, no Retry-After, when N jobs are not final yet."""
    if limit is None or in_flight < limit:
        return None
    return ErrorReply(429, f"Too many jobs at once: the limit for model_run is {limit} jobs pending, queued or "
                              "running; wait for one to finish",
                      details={"actionName": "model_run", "actionLimit": limit})


def access_refusal(model_id: str, required_plan: str | None) -> ErrorReply | None:
    """403 ModelAccessRestrictedError when the account's plan does not cover the model (retrying never clears it)."""
    if not required_plan:
        return None
    return ErrorReply(403, f"Access to model {model_id} requires the {required_plan} plan; upgrade your plan "
                           "to use it",
                      fields={"name": "ModelAccessRestrictedError", "modelId": model_id,
                              "requiredPlan": required_plan})


def spending_refusal(spent_cu: float, cost_cu: float, cap_cu: float | None, *, status: int) -> ErrorReply | None:
    """The API key's CU spending cap: refuse a job that would take the spending past it."""
    if cap_cu is None or spent_cu + cost_cu <= cap_cu:
        return None
    return ErrorReply(status, f"Spending cap reached: this API key's creative units (CU) cap of {cap_cu:g} CU "
                              f"is exhausted ({spent_cu:g} CU spent, this job costs {cost_cu:g} CU)")
