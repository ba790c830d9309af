"""The emulator's price model in Creative Units (CU): deterministic, documented, pure.

Scenario does not publish LTX-2's price formula; this one only has the shape the
notes imply (longer, bigger and more steps cost more) so that cost recording and
`plan --cost` have numbers to check:

    cu = ceil(cu_per_second x seconds x pixels_factor x numInferenceSteps / 40)

- seconds: `duration`, or 5 when absent ("match input": the emulator does not probe the input);
- pixels_factor: `width x height / (1280 x 720)` when both are given, else by `resolution`:
  auto and 720p 1, 1080p 2.25, 1440p 4, 2160p 9;
- numInferenceSteps: 40 when absent.

A dry run prices any body, valid or not (api-notes "Cost": it does not validate);
values of the wrong type count as absent.
"""

from __future__ import annotations

import math
from typing import Any

DEFAULT_DURATION_S = 5.0
DEFAULT_STEPS = 40
BASE_PIXELS = 1280 * 720
RESOLUTION_FACTOR = {"auto": 1.0, "720p": 1.0, "1080p": 2.25, "1440p": 4.0, "2160p": 9.0}
COST_KEY = "custom-generation"  # scenario-sdk GenerateRunModelResponse.costDetails key for generate/custom


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        return default
    return float(value)


def price_cu(params: Any, *, cu_per_second: float) -> int:
    """The CU cost of one generate request with these parameters (any JSON value; a non-object costs the default)."""
    body = params if isinstance(params, dict) else {}
    seconds = _number(body.get("duration"), DEFAULT_DURATION_S)
    width, height = _number(body.get("width"), 0), _number(body.get("height"), 0)
    if width and height:
        factor = width * height / BASE_PIXELS
    else:
        factor = RESOLUTION_FACTOR.get(body.get("resolution") if isinstance(body.get("resolution"), str) else "", 1.0)
    steps = _number(body.get("numInferenceSteps"), DEFAULT_STEPS)
    return max(1, math.ceil(round(cu_per_second * seconds * factor * steps / DEFAULT_STEPS, 6)))


def cost_answer(cost_cu: float) -> dict[str, Any]:
    """The cost fields of a generate answer (and the whole of a dry run's answer)."""
    return {"creativeUnitsCost": cost_cu, "creativeUnitsDiscount": 0, "costDetails": {COST_KEY: cost_cu}}
