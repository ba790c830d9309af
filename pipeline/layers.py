"""Reading the manifest's blocks (the top level and each batch) and merging them into `Batch`es.

Each value is checked once, where it is written, against the parameter table in `params`;
every problem is collected with its location (`batches[0].sweep.videoStrength[2]`) and line.
Local input files are checked and hashed here, once each.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from pipeline.errors import Problem
from pipeline.expand import Axis, Batch, Prompt, Video
from pipeline.params import FILE_PARAMS, MODEL_ID, PARAMS, check_value, suggest, unknown_message
from pipeline.spec import InputRef
from pipeline.yamlpos import Path, Tree, format_path

MAX_JOBS = 1_000_000  # per manifest: beyond this, split it
ASSET_ID = re.compile(r"asset_[A-Za-z0-9_-]+")
MODEL_PATTERN = re.compile(r"model_[A-Za-z0-9._-]+")
SEEDS_KEYS = ("count", "from")
CHUNK_BYTES = 1 << 20


class _Invalid:
    """Marks an entry that was written but is invalid (its problem is already recorded)."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()


@dataclass(frozen=True, slots=True)
class At:
    """A checked value and where it is written."""

    value: Any
    path: Path


@dataclass(frozen=True, slots=True)
class Inputs:
    """The entries of one file parameter (`inputs.video` may list several)."""

    labels: tuple[str, ...]
    refs: tuple[InputRef, ...]
    paths: tuple[Path, ...]  # of each entry
    path: Path  # of the parameter


@dataclass(slots=True)
class Layer:
    """One block as written (top level or one batch).

    Dict entries set to None remove an inherited key; INVALID marks an entry whose problem is recorded.
    """

    model: At | None = None
    inputs: dict[str, Any] = field(default_factory=dict)  # param -> Inputs | None | INVALID
    defaults: dict[str, Any] = field(default_factory=dict)  # name -> At | None | INVALID
    prompts: Any = None  # tuple[Prompt, ...] | None (not given) | INVALID
    sweep: dict[str, Any] = field(default_factory=dict)  # name -> Axis | None | INVALID
    zip: dict[str, Any] = field(default_factory=dict)
    seeds: At | None = None  # value: range | tuple[int, ...] | None (written as null: derived) | INVALID


class Reader:
    """Checks blocks of one manifest, collecting problems and warnings; caches file hashes by path."""

    def __init__(self, tree: Tree, base_dir: FsPath) -> None:
        self.tree = tree
        self.base_dir = base_dir
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.hashes: dict[str, tuple[str, int] | None] = {}

    def error(self, path: Path, message: str) -> None:
        self.problems.append(self.tree.problem(path, message))

    def warn(self, path: Path, message: str) -> None:
        self.warnings.append(self.tree.problem(path, message))

    @staticmethod
    def kind(value: Any) -> str:
        if value is None:
            return "null"
        if isinstance(value, bool):
            return f"the boolean {str(value).lower()}"
        if isinstance(value, (int, float)):
            return f"the number {value}"
        if isinstance(value, str):
            return f"the text {value[:40]!r}"
        return {list: "a list", dict: "a mapping"}.get(type(value), f"a {type(value).__name__}")

    def name(self, value: Any, path: Path, pattern: re.Pattern[str]) -> str | None:
        if isinstance(value, str) and pattern.fullmatch(value):
            return value
        shown = repr(value) if isinstance(value, str) else self.kind(value)
        self.error(path, f"must be a name of letters, digits, '.', '_' or '-' (at most 100 characters), not {shown}")
        return None

    def layer(self, doc: dict[str, Any], path: Path, allowed: tuple[str, ...]) -> Layer:
        layer = Layer()
        for key, raw in doc.items():
            here = (*path, key)
            if key not in allowed:
                self.error(here, _unknown_key(key, allowed))
            elif key == "model" and raw is not None:
                if isinstance(raw, str) and MODEL_PATTERN.fullmatch(raw):
                    layer.model = At(raw, here)
                    if raw != MODEL_ID:
                        self.warn(here, f"parameters are checked against the table of {MODEL_ID}")
                else:
                    self.error(here, f"must be a model id (model_...), not {self.kind(raw)}")
                    layer.model = At(INVALID, here)
            elif key == "inputs":
                layer.inputs = self.mapping(raw, here, "video, image or conditioningVideo", self.inputs)
            elif key == "defaults":
                layer.defaults = self.mapping(raw, here, "parameter: value", self.setting)
            elif key == "sweep" or key == "zip":
                setattr(layer, key, self.mapping(raw, here, "parameter: [values]", self.axis))
            elif key == "prompts":
                found = self.prompts(raw, here)
                layer.prompts = INVALID if found is None else found
            elif key == "seeds":
                layer.seeds = At(self.seeds(raw, here), here)
        return layer

    def mapping(self, raw: Any, path: Path, shape: str, read: Any) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.error(path, f"must be a mapping ({shape}), not {self.kind(raw)}")
            return {"": INVALID}
        out = {}
        for key, value in raw.items():
            here = (*path, key)
            if value is not None:
                found = read(key, value, here)
                out[key] = INVALID if found is None else found
            elif read == self.inputs and key not in FILE_PARAMS:
                self.error(here, _unknown_key(key, FILE_PARAMS))
            elif read == self.inputs or self.settable(key, here):
                out[key] = None  # null: drop this key, also one inherited from the top level
        return out

    def settable(self, name: str, path: Path, *, text: bool = False) -> bool:
        """Whether a parameter may be set here (defaults, overrides, sweep, zip); records why not."""
        if name in FILE_PARAMS:
            self.error(path, f"{name!r} is a file: give it under 'inputs'")
        elif name == "prompt" and not text:
            self.error(path, "prompts are given under 'prompts'")
        elif name == "seed":
            self.error(path, "seeds are given with the 'seeds' key")
        elif name not in PARAMS:
            self.error(path, unknown_message(name))
        else:
            return True
        return False

    def value(self, name: str, raw: Any, path: Path) -> tuple[bool, Any]:
        """Check one value against the table: (ok, normalised value); integral numbers become ints."""
        if raw is None:
            return True, None
        value, error, warning = check_value(PARAMS[name], raw)
        if error:
            self.error(path, error)
            return False, None
        if warning:
            self.warn(path, warning)
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 1 and 1.0 are the same request, so the same key
        return True, value

    def setting(self, name: str, raw: Any, path: Path) -> At | None:
        if not self.settable(name, path):
            return None
        ok, value = self.value(name, raw, path)
        return At(value, path) if ok else None

    def axis(self, name: str, raw: Any, path: Path) -> Axis | None:
        if not self.settable(name, path):
            return None
        if not isinstance(raw, list) or not raw:
            what = "an empty list" if raw == [] else self.kind(raw)
            self.error(path, f"must be a non-empty list of values (a single value goes in 'defaults'), not {what}")
            return None
        values, paths, first = [], [], {}
        for i, item in enumerate(raw):
            ok, value = self.value(name, item, (*path, i))
            if not ok:
                continue
            marker = repr(value)
            if marker in first:
                self.error((*path, i), f"{value!r} is listed twice (also {format_path((*path, first[marker]))})")
                continue
            first[marker] = i
            values.append(value)
            paths.append((*path, i))
        return Axis(name, tuple(values), tuple(paths), path) if len(values) == len(raw) else None

    def prompts(self, raw: Any, path: Path) -> tuple[Prompt, ...] | None:
        items = [raw] if isinstance(raw, (str, dict)) else raw
        if not isinstance(items, list) or not items:
            what = "an empty list" if raw == [] else self.kind(raw)
            self.error(path, f"must be a non-empty list of prompts (text or {{prompt: ..., <parameter>: ...}}), not {what}")
            return None
        out, first = [], {}
        for i, item in enumerate(items):
            here = (*path, i) if isinstance(raw, list) else path
            prompt = self.prompt(item, here)
            if prompt is None:
                continue
            marker = repr((prompt.text, sorted(prompt.overrides.items())))
            if marker in first:
                self.error(here, f"the same prompt is listed twice (also {format_path(first[marker])})")
            first.setdefault(marker, here)
            out.append(prompt)
        return tuple(out) if len(out) == len(items) else None

    def prompt(self, item: Any, path: Path) -> Prompt | None:
        if not isinstance(item, dict):
            ok, text = self.value("prompt", item, path)
            if item is None:
                self.error(path, "a prompt must be text, not null")
            return Prompt(text, {}, path) if ok and text is not None else None
        if "prompt" not in item:
            self.error(path, "a prompt given as a mapping needs a 'prompt' key (the text)")
            return None
        text, overrides, ok = None, {}, True
        for key, raw in item.items():
            here = (*path, key)
            if key == "prompt":
                good, text = self.value("prompt", raw, here)
                if raw is None:
                    self.error(here, "a prompt must be text, not null")
                ok = ok and good and text is not None
            elif (found := self.setting(key, raw, here)) is not None:
                overrides[key] = found.value  # None (null) unsets a default for this prompt
            else:
                ok = False
        return Prompt(text, overrides, path) if ok else None

    def seeds(self, raw: Any, path: Path) -> Any:
        if raw is None:
            return None
        if isinstance(raw, dict):
            return self.seed_range(raw, path)
        if isinstance(raw, list) and raw:
            items = raw
        elif isinstance(raw, int) and not isinstance(raw, bool):
            items = [raw]
        else:
            what = "an empty list" if raw == [] else self.kind(raw)
            self.error(path, f"must be a list of seeds or {{count: N, from: S}}, not {what}")
            return INVALID
        seeds: list[int] = []
        first: dict[int, int] = {}
        for i, item in enumerate(items):
            here = (*path, i) if isinstance(raw, list) else path
            value, error, _ = check_value(PARAMS["seed"], item)
            if error:
                self.error(here, f"a seed {error}")
            elif value in first:
                self.error(here, f"seed {value} is listed twice (also {format_path((*path, first[value]))})")
            else:
                first[value] = i
                seeds.append(int(value))
        return tuple(seeds) if len(seeds) == len(items) else INVALID

    def seed_range(self, raw: dict[str, Any], path: Path) -> Any:
        for key in raw:
            if key not in SEEDS_KEYS:
                self.error((*path, key), _unknown_key(key, SEEDS_KEYS))
        count, start = raw.get("count"), raw.get("from", 0)
        ok = True
        if "count" not in raw:
            self.error(path, "needs 'count' (how many seeds), e.g. {count: 8, from: 1000}")
            ok = False
        elif isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_JOBS:
            self.error((*path, "count"), f"must be a whole number from 1 to {MAX_JOBS:,}, not {self.kind(count)}")
            ok = False
        _, error, _ = check_value(PARAMS["seed"], start)
        if error or not isinstance(start, int):
            self.error((*path, "from"), f"must be a whole number >= 0 (the first seed), not {self.kind(start)}")
            ok = False
        if ok and start + count - 1 > PARAMS["seed"].maximum:
            self.error(path, f"the seeds run past the largest seed {int(PARAMS['seed'].maximum or 0)}")
            ok = False
        return range(start, start + count) if ok else INVALID

    def inputs(self, param: str, raw: Any, path: Path) -> Inputs | None:
        if param not in FILE_PARAMS:
            self.error(path, _unknown_key(param, FILE_PARAMS))
            return None
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            self.error(path, "must be a path, an asset id or a non-empty list of them, not an empty list")
            return None
        labels, refs, paths = [], [], []
        for i, item in enumerate(items):
            here = (*path, i) if isinstance(raw, list) else path
            ref = self.input_ref(param, item, here)
            if ref is not None:
                labels.append(item)
                refs.append(ref)
                paths.append(here)
        return Inputs(tuple(labels), tuple(refs), tuple(paths), path) if len(refs) == len(items) else None

    def input_ref(self, param: str, item: Any, path: Path) -> InputRef | None:
        if not isinstance(item, str) or not item.strip() or "\x00" in item:
            self.error(path, f"must be a file path or an asset id (asset_...), not {self.kind(item)}")
            return None
        if ASSET_ID.fullmatch(item):
            return InputRef(param, "asset", asset_id=item)
        if item.startswith("asset_") and "/" not in item and "." not in item:
            self.error(path, f"{item!r} is not a valid asset id (asset_ then letters, digits, '_' or '-')")
            return None
        full = os.path.abspath(self.base_dir / FsPath(item).expanduser())
        if full not in self.hashes:
            self.hashes[full] = self.hash_file(full, path)
        found = self.hashes[full]
        if found is None:
            return None
        return InputRef(param, "file", path=full, sha256=found[0], size_bytes=found[1])

    def hash_file(self, full: str, path: Path) -> tuple[str, int] | None:
        """sha256 and size of a local input, streamed in chunks; None (and a located error) if unusable."""
        try:
            if not stat.S_ISREG(os.stat(full).st_mode):
                self.error(path, f"not a regular file: {full}")
                return None
            digest, size = hashlib.sha256(), 0
            with open(full, "rb") as stream:
                while chunk := stream.read(CHUNK_BYTES):
                    digest.update(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            self.error(path, f"file not found: {full}")
            return None
        except OSError as exc:
            self.error(path, f"cannot read {full}: {exc.strerror or exc}")
            return None
        if size == 0:
            self.error(path, f"the file is empty: {full}")
            return None
        return digest.hexdigest(), size


def _unknown_key(key: str, allowed: tuple[str, ...]) -> str:
    hint = suggest(key, allowed)
    message = f"unknown key {key!r}"
    if hint:
        return f"{message} (did you mean {hint!r}?)"
    if key in FILE_PARAMS and "inputs" in allowed:
        return f"{message} (files go under 'inputs')"
    if key in PARAMS and "defaults" in allowed:
        return f"{message} (parameters go under 'defaults', 'sweep' or 'zip')"
    return f"{message}; expected one of {', '.join(allowed)}"


def merge(reader: Reader, top: Layer, own: Layer | None, name: str, path: Path) -> Batch | None:
    """One batch: the top level with the batch's own block over it; None if it cannot be built.

    `inputs`, `defaults`, `sweep` and `zip` merge key by key (the batch wins, null removes);
    `model`, `prompts` and `seeds` are replaced as a whole.
    """
    layers = [top] if own is None else [top, own]
    inputs, defaults, sweep, zipped = ({k: v for layer in layers for k, v in getattr(layer, part).items()}
                                       for part in ("inputs", "defaults", "sweep", "zip"))
    model = next((layer.model.value for layer in reversed(layers) if layer.model is not None), MODEL_ID)
    prompts = next((layer.prompts for layer in reversed(layers) if layer.prompts is not None), None)
    seeds = next((layer.seeds.value for layer in reversed(layers) if layer.seeds is not None), None)
    parts = [*inputs.values(), *defaults.values(), *sweep.values(), *zipped.values(), model, prompts, seeds]
    ok = not any(part is INVALID for part in parts)
    where = " (here or at the top level)" if own is not None else ""
    if "video" not in inputs or inputs["video"] is None:
        reader.error(path, f"no video: set inputs.video{where}")
        ok = False
    if prompts is None:
        reader.error(path, f"no prompts: set prompts{where}")
        ok = False
    sweep = {k: v for k, v in sweep.items() if v is not None}
    zipped = {k: v for k, v in zipped.items() if v is not None}
    if not ok:
        return None
    for key, axis in zipped.items():
        if key in sweep:
            reader.error(axis.path, f"{key!r} is both swept and zipped (also {format_path(sweep[key].path)})")
            ok = False
    rows = [len(axis.values) for axis in zipped.values()]
    if len(set(rows)) > 1:
        lengths = ", ".join(f"{k} has {len(a.values)}" for k, a in zipped.items())
        for axis in zipped.values():
            if len(axis.values) != rows[0]:
                reader.error(axis.path, f"zip lists must have equal lengths ({lengths})")
        ok = False
    for prompt in prompts:
        for key in prompt.overrides:
            if key in sweep or key in zipped:
                reader.error((*prompt.path, key), f"{key!r} is set for this prompt and also swept or zipped; "
                                                 "keep one")
                ok = False
    videos = _videos(reader, {k: v for k, v in inputs.items() if v is not None})
    if not ok or videos is None:
        return None
    batch = Batch(name, path, model, videos, prompts,
                  {k: v.value for k, v in defaults.items() if v is not None},
                  {k: v.path for k, v in defaults.items() if v is not None},
                  tuple(sweep.values()), tuple(zipped.values()), seeds)
    if batch.job_count > MAX_JOBS:
        reader.error(path, f"this batch expands to {batch.job_count:,} jobs; the limit is {MAX_JOBS:,}")
        return None
    return batch


def _videos(reader: Reader, inputs: dict[str, Inputs]) -> tuple[Video, ...] | None:
    """The video axis: each video with its image/conditioningVideo (one for all, or one per video)."""
    count = len(inputs["video"].refs)
    ok = True
    for param, entries in inputs.items():
        if len(entries.refs) not in (1, count):
            reader.error(entries.path, f"lists {len(entries.refs)} files but inputs.video lists {count}; "
                                                "give one for every video, or one per video")
            ok = False
    if not ok:
        return None
    videos = []
    for i in range(count):
        picked = {param: min(i, len(entries.refs) - 1) for param, entries in inputs.items()}
        order = [param for param in FILE_PARAMS if param in inputs]
        videos.append(Video(
            label=inputs["video"].labels[i],
            refs=tuple(inputs[param].refs[picked[param]] for param in order),
            paths={param: inputs[param].paths[picked[param]] for param in order},
        ))
    return tuple(videos)
