"""`GET /v1/models/{modelId}`: the LTX-2 19B video-to-video model and its inputs, from `pipeline.manifest.params` (pure).

The shape is api-notes "Other models" and scenario-sdk 2.4.0
`types/model_retrieve_response.py` (`Model`, `ModelInput`): every input has `name`
and `type` (integers are `number` with `step: 1`), and where they apply `default`,
`min`, `max`, `allowedValues`, `kind` for files and `required` as an object
(`always`, or `ifDefined: {other: {message}}` for the width/height pair).
"""

from __future__ import annotations

from typing import Any

from pipeline.manifest.params import MODEL_ID, PARAMS, Param

FILE_KINDS: dict[str, str] = {"video": "video", "conditioningVideo": "video", "image": "image"}
COST_INPUTS = ("duration", "resolution", "width", "height", "numInferenceSteps")  # what `pricing` reads
MODEL_CREATED_AT = "2025-11-20T00:00:00.000Z"


def model_input(param: Param, *, max_file_bytes: int | None = None) -> dict[str, Any]:
    """One entry of the model's `inputs`."""
    out: dict[str, Any] = {"name": param.name, "type": "number" if param.kind == "integer" else param.kind,
                           "description": param.description}
    if param.default is not None:
        out["default"] = param.default
    if param.minimum is not None:
        out["min"] = param.minimum
    if param.maximum is not None:
        out["max"] = param.maximum
    if param.kind == "integer":
        out["step"] = 1
    if param.multiple_of:
        out["step"] = param.multiple_of
    if param.choices:
        out["allowedValues"] = list(param.choices)
    if param.kind == "file":
        out["kind"] = FILE_KINDS.get(param.name, "video")
        if max_file_bytes is not None:
            out["maxSize"] = max_file_bytes
    if param.name in COST_INPUTS:
        out["costImpact"] = True
    if param.required:
        out["required"] = {"always": True}
    elif param.paired_with:
        out["required"] = {"ifDefined": {param.paired_with: {
            "message": f"{param.name} must be given together with {param.paired_with}"}}}
    return out


def model_json(*, max_file_bytes: int | None = None) -> dict[str, Any]:
    """The model as `GET /v1/models/{modelId}` shows it."""
    return {
        "id": MODEL_ID, "name": "LTX-2 19B Video to Video", "type": "custom", "custom": True, "status": "trained",
        "source": "scenario", "privacy": "public", "capabilities": ["video2video"], "tags": [],
        "collectionIds": [], "exampleAssetIds": [], "trainingImagesNumber": 0,
        "createdAt": MODEL_CREATED_AT, "updatedAt": MODEL_CREATED_AT,
        "inputs": [model_input(param, max_file_bytes=max_file_bytes) for param in PARAMS.values()],
    }
