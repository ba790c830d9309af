"""`GET /v1/jobs`, every page of one listing (api-notes "Listing", confirmed by scenario-sdk `jobs.list`).

Pages follow `nextPaginationToken` until it is absent. scenario-sdk's `jobs.list` says "a page can hold
fewer jobs than pageSize, or none, while nextPaginationToken is set: keep paginating until it is absent",
so neither a short page nor an empty one ends a listing. A page answer of the wrong shape is asked for
again (up to `max_retries`), like any malformed answer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pipeline.errors import ApiError, BadResponse

if TYPE_CHECKING:
    from pipeline.api.client import ApiClient

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # the most the API gives in one page
MAX_PAGES = 1000  # 100,000 rows: a listing this long is not one run's


async def list_jobs(api: ApiClient, params: Mapping[str, str], *, priority: int, retries: int,
                    max_pages: int = MAX_PAGES) -> list[dict[str, Any]]:
    """Every row of one listing with these filters, all pages (`pageSize` 100); rows that are not objects are
    left out. ApiError when a page is refused, stays malformed, or the listing does not end within `max_pages`."""
    rows: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(max_pages):
        query = {**params, "pageSize": str(PAGE_SIZE)}
        if token:
            query["paginationToken"] = token
        page, token = await _page(api, query, priority=priority, retries=retries)
        rows += [row for row in page if isinstance(row, dict)]
        if not token:
            return rows
    raise ApiError(200, f"the job listing did not end within {max_pages} pages")


async def _page(api: ApiClient, query: Mapping[str, str], *, priority: int,
                retries: int) -> tuple[list[Any], str | None]:
    """One page: its rows and the next page's token (None: the last page)."""
    for attempt in range(retries + 1):
        data = await api.call("GET", "/v1/jobs", priority, params=query)
        page = data.get("jobs") if isinstance(data, dict) else None
        token = data.get("nextPaginationToken") if isinstance(data, dict) else None
        if isinstance(page, list) and (token is None or isinstance(token, str)):
            return page, token or None
        log.debug("job listing page of the wrong shape (attempt %d); asking again", attempt + 1)
    raise BadResponse(200, "the job listing has no `jobs` list (or its nextPaginationToken is not text)")
