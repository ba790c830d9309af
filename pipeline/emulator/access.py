"""Access to the API routes: HTTP Basic credentials and the per-account rate limit (pure, no asyncio)."""

from __future__ import annotations

import base64
import binascii
import hmac
import math
from dataclasses import dataclass


def basic_auth_matches(header: str | None, api_key: str, api_secret: str) -> bool:
    """Whether an `Authorization` header is `Basic base64(api_key:api_secret)` (compared in constant time)."""
    if not header:
        return False
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        key, sep, secret = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, ValueError):
        return False
    key_ok = hmac.compare_digest(key.encode(), api_key.encode())
    secret_ok = hmac.compare_digest(secret.encode(), api_secret.encode())
    return bool(sep) and key_ok and secret_ok


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
