"""The job listing as a feed of changes, the pure part: where each listing starts, what a row tells, and
when the feed has proved unreliable.

`GET /v1/jobs?type=custom&updatedAfter=T` lists the jobs that changed since T, sorted by update date
(api-notes "Listing", confirmed). The sort direction is not, so the rows' own `updatedAt` are read, never
their order. The next listing starts at the newest `updatedAt` seen less an overlap: a change stamped a
little out of order, or in the same millisecond as the newest one (`updatedAfter` is strict), is listed
again rather than missed. A row listed twice is harmless: its status is compared with what we know.
The first listing of a session starts `CLOCK_SKEW_S` before this machine's clock says the session began.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.api.answers import FINAL_FAILED, FINAL_OK, JobView, parse_job
from pipeline.errors import BadResponse
from pipeline.run.reconcile import CLOCK_SKEW_S

MISSES_TO_FALL_BACK = 3  # finished jobs the listing never showed before `auto` stops trusting it ...
MISSED_SHARE_TO_FALL_BACK = 0.01  # ... when they are also this share of the jobs it saw finish


@dataclass(slots=True)
class FeedCursor:
    """Where the next listing starts (`after_s`, Unix time, the server's clock) and where this session's began.

    After a complete listing, every change stamped in (`start_s`, `after_s`] was due in one of this
    session's listings: a row newer by the overlap had been listed already (see `missed`)."""

    start_s: float
    after_s: float
    overlap_s: float

    @classmethod
    def starting(cls, now_s: float, *, overlap_s: float, skew_s: float = CLOCK_SKEW_S) -> FeedCursor:
        """The cursor of a session beginning at `now_s` (this machine's clock, which may be `skew_s` off)."""
        return cls(now_s - skew_s, now_s - skew_s, overlap_s)

    def advance(self, stamps: Iterable[float]) -> None:
        """A listing is complete and its rows carried these `updatedAt`: start the next one at the newest less
        the overlap (never earlier than this one started)."""
        newest = max(stamps, default=None)
        if newest is not None:
            self.after_s = max(self.after_s, newest - self.overlap_s)

    def missed(self, updated_s: float | None) -> bool:
        """Whether a change stamped `updated_s` should have been in a listing already (so a job found finished
        by its own poll, with that stamp, is one the listing did not show)."""
        return updated_s is not None and self.start_s < updated_s <= self.after_s


@dataclass(frozen=True, slots=True)
class FeedRow:
    """One listed job: what it says now, and whether it carries what a finished job needs."""

    view: JobView
    complete: bool  # final with its results (assetIds, and outputs when it succeeded); else fetch it by id

    @property
    def final(self) -> bool:
        return self.view.status in FINAL_OK or self.view.status in FINAL_FAILED


def read_row(row: Mapping[str, Any]) -> FeedRow | None:
    """A listing row read as a job answer; None when it is not one (no id, no status, junk outputs).

    Whether listed rows carry `metadata.assetIds` is unconfirmed: a final row without the list, or a success
    with none in it, is not `complete` (the job is fetched by id)."""
    try:
        view = parse_job({"job": row})
    except BadResponse:
        return None
    metadata = row.get("metadata")
    listed = isinstance(metadata, Mapping) and isinstance(metadata.get("assetIds"), list)
    complete = listed and (view.status not in FINAL_OK or bool(view.asset_ids))
    return FeedRow(view, complete)


def unreliable(missed: int, seen_finished: int) -> bool:
    """Whether `missed` finished jobs the listing never showed (out of `seen_finished` it did show) prove it
    unreliable: a few, and not a tiny share."""
    return missed >= MISSES_TO_FALL_BACK and missed >= MISSED_SHARE_TO_FALL_BACK * (missed + seen_finished)
