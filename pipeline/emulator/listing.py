"""`GET /v1/jobs`: its query parameters, their rules and the paging (pure).

The parameters and rules of scenario-sdk 2.4.0 `types/job_list_params.py` and api-notes
"Jobs / Listing" (confirmed): `pageSize` (default 50, 1..100), `paginationToken` ->
`nextPaginationToken`, `status`, `type` or `types` (`types` wins; comma-separated or
repeated), `hideResults`, `authorId`, `workflowId`, and two date filters:
`createdAfter` only without status/type/types/workflowId (rows by creation date),
`updatedAfter` only with one of them (rows by update date); with `authorId` or
`hideResults=false` and no date filter, only the last 30 days are listed.
The sort direction is unconfirmed: the `jobs_list_order` knob picks it. scenario-sdk's `jobs.list`
says a page can hold fewer jobs than `pageSize`, or none, while `nextPaginationToken` is set:
the `list_short_pages` knob makes the first page empty and the others hold half.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from multidict import MultiMapping

from pipeline.emulator.knobs import KNOWN_STATUSES
from pipeline.emulator.replies import ErrorReply, page_size

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 100
WINDOW_S = 30 * 86400
JOB_TYPES = (  # scenario-sdk JobListParams.type
    "assets-download", "model-training", "flux-model-training", "musubi-model-training", "inference", "pixelate",
    "embed", "remove-background", "vectorize", "canvas-export", "image-generation", "image-prompt-editing",
    "caption", "generate-prompt", "describe-style", "translate", "detection", "restyle", "repaint", "reframe",
    "segment", "skybox-base-360", "skybox-upscale-360", "skybox-hdri", "skybox-3d", "texture", "upscale",
    "upscale-skybox", "upscale-texture", "flux", "openai-image-generation", "upload", "custom", "splat",
    "mesh-preview-rendering", "workflow",
)


@dataclass(frozen=True, slots=True)
class JobQuery:
    """A checked `GET /v1/jobs` query."""

    page_size: int = DEFAULT_PAGE_SIZE
    after: tuple[float, str] | None = None  # the pagination token: (sort key, job id) of the last row sent
    status: str | None = None
    types: tuple[str, ...] = ()
    hide_results: bool | None = None
    author_id: str | None = None
    workflow_id: str | None = None
    created_after_s: float | None = None  # Unix time
    updated_after_s: float | None = None

    @property
    def by_update(self) -> bool:
        """Rows sorted (and windowed) by update date: with status, type(s) or workflowId."""
        return bool(self.status or self.types or self.workflow_id)


@dataclass(frozen=True, slots=True)
class Row:
    """What filtering and sorting need of one job (times in Unix seconds)."""

    job_id: str
    job_type: str
    status: str
    created_s: float
    updated_s: float


def parse_query(query: MultiMapping[str]) -> JobQuery:
    """The checked query; ErrorReply 400 names the faulty parameter or rule."""
    types = tuple(t.strip() for value in query.getall("types", []) for t in value.split(",") if t.strip())
    if not types and query.get("type"):
        types = (query["type"],)
    for name, value, allowed in [("status", query.get("status"), KNOWN_STATUSES),
                                 *[("types", t, JOB_TYPES) for t in types]]:
        if value is not None and value not in allowed:
            raise ErrorReply(400, f"{name}: {value!r} is not one of {', '.join(allowed)}")
    out = JobQuery(page_size=page_size(query.get("pageSize"), default=DEFAULT_PAGE_SIZE, most=MAX_PAGE_SIZE),
                   after=_token(query.get("paginationToken")),
                   status=query.get("status") or None, types=types, hide_results=_flag(query.get("hideResults")),
                   author_id=query.get("authorId") or None, workflow_id=query.get("workflowId") or None,
                   created_after_s=_date("createdAfter", query.get("createdAfter")),
                   updated_after_s=_date("updatedAfter", query.get("updatedAfter")))
    if out.created_after_s is not None and out.by_update:
        raise ErrorReply(400, "createdAfter cannot be combined with status, type, types or workflowId "
                              "(they sort jobs by update date): use updatedAfter")
    if out.updated_after_s is not None and not out.by_update:
        raise ErrorReply(400, "updatedAfter needs status, type, types or workflowId (without them jobs are sorted "
                              "by creation date): use createdAfter")
    return out


def select(rows: Sequence[Row], query: JobQuery, *, author_id: str, now_s: float, newest_first: bool,
           short_pages: bool = False) -> tuple[list[Row], str | None]:
    """One page of rows and the token of the next page (None: this is the last). `short_pages`: the first page
    holds no row and the others at most half of `pageSize` while more follow (scenario-sdk says a page may)."""
    def key(row: Row) -> float:
        return row.updated_s if query.by_update else row.created_s

    since = query.created_after_s if query.created_after_s is not None else query.updated_after_s
    windowed = since is None and (query.author_id is not None or query.hide_results is False)
    picked = [row for row in rows
              if (query.status is None or row.status == query.status)
              and (not query.types or row.job_type in query.types)
              and query.workflow_id is None
              and (query.author_id is None or query.author_id == author_id)
              and (since is None or key(row) > since + 0.002 or (key(row) > since and _shown(key(row)) != since))
              and (not windowed or key(row) > now_s - WINDOW_S)]
    picked.sort(key=lambda row: (key(row), row.job_id), reverse=newest_first)
    if query.after is not None:
        mark = query.after
        picked = [row for row in picked if ((key(row), row.job_id) < mark if newest_first else
                                            (key(row), row.job_id) > mark)]
    if short_pages and query.after is None and picked:  # a first page with no row, more to follow
        return [], _encode((key(picked[0]), "\uffff" if newest_first else ""))  # just before the first row
    size = max(1, query.page_size // 2) if short_pages else query.page_size
    page = picked[:size]
    more = len(picked) > size
    return page, (_encode((key(page[-1]), page[-1].job_id)) if more else None)


def _shown(unix_s: float) -> float:
    """A date as the API shows it (to the millisecond, as `clock.iso` writes it). A row whose shown date is the
    filter's is not after it: a row's own date given back as `updatedAfter` does not list it again. Rows are
    sorted by their exact time."""
    stamp = datetime.fromtimestamp(unix_s, UTC)
    return stamp.replace(microsecond=stamp.microsecond // 1000 * 1000).timestamp()



def _flag(text: str | None) -> bool | None:
    if text is None:
        return None
    if text.lower() not in ("true", "false"):
        raise ErrorReply(400, f"hideResults: must be true or false, not {text!r}")
    return text.lower() == "true"


def _date(name: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        stamp = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ErrorReply(400, f"{name}: {text!r} is not an ISO 8601 date") from None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def _encode(mark: tuple[float, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(mark)).encode()).decode().rstrip("=")


def _token(text: str | None) -> tuple[float, str] | None:
    if not text:
        return None
    try:
        value: Any = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        key, job_id = value
        if isinstance(key, (int, float)) and not isinstance(key, bool) and isinstance(job_id, str):
            return float(key), job_id
    except (ValueError, TypeError, binascii.Error):
        pass
    raise ErrorReply(400, "paginationToken: not a token this API gave")
