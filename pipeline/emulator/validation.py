"""Checks of a generate request: the model id, the body against `pipeline.manifest.params` (the single source of
truth, never duplicated here) and each file parameter against the account's assets."""

from __future__ import annotations

from typing import Any

from pipeline.emulator.assets import AssetStore
from pipeline.emulator.replies import ErrorReply
from pipeline.manifest.params import FILE_PARAMS, MODEL_ID, check_params

FILE_KINDS: dict[str, str] = {"video": "video", "conditioningVideo": "video", "image": "image"}
"""The asset kind each file parameter must reference."""


def check_generate(model_id: str, body: Any, assets: AssetStore) -> dict[str, Any]:
    """The normalised parameters of a generate request (width/height rounded to 64, as the API does).

    Raises ErrorReply: 404 for an unknown model; 400 `{"error", "details": ["<param>: <message>", ...]}`
    for a body that is not an object, bad parameters, or file parameters naming a missing asset or one
    of the wrong kind. Warnings (such as rounding) are accepted silently, like the real API.
    """
    if model_id != MODEL_ID:
        raise ErrorReply(404, f"Model not found: {model_id}")
    if not isinstance(body, dict):
        raise ErrorReply(400, "request body must be a JSON object")
    checked = check_params(body, files=True)
    details = [f"{name}: {message}" for name, message in checked.errors]
    for name in FILE_PARAMS:
        asset_id = checked.values.get(name)
        if asset_id is None:
            continue
        asset = assets.get(asset_id)
        wanted = FILE_KINDS.get(name, "video")
        if asset is None:
            details.append(f"{name}: asset {asset_id!r} not found")
        elif asset.kind != wanted:
            details.append(f"{name}: asset {asset_id!r} is a {asset.kind}, not a {wanted}")
    if details:
        raise ErrorReply(400, "Invalid parameters: " + "; ".join(details), details=details)
    return checked.values
