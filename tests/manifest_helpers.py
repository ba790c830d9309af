"""Helpers shared by the manifest tests: a folder of small input files and a manifest written into it."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from pipeline.emulator.catalog import HOSTED
from pipeline.errors import ManifestError, Problem
from pipeline.manifest.load import Manifest, load_manifest
from pipeline.manifest.schema import ModelSchema, builtin_schema, parse_model

INPUT_FILES = {"clip.mp4": b"video one", "other.mp4": b"video two", "first.png": b"an image", "depth.mp4": b"depth"}


def write_inputs(folder: Path) -> None:
    for name, data in INPUT_FILES.items():
        (folder / name).write_bytes(data)


def load_text(folder: Path, text: str, name: str = "m.yaml", schemas: Mapping[str, ModelSchema | str] | None = None
              ) -> Manifest:
    """Write `text` (dedented) to folder/name next to the sample inputs and load it (`schemas`: of its models
    besides the built-in one)."""
    write_inputs(folder)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_manifest(path, schemas)


def problems_of(folder: Path, text: str, schemas: Mapping[str, ModelSchema | str] | None = None) -> list[Problem]:
    """The problems a manifest text is rejected with (fails the test if it is accepted)."""
    with pytest.raises(ManifestError) as caught:
        load_text(folder, text, schemas=schemas)
    return caught.value.problems


def hosted_schemas() -> dict[str, ModelSchema]:
    """The schemas of the models the emulator serves besides the built-in one, by id."""
    return {record["id"]: parse_model(record) for record in HOSTED if record.get("inputs")}


def renamed_builtin(model_id: str) -> ModelSchema:
    """The built-in LTX-2 19B schema under another model id (a model with the same parameters)."""
    return dataclasses.replace(builtin_schema(), model_id=model_id, builtin=False)
