"""What the Scenario API's answers mean (pure): an error status to our exception, a job answer to a `JobView`.

Tolerant where `shared/api-notes.md` is unsure: status words compared case-insensitively, progress as a
fraction or a percentage, the failure reason looked for in several places (see the README).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pipeline.api.retry import parse_retry_after
from pipeline.errors import (
    ApiError,
    AuthError,
    BadResponse,
    ConcurrencyLimited,
    CooldownApiError,
    CreditsError,
    ModelAccessRestricted,
    RequestRejected,
    TransientApiError,
)

# the statuses of api-notes.md (confirmed: TS SDK Job reference); an unknown word is treated as running
FINAL_OK, FINAL_FAILED = ("success",), ("failure", "failed", "canceled", "cancelled", "error")
KNOWN_RUNNING = ("pending", "queued", "warming-up", "in-progress", "finalizing", "processing")


@dataclass(frozen=True, slots=True)
class JobView:
    """The parts of a job answer the pipeline uses."""

    job_id: str
    status: str
    progress: float | None
    asset_ids: tuple[str, ...]
    error: str | None  # metadata.error: why it failed
    duration_s: float | None  # updatedAt - createdAt on a final job, when the server gives both
    hint: str | None = None  # metadata.hint: what to do about the failure
    cost_cu: float | None = None  # Creative Units: the generate answer's creativeUnitsCost, a job's billing.cuCost
    updated_s: float | None = None  # updatedAt as Unix time (the job listing is followed by it)


CREDITS_WORDS = re.compile(r"credit|spending (cap|limit)|\b(cu|creative units?) (cap|limit|budget)|budget (exceeded|reached)",
                           re.IGNORECASE)
"""A 4xx whose message says the credits or the key's CU spending cap ran out (the notes: 402 or such a message)."""


def classify(status: int, text: str, retry_after: str | None, url: str) -> ApiError:
    """Map an error answer to our exception tree (pure).

    429 comes in three kinds (api-notes.md): a concurrency cap (`details.actionName` "model_run", with
    `actionLimit`), a cooldown (`remainingSeconds` in the body) and a request rate limit (the rest).
    """
    data = _json(text)
    message, trace_id = _error_message(data, text), _trace_id(data)
    body = data if isinstance(data, dict) else {}
    if status == 429:
        details = body.get("details") if isinstance(body.get("details"), dict) else {}
        if details.get("actionName") == "model_run" or "actionLimit" in details:
            return ConcurrencyLimited(status, message, url=url, limit=_whole(details.get("actionLimit")),
                                      trace_id=trace_id)
        remaining = _seconds(body.get("remainingSeconds", details.get("remainingSeconds")))
        if remaining is not None:
            return CooldownApiError(status, message, url=url, retry_after_s=remaining, trace_id=trace_id)
        return TransientApiError(status, message, url=url, retry_after_s=parse_retry_after(retry_after),
                                 trace_id=trace_id)
    if status >= 500 or status in (408, 425):
        return TransientApiError(status, message, url=url, retry_after_s=parse_retry_after(retry_after),
                                 trace_id=trace_id)
    if status == 402 or (400 <= status < 500 and CREDITS_WORDS.search(message)):
        return CreditsError(status, message, url=url, trace_id=trace_id)
    if status == 403 and ("ModelAccessRestricted" in text or "requiredPlan" in body):
        return ModelAccessRestricted(status, message, url=url, model_id=_short(body.get("modelId")),
                                     required_plan=_short(body.get("requiredPlan")), trace_id=trace_id)
    if status in (401, 403):
        return AuthError(status, message, url=url, trace_id=trace_id)
    if status in (400, 413, 422):
        return RequestRejected(status, message, url=url, trace_id=trace_id)
    return ApiError(status, message, url=url, trace_id=trace_id)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # nested too deep for the parser is not JSON we can read either
        return None


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _seconds(value: Any) -> float | None:
    """A wait in seconds from the body (a number, or numeric text), capped at a day; None if absent or junk."""
    try:
        seconds = float(value) if not isinstance(value, bool) and value is not None else None
    except (TypeError, ValueError, OverflowError):
        return None
    if seconds is None or not 0 <= seconds < float("inf"):
        return None
    return min(seconds, 86400.0)


def _short(value: Any) -> str | None:
    return str(value)[:100] if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def _trace_id(data: Any) -> str | None:
    """The error body's `traceId` / `trace_id` (observed), as bounded text; None when absent."""
    if not isinstance(data, dict):
        return None
    return _short(data.get("traceId") or data.get("trace_id"))


def _error_message(data: Any, text: str) -> str:
    if data is None:
        return " ".join(text.split())[:300] or "(empty body)"
    if isinstance(data, dict):
        parts = [str(data.get(k)) for k in ("error", "message", "reason", "detail") if data.get(k)]
        details = data.get("details")
        if isinstance(details, list):
            parts += [str(d) for d in details[:10]]
        if parts:
            return "; ".join(parts)[:500]
    return json.dumps(data)[:300]


def parse_job(data: Any) -> JobView:
    """Read `{"job": {...}}` into a JobView, or raise BadResponse if it is not that shape."""
    job = data.get("job") if isinstance(data, dict) else None
    if not isinstance(job, dict) or not isinstance(job.get("jobId"), str) or not isinstance(job.get("status"), str):
        raise BadResponse(200, "job answer lacks job.jobId / job.status")
    metadata = job.get("metadata") if isinstance(job.get("metadata"), dict) else {}
    assets = metadata.get("assetIds") or []
    if not isinstance(assets, list) or not all(isinstance(a, str) for a in assets):
        raise BadResponse(200, "job.metadata.assetIds is not a list of ids")
    progress = _progress(job.get("progress"))
    error = metadata.get("error") or job.get("error") or metadata.get("failure") or metadata.get("reason")
    hint = metadata.get("hint") or job.get("hint")
    billing = job.get("billing") if isinstance(job.get("billing"), dict) else {}
    cost = _number(billing.get("cuCost"))
    if cost is None and isinstance(data, dict):
        cost = _number(data.get("creativeUnitsCost"))
    return JobView(job["jobId"], job["status"].lower(), progress, tuple(assets),
                   None if error is None else _text(error), _duration(job),
                   None if hint is None else _text(hint), cost, stamp_s(job.get("updatedAt")))


def _text(value: Any) -> str:
    """A message from the server as one bounded line of text (it may be an object)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text[:500]


def _number(value: Any) -> float | None:
    """A finite, non-negative number, else None."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if 0 <= number < float("inf") else None


def _progress(value: Any) -> float | None:
    """A finite fraction 0..1 (a percentage tolerated); None for anything else (NaN, 1e400, text)."""
    progress = _number(value)
    if progress is None or progress > 100:
        return None
    return progress / 100.0 if progress > 1 else progress


def _duration(job: Mapping[str, Any]) -> float | None:
    try:
        start = datetime.fromisoformat(str(job["createdAt"]).replace("Z", "+00:00"))
        end = datetime.fromisoformat(str(job["updatedAt"]).replace("Z", "+00:00"))
        seconds = (end - start).total_seconds()
    except (KeyError, ValueError, TypeError):  # TypeError: one date with a zone, the other without
        return None
    return seconds if seconds >= 0 else None


def stamp_s(value: Any) -> float | None:
    """An ISO 8601 date of the API as Unix time (a date without a zone is UTC); None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)).timestamp()


def iso_z(unix_s: float) -> str:
    """Unix time as the API writes dates: ISO 8601 UTC with milliseconds and a `Z`."""
    stamp = datetime.fromtimestamp(unix_s, timezone.utc)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
