"""Helpers shared by the manifest tests: a folder of small input files and a manifest written into it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipeline.errors import ManifestError, Problem
from pipeline.manifest.load import Manifest, load_manifest

INPUT_FILES = {"clip.mp4": b"video one", "other.mp4": b"video two", "first.png": b"an image", "depth.mp4": b"depth"}


def write_inputs(folder: Path) -> None:
    for name, data in INPUT_FILES.items():
        (folder / name).write_bytes(data)


def load_text(folder: Path, text: str, name: str = "m.yaml") -> Manifest:
    """Write `text` (dedented) to folder/name next to the sample inputs and load it."""
    write_inputs(folder)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_manifest(path)


def problems_of(folder: Path, text: str) -> list[Problem]:
    """The problems a manifest text is rejected with (fails the test if it is accepted)."""
    with pytest.raises(ManifestError) as caught:
        load_text(folder, text)
    return caught.value.problems
