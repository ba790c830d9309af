"""The manifest: YAML text -> a validated `Manifest` -> its jobs, lazily, as `JobSpec`s.

`load_manifest(path)` reads and checks the whole file, hashes every local input once and
expands every job once (to count them and to find duplicates), raising `ManifestError` with
every located problem. `Manifest.jobs()` then expands again, lazily. Pure: the only I/O is
reading the manifest and hashing its input files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ManifestError, Problem
from pipeline.expand import Batch, check_jobs, expand
from pipeline.layers import MAX_JOBS, Layer, Reader, merge
from pipeline.params import MODEL_ID
from pipeline.spec import InputRef, JobSpec
from pipeline.yamlpos import parse

TOP_KEYS = ("name", "model", "inputs", "defaults", "prompts", "sweep", "zip", "seeds", "batches")
BATCH_KEYS = ("name", "model", "inputs", "defaults", "prompts", "sweep", "zip", "seeds")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
MAIN_BATCH = "main"


@dataclass(frozen=True, slots=True)
class Manifest:
    """A validated manifest: its run name, batches and warnings; `jobs()` expands it lazily."""

    name: str  # the run folder's name: outputs go to <output_dir>/<name>/
    path: Path  # the manifest file (absolute)
    model: str  # the top-level model id (a batch may override it)
    batches: tuple[Batch, ...]
    warnings: tuple[Problem, ...]
    job_count: int

    def jobs(self, start: int = 0, stop: int | None = None) -> Iterator[JobSpec]:
        """The jobs with index in [start, stop) (default: all), in expansion order, built one at a time."""
        for job, _ in expand(self.batches, start, stop):
            yield job

    def input_files(self) -> list[InputRef]:
        """The distinct local input files (by content), in order of first use: each is uploaded once."""
        seen: dict[str, InputRef] = {}
        for batch in self.batches:
            for video in batch.videos:
                for ref in video.refs:
                    if ref.kind == "file" and ref.sha256 not in seen:
                        seen[ref.sha256 or ""] = ref
        return list(seen.values())

    def batch_counts(self) -> dict[str, int]:
        """Batch name -> its number of jobs, in expansion order."""
        return {batch.name: batch.job_count for batch in self.batches}

    @property
    def axes(self) -> tuple[str, ...]:
        """Every key that appears in some job's `swept`, in order of first appearance."""
        return tuple(dict.fromkeys(name for batch in self.batches for name in batch.axes))

    def run_dir(self, output_dir: str | Path) -> Path:
        """Where this run's outputs go: `<output_dir>/<name>`."""
        return Path(output_dir).expanduser() / self.name


def load_manifest(path: str | Path) -> Manifest:
    """Read, validate and count a manifest file; raise ManifestError listing every problem."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ManifestError(Problem("", f"cannot read the manifest: {exc.strerror or exc}", source=str(path))) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ManifestError(Problem("", "the file is not UTF-8 text", line=line, source=str(path))) from None
    return parse_manifest(text, path=path)


def parse_manifest(text: str, *, path: str | Path) -> Manifest:
    """Validate manifest text as if read from `path` (which sets the default name and the base of input paths)."""
    source = str(path)
    tree = parse(text, source)
    reader = Reader(tree, Path(path).expanduser().absolute().parent)
    if not isinstance(tree.value, dict):
        raise ManifestError(tree.problem((), "the manifest must be a mapping of keys (name, inputs, prompts, "
                                             f"sweep, ...), not {reader.kind(tree.value)}"))
    doc = tree.value
    top = reader.layer(doc, (), TOP_KEYS)
    name = _run_name(reader, doc, path)
    layers: list[tuple[str, tuple[str | int, ...], Layer | None]] = []
    if "batches" in doc and doc["batches"] is not None:
        layers = _batch_layers(reader, doc["batches"])
    else:
        layers = [(MAIN_BATCH, (), None)]
    batches = [b for b in (merge(reader, top, own, bname, bpath) for bname, bpath, own in layers) if b is not None]
    total = sum(b.job_count for b in batches)
    if total > MAX_JOBS and not reader.problems:
        reader.error((), f"the manifest expands to {total:,} jobs; the limit is {MAX_JOBS:,} (split it into several manifests)")
    if reader.problems:
        raise ManifestError(_in_order(reader.problems))
    errors, warnings = check_jobs(batches, tree.problem)
    if errors:
        raise ManifestError(_in_order(errors))
    return Manifest(
        name=name,
        path=Path(path).expanduser().absolute(),
        model=top.model.value if top.model is not None else MODEL_ID,
        batches=tuple(batches),
        warnings=tuple(_in_order(reader.warnings + warnings)),
        job_count=total,
    )


def _run_name(reader: Reader, doc: dict, path: str | Path) -> str:
    if "name" not in doc or doc["name"] is None:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(path).stem).strip("-._")[:100]
        return stem or "run"
    return reader.name(doc["name"], ("name",), NAME_PATTERN) or "run"


def _batch_layers(reader: Reader, raw: object) -> list[tuple[str, tuple[str | int, ...], Layer | None]]:
    if not isinstance(raw, list) or not raw:
        what = "an empty list" if raw == [] else reader.kind(raw)
        reader.error(("batches",), f"must be a non-empty list of batches (mappings), not {what}")
        return []
    out: list[tuple[str, tuple[str | int, ...], Layer | None]] = []
    used: dict[str, int] = {}
    for i, item in enumerate(raw):
        path = ("batches", i)
        if not isinstance(item, dict):
            reader.error(path, f"a batch must be a mapping (name, inputs, prompts, ...), not {reader.kind(item)}")
            continue
        name = f"batch-{i}"
        if item.get("name") is not None:
            name = reader.name(item["name"], (*path, "name"), NAME_PATTERN) or name
        if name in used:
            reader.error((*path, "name"), f"batch name {name!r} is already used by batches[{used[name]}]")
        used.setdefault(name, i)
        out.append((name, path, reader.layer(item, path, BATCH_KEYS)))
    return out


def _in_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: p.line if p.line is not None else 0)
