"""Models on the API: one model's description (`GET /v1/models/{modelId}`) and the listings, as raw JSON.

api-notes "Other models" (confirmed: TS SDK Model type; the official Blender plugin's fixtures):
`GET /v1/models/{modelId}` answers `{"model": {..., "inputs": [...]}}`. The public models are listed by
`GET /v1/models?privacy=public` (scenario-sdk 2.4.0 `models.list(privacy="public")`; the plugin recorded
`GET /models?privacy=public&pageSize=5`), the account's own by `GET /v1/models`; both paginated
(`pageSize` up to 500, `paginationToken` -> `nextPaginationToken`), rows without `inputs`, no server-side
capability filter. Parsing the description into a schema is `pipeline.manifest.schema`'s job (a layer this
one may not import): here it is only checked to be a model object.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote

from pipeline.api.budget import LOOKUP
from pipeline.api.client import ApiClient
from pipeline.errors import ApiError, BadResponse, InputError

log = logging.getLogger(__name__)

MODEL_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
LIST_PAGE_SIZE = 100
MAX_LIST_PAGES = 100  # 10,000 models: a listing that never ends is cut here


class UnknownModel(InputError):
    """The API does not know the model id (404), or it is not a model id at all: exit status 2."""


def check_model_id(model_id: str) -> str:
    """The id itself, or UnknownModel when it cannot be one (it becomes part of a URL and of a file name)."""
    if not MODEL_ID_PATTERN.fullmatch(model_id):
        raise UnknownModel(f"{model_id!r} is not a model id (letters, digits, '.', '_' and '-', such as "
                           "model_ltx-2-19b-video-to-video)")
    return model_id


async def fetch_model(api: ApiClient, model_id: str) -> dict[str, Any]:
    """The `model` object of `GET /v1/models/{modelId}`. UnknownModel for a 404; other errors as the client
    raises them (AuthError, TransientApiError after its retries, BadResponse for an answer without a model)."""
    check_model_id(model_id)
    try:
        data = await api.call("GET", f"/v1/models/{quote(model_id)}", LOOKUP)
    except ApiError as exc:
        if exc.status == 404:
            raise UnknownModel(f"unknown model id {model_id!r}: {api.base_url} answered 404 to GET /v1/models/"
                               f"{model_id} (`ltx-batch models` lists the models generate/custom can run)") from None
        raise
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or model.get("id") != model_id:
        raise BadResponse(200, f"GET /v1/models/{model_id} answered no model object of that id")
    return model


async def list_models(api: ApiClient, *, public: bool, page_size: int = LIST_PAGE_SIZE) -> list[dict[str, Any]]:
    """Every row of the public listing (`public`) or of the account's own models, page after page."""
    params = {"pageSize": str(page_size), **({"privacy": "public"} if public else {})}
    rows: list[dict[str, Any]] = []
    seen_tokens: set[str] = set()
    for _ in range(MAX_LIST_PAGES):
        data = await api.call("GET", "/v1/models", LOOKUP, params=params)
        page = data.get("models") if isinstance(data, dict) else None
        if not isinstance(page, list):
            raise BadResponse(200, "GET /v1/models answered no `models` list")
        rows += [row for row in page if isinstance(row, dict) and isinstance(row.get("id"), str)]
        token = data.get("nextPaginationToken")
        if not isinstance(token, str) or not token or token in seen_tokens:
            return rows
        seen_tokens.add(token)
        params = {**params, "paginationToken": token}
    log.warning("the model listing was cut after %d pages of %d", MAX_LIST_PAGES, page_size)
    return rows
