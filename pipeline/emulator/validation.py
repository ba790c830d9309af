"""Checks of a generate request: the model id, the body against that model's schema (`model.schema_of`: the
built-in one is the parameter table itself, never duplicated here) and each file against the account's assets.

A body that breaks the schema (an unknown name, a wrong type, a value out of range or not allowed, too many
files in an array, a `required` rule) is refused with 400, so a client sending off-schema parameters is caught
by its tests. Each file (of `file` and `file_array` inputs) must name an asset of the input's `kind`, within
its `maxSize`; `maxDuration` is not checked (the emulator does not know how long an uploaded video lasts).
"""

from __future__ import annotations

from typing import Any

from pipeline.emulator.assets import AssetStore
from pipeline.emulator.model import schema_of
from pipeline.emulator.replies import ErrorReply
from pipeline.manifest.schema import ModelSchema
from pipeline.manifest.schema_check import check_file, check_params


def check_generate(model_id: str, body: Any, assets: AssetStore) -> dict[str, Any]:
    """The normalised parameters of a generate request (width/height rounded to 64, as the API does).

    Raises ErrorReply: 404 for an unknown model; 400 `{"error", "details": ["<param>: <message>", ...]}`
    for a body that is not an object, parameters the model's schema refuses, or file parameters naming a
    missing asset or one of the wrong kind or size. Warnings (such as rounding) are accepted silently, like
    the real API.
    """
    schema = model_schema(model_id)
    if not isinstance(body, dict):
        raise ErrorReply(400, "request body must be a JSON object")
    checked = check_params(schema, body)
    details = [f"{name}: {message}" for name, message in checked.errors]
    for item in schema.file_inputs:
        value = checked.values.get(item.name)
        for i, asset_id in enumerate(value if isinstance(value, list) else [] if value is None else [value]):
            where = f"{item.name}[{i}]" if item.is_array else item.name
            asset = assets.get(asset_id) if isinstance(asset_id, str) else None
            if asset is None:
                details.append(f"{where}: asset {asset_id!r} not found")
                continue
            details += [f"{where}: asset {asset_id!r} {problem}"
                        for problem in check_file(item, kind=asset.kind, size_bytes=asset.size)]
    if details:
        raise ErrorReply(400, "Invalid parameters: " + "; ".join(details), details=details)
    return checked.values


def model_schema(model_id: str) -> ModelSchema:
    """The schema of a model this emulator runs; ErrorReply 404 otherwise."""
    schema = schema_of(model_id)
    if schema is None:
        raise ErrorReply(404, f"Model not found: {model_id}")
    return schema
