"""A validated batch and its lazy expansion into JobSpecs, plus the checks that need whole jobs.

Expansion order (documented in the README): batches in written order, then for each batch
videos -> prompts -> sweep product (keys in written order, the last key fastest) -> zip rows ->
seeds (fastest). `index` counts across batches from 0. Pure: no I/O, no asyncio.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import Problem
from pipeline.manifest.params import MAX_SEED, PARAMS, complete
from pipeline.spec import InputRef, JobSpec, canonical_json, derived_seed, job_key
from pipeline.yamlpos import Path, format_path

MAX_SHOWN_DUPLICATES = 10


@dataclass(frozen=True, slots=True)
class Video:
    """One step of the video axis: the `video` input and the `image`/`conditioningVideo` paired with it."""

    label: str  # as written in the manifest (a path or an asset id)
    refs: tuple[InputRef, ...]
    paths: Mapping[str, Path]  # input param -> where it is written


@dataclass(frozen=True, slots=True)
class Prompt:
    """One prompt with its per-prompt parameter overrides."""

    text: str
    overrides: Mapping[str, Any]
    path: Path


@dataclass(frozen=True, slots=True)
class Axis:
    """One swept (or zipped) parameter: its values in order and where each is written."""

    name: str
    values: tuple[Any, ...]
    paths: tuple[Path, ...]  # of each value
    path: Path  # of the list


@dataclass(frozen=True, slots=True)
class Batch:
    """A fully merged, validated batch: everything needed to expand its jobs."""

    name: str
    path: Path  # () for the implicit `main` batch, ("batches", i) otherwise
    model: str
    videos: tuple[Video, ...]
    prompts: tuple[Prompt, ...]
    defaults: Mapping[str, Any]
    default_paths: Mapping[str, Path]
    sweep: tuple[Axis, ...]
    zip: tuple[Axis, ...]
    seeds: Sequence[int] | None  # None: each job's seed is derived from its seedless key
    combos: int = field(init=False)
    zip_rows: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "combos", math.prod(len(a.values) for a in self.sweep))
        object.__setattr__(self, "zip_rows", len(self.zip[0].values) if self.zip else 1)

    @property
    def seed_count(self) -> int:
        return len(self.seeds) if self.seeds is not None else 1

    @property
    def job_count(self) -> int:
        """videos x prompts x product(sweep) x zip rows x seeds."""
        return len(self.videos) * len(self.prompts) * self.combos * self.zip_rows * self.seed_count

    def locate(self, local: int) -> tuple[Origin, int]:
        """Decode a job's position in this batch (0-based) into its grid indices and seed index."""
        rest, seed = divmod(local, self.seed_count)
        rest, row = divmod(rest, self.zip_rows)
        combo = []
        for axis in reversed(self.sweep):
            rest, i = divmod(rest, len(axis.values))
            combo.append(i)
        video, prompt = divmod(rest, len(self.prompts))
        return Origin(self, video, prompt, tuple(reversed(combo)), row), seed

    @property
    def axes(self) -> tuple[str, ...]:
        """The keys of each job's `swept`, in order."""
        names = ["video"] if len(self.videos) > 1 else []
        names += ["prompt"] if len(self.prompts) > 1 else []
        names += [a.name for a in self.sweep] + [a.name for a in self.zip]
        return (*names, "seed") if self.seed_count > 1 else tuple(names)


@dataclass(frozen=True, slots=True)
class Doubts:
    """What a batch built despite problems in its manifest does not know; a valid batch knows everything.

    `names`: parameters that some jobs lack because the value written there was bad (checks on them are
    skipped); `values_known`: every job's parameters, model and inputs are as written (else two jobs may
    look identical only because of what is missing); `count_known`: the batch has as many jobs as written
    (else the index of a job, here and in the batches after it, is not the one a fixed manifest gives)."""

    names: frozenset[str] = frozenset()
    values_known: bool = True
    count_known: bool = True


CERTAIN = Doubts()


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a job's values come from: indices into its batch's axes (for messages)."""

    batch: Batch
    video: int
    prompt: int
    combo: tuple[int, ...]
    row: int

    def path_of(self, name: str) -> Path:
        """The manifest path that set parameter `name` for this job (zip > sweep > prompt > defaults)."""
        for axis in self.batch.zip:
            if axis.name == name:
                return axis.paths[self.row]
        for axis, i in zip(self.batch.sweep, self.combo):
            if axis.name == name:
                return axis.paths[i]
        prompt = self.batch.prompts[self.prompt]
        if name in prompt.overrides:
            return (*prompt.path, name)
        return self.batch.default_paths.get(name, self.batch.path)


def expand(batches: Sequence[Batch], start: int = 0, stop: int | None = None, *,
           keys: Sequence[str] | None = None) -> Iterator[tuple[JobSpec, Origin]]:
    """The jobs with index in [start, stop), in expansion order, each with where its values come from.

    Any job can be built from its index alone (a mixed-radix decode), so a slice costs only its length.
    `keys`, every job's key by index from an earlier walk (a run's roster), spares hashing them again.
    """
    offset = 0
    for batch in batches:
        count = batch.job_count
        lo = max(start - offset, 0)
        hi = count if stop is None else min(stop - offset, count)
        cached: tuple[tuple[int, ...], dict[str, Any], dict[str, Any]] | None = None
        for local in range(lo, hi):
            origin, seed_index = batch.locate(local)
            place = (origin.video, origin.prompt, *origin.combo, origin.row)
            if cached is None or cached[0] != place:
                cached = (place, *_values(batch, origin))
            _, params, swept = cached
            refs = batch.videos[origin.video].refs
            if batch.seeds is None:
                seed = derived_seed(job_key(batch.model, params, refs), MAX_SEED)
            else:
                seed = batch.seeds[seed_index]
                if len(batch.seeds) > 1:
                    swept = {**swept, "seed": seed}
            full = dict(sorted({**params, "seed": seed}.items()))
            index = offset + local
            key = keys[index] if keys is not None else job_key(batch.model, full, refs)
            yield JobSpec(index, batch.name, key, batch.model, full, refs, swept), origin
        offset += count


def _values(batch: Batch, origin: Origin) -> tuple[dict[str, Any], dict[str, Any]]:
    """The complete seedless parameters and the swept values of one point of a batch's grid."""
    prompt = batch.prompts[origin.prompt]
    values = {**batch.defaults, **prompt.overrides, "prompt": prompt.text}
    swept: dict[str, Any] = {}
    if len(batch.videos) > 1:
        swept["video"] = batch.videos[origin.video].label
    if len(batch.prompts) > 1:
        swept["prompt"] = origin.prompt
    for axis, i in zip(batch.sweep, origin.combo):
        values[axis.name] = swept[axis.name] = axis.values[i]
    for axis in batch.zip:
        values[axis.name] = swept[axis.name] = axis.values[origin.row]
    return complete(values), swept


def check_jobs(batches: Sequence[Batch], locate: Callable[[Path, str], Problem],
               doubts: Sequence[Doubts] | None = None) -> tuple[list[Problem], list[Problem]]:
    """Checks that need whole jobs: duplicates (naming both), unpaired width/height, conditioningVideo
    with modality none. Returns (errors, warnings); keeps one 8-byte digest per job.

    `doubts` (one per batch) are for batches built despite other problems: a check is skipped where it
    would rest on a value that failed its own check, and job numbers are left out where they are not sure."""
    doubts = list(doubts) if doubts is not None else [CERTAIN] * len(batches)
    known = {id(batch): doubt for batch, doubt in zip(batches, doubts)}
    # what a message may say of the jobs of each batch: 2 their numbers, 1 their count, 0 nothing
    sure = {id(batch): 2 if all(d.count_known for d in doubts[:i + 1]) else int(doubts[i].count_known)
            for i, batch in enumerate(batches)}
    duplicates = all(d.values_known and d.count_known for d in doubts)
    seen: set[int] = set()
    clashes: list[tuple[JobSpec, Origin]] = []
    unpaired: dict[tuple[Path, str], list[int]] = {}  # -> [job count, first index, how sure]
    unmatched: dict[Path, list[int]] = {}
    all_pairs = [(p.name, p.paired_with) for p in PARAMS.values() if p.paired_with]
    current: Batch | None = None
    for job, origin in expand(batches):
        if origin.batch is not current:
            current = origin.batch
            doubt, level = known[id(current)], sure[id(current)]
            pairs = [(a, b) for a, b in all_pairs if a not in doubt.names and b not in doubt.names]
            modality = "modality" not in doubt.names
        if duplicates:
            digest = int(job.key[:16], 16)
            if digest in seen:
                clashes.append((job, origin))
            seen.add(digest)
        for name, partner in pairs:
            if name in job.params and partner not in job.params:
                message = f"{name} is set without {partner}"
                if origin.batch.path:  # written under `batches`
                    message += f" in batch {job.batch!r}"
                _count(unpaired, (origin.path_of(name), message), job.index, level)
        if modality and job.params.get("modality") == "none":
            for ref in job.inputs:
                if ref.param == "conditioningVideo":
                    _count(unmatched, origin.batch.videos[origin.video].paths[ref.param], job.index, level)
    errors = [locate(path, message + _jobs_phrase(tally)) for (path, message), tally in unpaired.items()]
    warnings = [locate(path, f"conditioningVideo is given but modality is 'none'{_jobs_phrase(tally)}; "
                             "set the matching modality") for path, tally in unmatched.items()]
    if clashes:
        errors += _duplicates(batches, clashes, locate)
    return errors, warnings


def _count(tally: dict[Any, list[int]], key: Any, index: int, level: int) -> None:
    found = tally.setdefault(key, [0, index, level])
    found[0] += 1
    found[2] = min(found[2], level)


def _jobs_phrase(tally: list[int]) -> str:
    """` (1,584 jobs, e.g. job 3)`: which jobs a message is about, as far as that is known."""
    count, first, level = tally
    if level == 2:
        return f" (job {first})" if count == 1 else f" ({count:,} jobs, e.g. job {first})"
    if level == 1:
        return " (1 job)" if count == 1 else f" ({count:,} jobs)"
    return ""


def _duplicates(batches: Sequence[Batch], clashes: list[tuple[JobSpec, Origin]],
                locate: Callable[[Path, str], Problem]) -> list[Problem]:
    """Second pass, only when digests collided: find the first job with each clashing key."""
    wanted = {job.key: None for job, _ in clashes}
    first: dict[str, tuple[JobSpec, Origin]] = {}
    for job, origin in expand(batches):
        if job.key in wanted and job.key not in first:
            first[job.key] = (job, origin)
    problems = []
    for job, origin in clashes[:MAX_SHOWN_DUPLICATES]:
        other, other_origin = first[job.key]
        if other.index == job.index:
            continue  # an 8-byte digest collision between different keys: not a duplicate
        problems.append(locate(origin.batch.path, f"{describe_job(job, origin)} is identical to "
                                                  f"{describe_job(other, other_origin)}"))
    if len(clashes) > MAX_SHOWN_DUPLICATES:
        problems.append(locate((), f"... and {len(clashes) - MAX_SHOWN_DUPLICATES} more duplicate jobs"))
    return problems


def describe_job(job: JobSpec, origin: Origin) -> str:
    """`job 7 (batch 'main': video clip.mp4, prompts[1], videoStrength=0.6, seed=3)`."""
    parts = [f"video {origin.batch.videos[origin.video].label}",
             format_path(origin.batch.prompts[origin.prompt].path)]
    parts += [f"{k}={canonical_json(v)}" for k, v in job.swept.items() if k not in ("video", "prompt", "seed")]
    parts.append(f"seed={job.seed}")
    return f"job {job.index} (batch {job.batch!r}: {', '.join(parts)})"
