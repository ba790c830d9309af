"""The per-account request rate limit: a token bucket driven by the caller's clock (pure, no asyncio)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """`rate_per_s` tokens a second into a bucket of `burst`; each request takes one.

    The real service's limits are unconfirmed; this models the usual shape
    (a steady rate plus a small burst) and tells the caller how long to wait.
    """

    rate_per_s: float
    burst: int
    tokens: float = -1.0  # -1: full on first use
    stamp_s: float = 0.0

    def take(self, now_s: float) -> float:
        """Take a token at `now_s`: 0.0 when granted, else the seconds until one is available."""
        if self.tokens < 0:
            self.tokens, self.stamp_s = float(self.burst), now_s
        elapsed = max(0.0, now_s - self.stamp_s)
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate_per_s)
        self.stamp_s = now_s
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s


def retry_after_header(wait_s: float) -> str:
    """The Retry-After value for a wait: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(wait_s)))
