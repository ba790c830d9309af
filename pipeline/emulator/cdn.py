"""The emulated CDN: HMAC-signed, expiring download tokens and HTTP `Range` parsing (pure)."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

CDN_PREFIX = "/_cdn/"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """The outcome of checking a token: the asset id when valid, else why not."""

    asset_id: str | None
    problem: str | None  # "invalid" or "expired"


class UrlSigner:
    """Makes and checks `{assetId}.{expiresMs}.{hmac}` tokens; the key is per emulator instance."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def token(self, asset_id: str, expires_ms: int) -> str:
        return f"{asset_id}.{expires_ms}.{self._mac(asset_id, expires_ms)}"

    def check(self, token: str, now_ms: int) -> TokenCheck:
        """Whether the token is genuine and not expired at `now_ms` (wall-clock milliseconds)."""
        asset_id, _, rest = token.partition(".")
        expires, _, mac = rest.partition(".")
        if not expires.isdigit() or not hmac.compare_digest(mac, self._mac(asset_id, int(expires))):
            return TokenCheck(None, "invalid")
        if now_ms >= int(expires):
            return TokenCheck(None, "expired")
        return TokenCheck(asset_id, None)

    def _mac(self, asset_id: str, expires_ms: int) -> str:
        return hmac.new(self._key, f"{asset_id}.{expires_ms}".encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class ByteRange:
    """A satisfiable byte range, `start..end` with `end` exclusive."""

    start: int
    end: int

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None | str:
    """The range a `Range` header asks for within `size` bytes.

    None: serve the whole file (no header, a malformed one or several ranges,
    which RFC 9110 lets a server ignore); "unsatisfiable": answer 416.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            return "unsatisfiable"
        return ByteRange(max(0, size - length), size)
    start = int(first)
    end = size if not last else min(size, int(last) + 1)
    if last and int(last) < start:
        return None  # invalid range: ignore it
    if start >= size:
        return "unsatisfiable"
    return ByteRange(start, end)
