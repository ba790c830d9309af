"""The manifest's `inputs`: local files (checked, then hashed once each in chunks) or existing asset ids.

A string is an asset id when it is `asset_` followed by letters, digits, `_` or `-`; anything
else is a path, relative to the manifest's folder (write `./asset_x.mp4` for a file so named).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from pipeline.manifest.expand import Video
from pipeline.manifest.params import FILE_PARAMS
from pipeline.spec import InputRef
from pipeline.yamlpos import Path, describe

ASSET_ID = re.compile(r"asset_[A-Za-z0-9_-]+")
CHUNK_BYTES = 1 << 20

Report = Callable[[Path, str], None]


@dataclass(frozen=True, slots=True)
class Inputs:
    """The entries of one file parameter as written (`inputs.video` may list several)."""

    labels: tuple[str, ...]  # as written: a path or an asset id
    refs: tuple[InputRef | None, ...]  # None: an entry that cannot be used (its problem is recorded)
    paths: tuple[Path, ...]  # of each entry
    path: Path  # of the parameter

    @property
    def usable(self) -> bool:
        return None not in self.refs


class InputFiles:
    """Reads `inputs` entries against one folder; each distinct file is hashed once (cached by path)."""

    def __init__(self, base_dir: FsPath, report: Report) -> None:
        self.base_dir = base_dir
        self.report = report
        self.hashes: dict[str, tuple[str, int] | None] = {}

    def read(self, param: str, raw: Any, path: Path) -> Inputs | None:
        """One parameter's entries (a string or a non-empty list of them), each checked; None for an empty list.

        An entry that cannot be used keeps its place with a None ref, so the videos can still be counted."""
        if not isinstance(raw, list):
            return Inputs((str(raw),), (self.ref(param, raw, path),), (path,), path)
        if not raw:
            self.report(path, "must be a path, an asset id or a non-empty list of them, not an empty list")
            return None
        refs = tuple(self.ref(param, item, (*path, i)) for i, item in enumerate(raw))
        return Inputs(tuple(map(str, raw)), refs, tuple((*path, i) for i in range(len(raw))), path)

    def ref(self, param: str, item: Any, path: Path) -> InputRef | None:
        if not isinstance(item, str) or not item.strip() or "\x00" in item:
            self.report(path, f"must be a file path or an asset id (asset_...), not {describe(item)}")
            return None
        if ASSET_ID.fullmatch(item):
            return InputRef(param, "asset", asset_id=item)
        if item.startswith("asset_") and "/" not in item and "." not in item:
            self.report(path, f"{item!r} is not a valid asset id (asset_ then letters, digits, '_' or '-')")
            return None
        full = os.path.abspath(self.base_dir / FsPath(item).expanduser())
        if full not in self.hashes:
            self.hashes[full] = self.hash_file(full, path)
        found = self.hashes[full]
        return None if found is None else InputRef(param, "file", path=full, sha256=found[0], size_bytes=found[1])

    def hash_file(self, full: str, path: Path) -> tuple[str, int] | None:
        """sha256 and size of a local input, streamed in chunks; None (and a located problem) if unusable."""
        try:
            if not stat.S_ISREG(os.stat(full).st_mode):
                self.report(path, f"not a regular file: {full}")
                return None
            digest, size = hashlib.sha256(), 0
            with open(full, "rb") as stream:
                while chunk := stream.read(CHUNK_BYTES):
                    digest.update(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            self.report(path, f"file not found: {full}")
            return None
        except OSError as exc:
            self.report(path, f"cannot read {full}: {exc.strerror or exc}")
            return None
        if size == 0:
            self.report(path, f"the file is empty: {full}")
            return None
        return digest.hexdigest(), size


def pair_videos(inputs: Mapping[str, Inputs], report: Report) -> tuple[tuple[Video, ...], bool]:
    """The video axis: each video with its image/conditioningVideo (one for every video, or one per video).

    Returns the videos and whether they are as written: a list of the wrong length is reported and paired
    as well as it can be (its last entry repeated or its extra ones left out); an unusable entry is left out
    of its video's refs."""
    count = len(inputs["video"].refs)
    mismatched = [entries for entries in inputs.values() if len(entries.refs) not in (1, count)]
    for entries in mismatched:
        report(entries.path, f"lists {len(entries.refs)} files but inputs.video lists {count}; "
                             "give one for every video, or one per video")
    order = [param for param in FILE_PARAMS if param in inputs]
    videos = []
    for i in range(count):
        picked = {param: min(i, len(inputs[param].refs) - 1) for param in order}
        usable = [param for param in order if inputs[param].refs[picked[param]] is not None]
        videos.append(Video(
            label=inputs["video"].labels[i],
            refs=tuple(ref for param in usable if (ref := inputs[param].refs[picked[param]]) is not None),
            paths={param: inputs[param].paths[picked[param]] for param in usable},
        ))
    return tuple(videos), not mismatched and all(entries.usable for entries in inputs.values())
