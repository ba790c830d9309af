"""Which server job, if any, a POST whose answer was lost created: the pure part of reconciling.

A job is *unknown* when its POST was sent and its answer lost: it may exist (and be paid) or not. The API
lists the account's jobs (`GET /v1/jobs`, api-notes.md "Listing": `createdAfter` only without
status/type filters, rows by creation date, `metadata.input` holding the request parameters plus keys of
the server's own such as `numOutputs`, observed). A listed job whose input holds every key we sent with an
equal value (and our model id) is that job. When the listing covered the whole window since a little
before the POST and nothing matches, the job was never created and can be sent without paying twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

CLOCK_SKEW_S = 300.0  # this machine's clock may be this far off the server's
SETTLE_S = 120.0  # a POST this recent may still be making its job: never conclude "not created" sooner


@dataclass(frozen=True, slots=True)
class ListedJob:
    """One row of the listing, as far as reconciling needs it."""

    job_id: str
    created_at: datetime | None
    job_type: str | None
    input: Mapping[str, Any] | None  # metadata.input; None when the row does not carry it (fetch by id)


def listing_start(intent_times: Iterable[float], *, skew_s: float = CLOCK_SKEW_S) -> str:
    """`createdAfter` for a listing that covers every intent: the earliest, less the clock skew (ISO 8601, UTC)."""
    earliest = min(intent_times)
    when = datetime.fromtimestamp(earliest, tz=timezone.utc) - timedelta(seconds=skew_s)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def listed_job(row: Any) -> ListedJob | None:
    """A listing row read tolerantly; None for a row without a job id."""
    if not isinstance(row, Mapping) or not isinstance(row.get("jobId"), str):
        return None
    metadata = row.get("metadata") if isinstance(row.get("metadata"), Mapping) else {}
    given = metadata.get("input")
    job_type = row.get("jobType") if isinstance(row.get("jobType"), str) else None
    return ListedJob(row["jobId"], _date(row.get("createdAt")), job_type,
                     given if isinstance(given, Mapping) else None)


def matches(model: str, body: Mapping[str, Any], server_input: Mapping[str, Any]) -> bool:
    """Whether a server job's `metadata.input` is the job we sent: our model id, and every key we sent with an
    equal value (1 equals 1.0; the server may add keys of its own)."""
    model_id = server_input.get("modelId")
    if model_id is not None and model_id != model:
        return False
    return all(key in server_input and same(value, server_input[key]) for key, value in body.items())


def same(ours: Any, theirs: Any) -> bool:
    """Equal as JSON values, numbers by value (1 == 1.0, but True is not 1)."""
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return type(ours) is type(theirs) and ours == theirs
    if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)):
        return math.isclose(float(ours), float(theirs), rel_tol=0.0, abs_tol=1e-9)
    if isinstance(ours, Mapping) and isinstance(theirs, Mapping):
        return ours.keys() == theirs.keys() and all(same(v, theirs[k]) for k, v in ours.items())
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(same(a, b) for a, b in zip(ours, theirs, strict=True))
    return bool(ours == theirs)


def assign(intents: Mapping[str, Mapping[str, Any]], candidates: Iterable[ListedJob]) -> dict[str, list[ListedJob]]:
    """The server jobs each lost POST made, closest first (fewest keys beyond ours); each server job goes to one
    intent only. `intents`: key -> the journal's intent event (`request`, `spec.model`). Larger bodies choose
    first: a job whose body is a subset of another's must not take the other's server job."""
    free = [c for c in candidates if c.input is not None]
    out: dict[str, list[ListedJob]] = {}
    for key in sorted(intents, key=lambda k: -len(intents[k].get("request") or {})):
        body = intents[key].get("request")
        model = str((intents[key].get("spec") or {}).get("model", ""))
        if not isinstance(body, Mapping):
            continue
        matching = sorted((c for c in free if matches(model, body, c.input or {})), key=lambda c: len(c.input or {}))
        if matching:
            out[key] = matching
            free = [c for c in free if c not in matching]
    return out


def is_custom(job: ListedJob) -> bool:
    """A generate/custom job (rows without a jobType are kept: the check is what they hold)."""
    return job.job_type is None or job.job_type == "custom"


def settled(intent_at: float, listed_at: float, *, settle_s: float = SETTLE_S) -> bool:
    """Whether a POST made at `intent_at` is old enough, when the listing began, to be absent for good."""
    return listed_at - intent_at >= settle_s


def _date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
