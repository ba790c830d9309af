"""`GET /v1/models/{modelId}` and the model listings (pure): the built-in LTX-2 19B model and `catalog`'s.

The shape is api-notes "Other models" and scenario-sdk 2.4.0 `types/model_retrieve_response.py` (`Model`,
`ModelInput`). The built-in model's inputs come from `pipeline.manifest.schema.builtin_schema` (itself the
parameter table): every input has `name` and `type` (integers are `number` with `step: 1`), and where they
apply `default`, `min`, `max`, `allowedValues`, `kind` for files and `required` as an object.

Listings (scenario-sdk `resources/models/models.py` `list`, `types/model_list_params.py`, the plugin's capture
of `GET /models?privacy=public&pageSize=5`): `{"models": [...], "nextPaginationToken"?}`, rows without
`inputs` (nor `uiConfig`); `pageSize` 1..500, default 100. `privacy=public` lists the public models; without
it (`private`, the default) the account's own, of which the emulated account has none. `GET /v1/models/public`
(issue 15's name for the public listing) answers the same as `privacy=public`.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Mapping
from typing import Any

from pipeline.emulator.catalog import HOSTED
from pipeline.emulator.replies import ErrorReply, page_size
from pipeline.manifest.params import MODEL_ID
from pipeline.manifest.schema import ModelSchema, builtin_schema, input_json, parse_model

MODEL_CREATED_AT = "2025-11-20T00:00:00.000Z"
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 500
LISTED_WITHOUT = ("inputs", "uiConfig")  # what a listed row leaves out


def builtin_json(*, max_file_bytes: int | None = None) -> dict[str, Any]:
    """The built-in model as `GET /v1/models/{modelId}` shows it (`max_file_bytes`: each file's `maxSize`)."""
    schema = builtin_schema()
    inputs = []
    for item in schema.inputs:
        shown = input_json(item)
        if item.is_file and max_file_bytes is not None:
            shown["maxSize"] = max_file_bytes
        inputs.append(shown)
    return {
        "id": MODEL_ID, "name": schema.name, "type": "custom", "custom": True, "status": "trained",
        "source": "scenario", "privacy": "public", "capabilities": list(schema.capabilities), "tags": [],
        "collectionIds": [], "exampleAssetIds": [], "trainingImagesNumber": 0,
        "createdAt": MODEL_CREATED_AT, "updatedAt": MODEL_CREATED_AT, "inputs": inputs,
    }


def model_json(model_id: str = MODEL_ID) -> dict[str, Any]:
    """A model as `GET /v1/models/{modelId}` shows it; ErrorReply 404 for one the emulator does not serve."""
    if model_id == MODEL_ID:
        return builtin_json()
    for record in HOSTED:
        if record["id"] == model_id:
            return dict(record)
    raise ErrorReply(404, f"Model not found: {model_id}")


@functools.cache
def schema_of(model_id: str) -> ModelSchema | None:
    """The schema a generate body for `model_id` is checked against, or None for a model not served
    (or one without inputs: not a `generate/custom` model)."""
    if model_id == MODEL_ID:
        return builtin_schema()
    for record in HOSTED:
        if record["id"] == model_id and record.get("custom") and record.get("inputs"):
            return parse_model(record)
    return None


def list_models(query: Mapping[str, str], *, public: bool | None = None) -> dict[str, Any]:
    """One page of `GET /v1/models` (`public`: None reads `privacy` from the query; ErrorReply 400 for a bad
    query)."""
    privacy = query.get("privacy", "private")
    if privacy not in ("private", "public"):
        raise ErrorReply(400, f"privacy: must be private or public, not {privacy!r}")
    if public is None:
        public = privacy == "public"
    rows = [row(builtin_json()), *(row(record) for record in HOSTED)] if public else []
    size = page_size(query.get("pageSize"), default=DEFAULT_PAGE_SIZE, most=MAX_PAGE_SIZE)
    start = _offset(query.get("paginationToken"), len(rows))
    out: dict[str, Any] = {"models": rows[start:start + size]}
    if start + size < len(rows):
        out["nextPaginationToken"] = base64.urlsafe_b64encode(f"models:{start + size}".encode()).decode()
    return out


def row(record: Mapping[str, Any]) -> dict[str, Any]:
    """A model as a listing shows it: no inputs."""
    return {key: value for key, value in record.items() if key not in LISTED_WITHOUT}



def _offset(token: str | None, total: int) -> int:
    if not token:
        return 0
    try:
        kind, _, number = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if kind == "models" and number.isdigit() and int(number) <= total:
            return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise ErrorReply(400, "paginationToken: not a token this API gave")
