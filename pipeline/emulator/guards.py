"""`Guards`: what every API request meets before it does anything; a base of `Emulator`.

HTTP Basic credentials (401), a cooldown (429 with `remainingSeconds`, see `gates`), the
request rate limit (429, `access.TokenBucket`), the key's project (`projectId`), the
seeded fault dice, and trace ids for error answers (api-notes "Errors and limits").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.emulator.access import TokenBucket, basic_auth_matches
from pipeline.emulator.faults import FaultDice
from pipeline.emulator.gates import Cooldown
from pipeline.emulator.replies import ErrorReply

if TYPE_CHECKING:
    from pipeline.emulator.clock import LoopClock
    from pipeline.emulator.knobs import EmulatorKnobs
    from pipeline.emulator.stats import Stats


class Guards:
    """The account's credentials, rate limit, cooldown, project and fault dice."""

    _knobs: EmulatorKnobs
    clock: LoopClock
    counters: Stats
    author_id: str

    def __init__(self, api_key: str, api_secret: str) -> None:
        self._credentials = (api_key, api_secret)
        self._dice = FaultDice(self._knobs.seed)
        self._bucket = self._new_bucket(self._knobs)
        self._cooldown = Cooldown()
        self._cooldown.arm(self._knobs.cooldown_s, None)
        self._traces = 0

    @staticmethod
    def _new_bucket(knobs: EmulatorKnobs) -> TokenBucket | None:
        return None if knobs.rate_limit_per_s is None else TokenBucket(knobs.rate_limit_per_s, knobs.burst)

    def _retune(self, old: EmulatorKnobs, new: EmulatorKnobs, changes: dict[str, object]) -> None:
        """Apply live knob changes to the guards (called by `Emulator.configure`)."""
        if new.seed != old.seed:
            self._dice = FaultDice(new.seed)
        if (new.rate_limit_per_s, new.burst) != (old.rate_limit_per_s, old.burst):
            self._bucket = self._new_bucket(new)
        if "cooldown_s" in changes:
            self._cooldown.arm(new.cooldown_s, self.clock.now_s())

    def authorized(self, header: str | None) -> bool:
        """Whether an `Authorization` header carries this account's Basic credentials (and auth is not revoked)."""
        return not self._knobs.revoke_auth and basic_auth_matches(header, *self._credentials)

    def rate_limit_wait_s(self) -> float:
        """0.0 if a request may go ahead now, else the seconds until the rate limit allows one."""
        return 0.0 if self._bucket is None else self._bucket.take(self.clock.now_s())

    def cooldown_left_s(self) -> float:
        """Seconds left in a cooldown (0.0: none)."""
        return self._cooldown.remaining_s(self.clock.now_s())

    def check_project(self, project_id: str | None) -> None:
        """Count the `projectId` a request names; 403 when it is not the key's project (`project_id` knob)."""
        self.counters.project_ids[project_id or ""] += 1
        bound = self._knobs.project_id
        if project_id and bound and project_id != bound:
            self.counters.project_mismatch += 1
            raise ErrorReply(403, f"projectId {project_id!r} is not the project of this API key")

    def fault(self, kind: str) -> bool:
        """Draw fault `kind` and count it when it strikes."""
        if self._dice.hit(kind, self._knobs):
            self.counters.fault(kind)
            return True
        return False

    @property
    def dice(self) -> FaultDice:
        return self._dice

    def trace_id(self) -> str:
        """A fresh trace id for an error answer."""
        self._traces += 1
        return f"{self._traces:08x}{self.author_id[:24]}"
