"""The manifest's `inputs`: local files (checked, then hashed once each in chunks) or existing asset ids.

A string is an asset id when it is `asset_` followed by letters, digits, `_` or `-`; anything
else is a path, relative to the manifest's folder (write `./asset_x.mp4` for a file so named).

Any file input of the model (`file` or `file_array`, whatever it is called) is read here. A `file` input takes
one file, or a list of files: one job each. A `file_array` input takes a list of files as ONE value (every file
sent in one job: `referenceVideos: [a.mp4, b.mp4]`; a single file is a list of one), or a list of such lists:
one job each (`referenceVideos: [[a.mp4, b.mp4], [c.mp4]]`). Each file is checked against what the model says
of the input where it can be told locally: its kind (by the file's name) and `maxSize`.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from pipeline.manifest.expand import Video
from pipeline.manifest.schema import ModelInput
from pipeline.spec import InputRef
from pipeline.yamlpos import Path, describe

ASSET_ID = re.compile(r"asset_[A-Za-z0-9_-]+")
CHUNK_BYTES = 1 << 20
MEDIA_KINDS = ("video", "image", "audio")
CONTAINERS = frozenset({"video", "audio"})  # an .mp4 or .webm may hold either: their names do not tell them apart

Report = Callable[[Path, str], None]


@dataclass(frozen=True, slots=True)
class Inputs:
    """The values of one file input as written: one value, or a list of values (one job each).

    A value is one file for a `file` input, a list of files for a `file_array` input."""

    labels: tuple[str, ...]  # each value as written: a path or an asset id (a list's joined by ', ')
    refs: tuple[tuple[InputRef, ...] | None, ...]  # each value's files; None: a value that cannot be used
    paths: tuple[Path, ...]  # of each value
    path: Path  # of the input
    array: bool = False  # a `file_array` input

    @property
    def usable(self) -> bool:
        return None not in self.refs


class InputFiles:
    """Reads `inputs` entries against one folder; each distinct file is hashed once (cached by path)."""

    def __init__(self, base_dir: FsPath, report: Report) -> None:
        self.base_dir = base_dir
        self.report = report
        self.hashes: dict[str, tuple[str, int] | None] = {}

    def read(self, param: str, raw: Any, path: Path, item: ModelInput | None = None) -> Inputs | None:
        """One input's values (see the module docstring), each checked; None for an empty list.

        `item`: what the model says of the input (None: not known, read as a `file` input). A value that
        cannot be used keeps its place with a None ref, so the jobs can still be counted."""
        if item is not None and item.is_array:
            return self.read_array(param, raw, path, item)
        if not isinstance(raw, list):
            return Inputs((str(raw),), (self.one(param, raw, path, item),), (path,), path)
        if not raw:
            self.report(path, "must be a path, an asset id or a non-empty list of them, not an empty list")
            return None
        refs = tuple(self.one(param, entry, (*path, i), item) for i, entry in enumerate(raw))
        return Inputs(tuple(map(str, raw)), refs, tuple((*path, i) for i in range(len(raw))), path)

    def read_array(self, param: str, raw: Any, path: Path, item: ModelInput) -> Inputs | None:
        """A `file_array` input: one list of files (a single file: a list of one), or a list of lists."""
        nested = isinstance(raw, list) and any(isinstance(entry, list) for entry in raw)
        if nested and not all(isinstance(entry, list) for entry in raw):
            self.report(path, "mixes files and lists: give one list of files (sent together in every job), or a "
                              "list of lists (one job each), e.g. [[a.mp4, b.mp4], [c.mp4]]")
            return None
        if isinstance(raw, list) and not raw:
            self.report(path, "must be a path, an asset id or a non-empty list of them, not an empty list "
                              "(leave the input out to send none)")
            return None
        values = [(entry, (*path, i)) for i, entry in enumerate(raw)] if nested else [(raw, path)]
        labels, refs = [], []
        for value, where in values:
            files = value if isinstance(value, list) else [value]
            labels.append(", ".join(map(str, files)))
            refs.append(self.many(param, files, where, item, listed=isinstance(value, list)))
        return Inputs(tuple(labels), tuple(refs), tuple(where for _, where in values), path, array=True)

    def many(self, param: str, files: list[Any], path: Path, item: ModelInput, *, listed: bool
             ) -> tuple[InputRef, ...] | None:
        """One value of a `file_array` input: its files in order, their count within the input's limits."""
        if not files:
            self.report(path, "must list at least one file, not an empty list (leave the input out to send none)")
            return None
        usable = True
        if item.max_length is not None and len(files) > item.max_length:
            self.report(path, f"lists {len(files)} files; {param} takes at most {item.max_length} (a list under a "
                              "file_array input is one value, sent in one job; a list of lists makes one job each)")
            usable = False
        if item.min_length is not None and len(files) < item.min_length:
            self.report(path, f"lists {len(files)} file{'s' if len(files) != 1 else ''}; {param} takes at least "
                              f"{item.min_length}")
            usable = False
        refs = [self.ref(param, entry, (*path, i) if listed else path, item, index=i) for i, entry in enumerate(files)]
        if not usable or None in refs:
            return None
        return tuple(ref for ref in refs if ref is not None)

    def one(self, param: str, entry: Any, path: Path, item: ModelInput | None) -> tuple[InputRef, ...] | None:
        ref = self.ref(param, entry, path, item)
        return None if ref is None else (ref,)

    def ref(self, param: str, entry: Any, path: Path, item: ModelInput | None = None, *,
            index: int | None = None) -> InputRef | None:
        if not isinstance(entry, str) or not entry.strip() or "\x00" in entry:
            self.report(path, f"must be a file path or an asset id (asset_...), not {describe(entry)}")
            return None
        wanted = item.kind if item is not None else None
        if ASSET_ID.fullmatch(entry):
            return InputRef(param, "asset", asset_id=entry, media=wanted, index=index)
        if entry.startswith("asset_") and "/" not in entry and "." not in entry:
            self.report(path, f"{entry!r} is not a valid asset id (asset_ then letters, digits, '_' or '-')")
            return None
        full = os.path.abspath(self.base_dir / FsPath(entry).expanduser())
        if full not in self.hashes:
            self.hashes[full] = self.hash_file(full, path)
        found = self.hashes[full]
        if found is None:
            return None
        named = media_of(full)
        if wanted in MEDIA_KINDS and named is not None and named != wanted and {named, wanted} != CONTAINERS:
            self.report(path, f"{param} takes {_article(wanted)} {wanted}, but {os.path.basename(full)} is named "
                              f"as {_article(named)} {named} file")
            return None
        if item is not None and item.max_size_bytes is not None and found[1] > item.max_size_bytes:
            self.report(path, f"{os.path.basename(full)} is {found[1]:,} bytes; {param} takes at most "
                              f"{item.max_size_bytes:,}")
            return None
        return InputRef(param, "file", path=full, sha256=found[0], size_bytes=found[1], media=wanted or named,
                        index=index)

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


def media_of(name: str) -> str | None:
    """The media kind a file's name says (`clip.mp4`: video), or None when it says none of video, image, audio."""
    mime = mimetypes.guess_type(name)[0] or ""
    major = mime.partition("/")[0]
    return major if major in MEDIA_KINDS else None


def pair_inputs(inputs: Mapping[str, Inputs], order: Sequence[str], report: Report
                ) -> tuple[str, tuple[Video, ...], bool]:
    """The input axis: its leading input, and each step with the value of every input (one for every step, or
    one per step).

    The axis is led by `video` when it is given, else by the first input (in `order`, the model's) with the most
    values. Returns the leader, the steps and whether they are as written: a list of the wrong length is
    reported and paired as well as it can be (its last value repeated or its extra ones left out); an unusable
    value is left out of its step's refs."""
    given = [param for param in order if param in inputs]
    leader = "video" if "video" in inputs else max(given, key=lambda param: len(inputs[param].refs))
    count = len(inputs[leader].refs)
    mismatched = [entries for entries in inputs.values() if len(entries.refs) not in (1, count)]
    for entries in mismatched:
        what = "lists of files" if entries.array else "files"
        report(entries.path, f"lists {len(entries.refs)} {what} but inputs.{leader} lists {count}; "
                             f"give one for every {leader}, or one per {leader}")
    steps = []
    for i in range(count):
        picked = {param: min(i, len(inputs[param].refs) - 1) for param in given}
        usable = [param for param in given if inputs[param].refs[picked[param]] is not None]
        steps.append(Video(
            label=inputs[leader].labels[i],
            refs=tuple(ref for param in usable for ref in inputs[param].refs[picked[param]] or ()),
            paths={param: inputs[param].paths[picked[param]] for param in usable},
        ))
    return leader, tuple(steps), not mismatched and all(entries.usable for entries in inputs.values())


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
