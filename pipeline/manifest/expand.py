"""A validated batch and its lazy expansion into JobSpecs, plus the checks that need whole jobs.

Expansion order (documented in the README): batches in written order, then for each batch
videos (the input axis: `inputs.video`, or the model's first file input given as a list) ->
prompts -> sweep product (keys in written order, the last key fastest) -> zip rows -> seeds
(fastest). `index` counts across batches from 0. Each job carries every default of its model's
schema that it does not set. Pure: no I/O, no asyncio.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import Problem
from pipeline.manifest.params import MAX_SEED, SEED_LIMIT
from pipeline.manifest.schema import ModelInput, ModelSchema
from pipeline.manifest.schema_check import defined, describe_condition, matches
from pipeline.spec import InputRef, JobSpec, canonical_json, derived_seed, job_key
from pipeline.yamlpos import Path, format_path

MAX_SHOWN_DUPLICATES = 10
IDLE_STRENGTHS = (("modalityStrength", "modality"), ("cameraMotionStrength", "cameraMotion"))
"""(strength, what it is the strength of): with the latter 'none' the strength has nothing to act on (its
reference: 'Strength of IC-LoRA modality', 'Strength of camera motion'), so sweeping it there makes jobs that
most likely differ in their seed at most, each paid for (a warning: the reference does not say it outright)."""


@dataclass(frozen=True, slots=True)
class Video:
    """One step of the input axis: the leading input's value (`video`) and the other inputs paired with it."""

    label: str  # as written in the manifest (a path or an asset id; a list's joined by ', ')
    refs: tuple[InputRef, ...]
    paths: Mapping[str, Path]  # input param -> where it is written


@dataclass(frozen=True, slots=True)
class Prompt:
    """One prompt with its per-prompt parameter overrides (text None: no prompt, for a model that needs none)."""

    text: str | None
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
    seeds: Sequence[int] | None  # None: each job's seed is derived from its seedless key (if the model takes one)
    schema: ModelSchema | None = field(default=None, compare=False)  # None: not known (the manifest has problems)
    input_axis: str = "video"  # the input whose values make the input axis (`swept` key when it has several)
    combos: int = field(init=False)
    zip_rows: int = field(init=False)
    filled: Mapping[str, Any] = field(init=False, compare=False)  # the model's defaults, sent when not set
    seed_bounds: tuple[int, int] | None = field(init=False)  # derived seeds' range; None: the model takes none

    def __post_init__(self) -> None:
        object.__setattr__(self, "combos", math.prod(len(a.values) for a in self.sweep))
        object.__setattr__(self, "zip_rows", len(self.zip[0].values) if self.zip else 1)
        object.__setattr__(self, "filled", filled_defaults(self.schema))
        object.__setattr__(self, "seed_bounds", seed_bounds(self.schema))

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
        names = [self.input_axis] if len(self.videos) > 1 else []
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
        """The manifest path that set parameter `name` for this job (inputs, zip > sweep > prompt > defaults)."""
        video = self.batch.videos[self.video]
        if name in video.paths:
            return video.paths[name]
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
            if batch.seeds is not None:
                seed: int | None = batch.seeds[seed_index]
                if len(batch.seeds) > 1:
                    swept = {**swept, "seed": seed}
            elif batch.seed_bounds is not None:
                low, high = batch.seed_bounds
                seed = low + derived_seed(job_key(batch.model, params, refs), min(high - low, MAX_SEED))
            else:
                seed = None  # a model that takes no seed
            full = dict(sorted(params.items() if seed is None else {**params, "seed": seed}.items()))
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
        swept[batch.input_axis] = batch.videos[origin.video].label
    if len(batch.prompts) > 1:
        swept["prompt"] = origin.prompt
    for axis, i in zip(batch.sweep, origin.combo):
        values[axis.name] = swept[axis.name] = axis.values[i]
    for axis in batch.zip:
        values[axis.name] = swept[axis.name] = axis.values[origin.row]
    full = {**batch.filled, **{k: v for k, v in values.items() if v is not None}}
    return dict(sorted(full.items())), swept


def filled_defaults(schema: ModelSchema | None) -> dict[str, Any]:
    """What a job of this model sends for a value input it does not set: the schema's default (when it has one
    that counts as given). For LTX-2 19B, the defaults of the parameter table (`params.PARAMS`)."""
    if schema is None:
        return {}
    return {name: value for name, value in schema.defaults().items() if defined(value)}


def seed_bounds(schema: ModelSchema | None) -> tuple[int, int] | None:
    """The range of the model's `seed` input (a derived seed falls in it), or None when it takes no seed."""
    seed = schema.get("seed") if schema is not None else None
    if schema is not None and seed is None:
        return None
    low = int(seed.minimum) if seed is not None and seed.minimum is not None else 0
    high = int(seed.maximum) if seed is not None and seed.maximum is not None else SEED_LIMIT
    return low, max(low, high)


def check_jobs(batches: Sequence[Batch], locate: Callable[[Path, str], Problem],
               doubts: Sequence[Doubts] | None = None, *,
               keys: bytearray | None = None) -> tuple[list[Problem], list[Problem]]:
    """Checks that need whole jobs: duplicates (naming both), the `required` rules of each batch's model
    (width without height, a last frame without a first, ...), conditioningVideo with modality none.
    Returns (errors, warnings); keeps one 8-byte digest per job, and appends each job's key (32 bytes) to `keys`.

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
    missing: dict[tuple[Path, str, str | None], list[int]] = {}  # (where, what, the model's words) -> tally
    unmatched: dict[Path, list[int]] = {}
    idle: dict[tuple[int, str, str], set[str]] = {}  # (batch, strength, the job but that strength) -> its values
    idle_tally: dict[tuple[Path, str, str], list[int]] = {}  # (where swept, strength, switch) -> the jobs repeated
    current: Batch | None = None
    rules: list[ModelInput] = []
    for job, origin in expand(batches):
        if keys is not None:
            keys += bytes.fromhex(job.key)
        if origin.batch is not current:
            current = origin.batch
            doubt, level = known[id(current)], sure[id(current)]
            rules = _rules(current.schema, doubt.names)
            relevant, compared = _relevant(rules)
            verdicts: dict[tuple[Any, ...], list[tuple[str | None, str, str | None]]] = {}
            schema_names = current.schema.names if current.schema is not None else ()
            modality = "modality" not in doubt.names and {"modality", "conditioningVideo"} <= set(schema_names)
        if duplicates:
            digest = int(job.key[:16], 16)
            if digest in seen:
                clashes.append((job, origin))
            seen.add(digest)
        if rules:
            # the verdict rests only on which of the rules' inputs are given and on the values they compare
            present = {ref.param for ref in job.inputs}
            signature = (*(name in present or defined(job.params.get(name)) for name in relevant),
                         *(canonical_json(job.params.get(name)) for name in compared))
            if signature not in verdicts:
                verdicts[signature] = [found for item in rules if item.name not in present
                                       and not defined(job.params.get(item.name))
                                       and (found := _missing(item, job.params, present)) is not None]
            for other, what, words in verdicts[signature]:
                if origin.batch.path:  # written under `batches`
                    what += f" in batch {job.batch!r}"
                where = origin.path_of(other) if other is not None else origin.batch.path
                _count(missing, (where, what, words), job.index, level)
        for strength, switch in IDLE_STRENGTHS:
            if strength in job.swept and job.params.get(switch) == "none":
                # the job but that strength (and but its seed when the tool chose it: derived from the key)
                rest = canonical_json({k: v for k, v in job.params.items()
                                       if k != strength and (k != "seed" or "seed" in job.swept)}) + repr(job.inputs)
                values = idle.setdefault((id(origin.batch), strength, rest), set())
                values.add(canonical_json(job.params.get(strength)))
                if len(values) > 1:
                    where = origin.path_of(strength)  # the sweep's key, not one of its values
                    _count(idle_tally, (where[:-1] if where and isinstance(where[-1], int) else where, strength,
                                        switch), job.index, level)
        if modality and job.params.get("modality") == "none":
            for ref in job.inputs:
                if ref.param == "conditioningVideo":
                    _count(unmatched, origin.batch.videos[origin.video].paths[ref.param], job.index, level)
    errors = [locate(path, what + _jobs_phrase(tally) + (f": {words}" if words else ""))
              for (path, what, words), tally in missing.items()]
    warnings = [locate(path, f"conditioningVideo is given but modality is 'none'{_jobs_phrase(tally)}; "
                             "set the matching modality") for path, tally in unmatched.items()]
    warnings += [locate(path, f"swept where {switch} is 'none'{_jobs_phrase(tally)}: with no "
                              f"{switch} the strength most likely changes nothing, so those jobs would pay for "
                              f"renders that differ in their seed at most; set {switch}, or sweep {strength} only "
                              "where it is set")
                 for (path, strength, switch), tally in idle_tally.items()]
    if clashes:
        errors += _duplicates(batches, clashes, locate)
    return errors, warnings


def _rules(schema: ModelSchema | None, doubted: frozenset[str]) -> list[ModelInput]:
    """The inputs of a model with a `required` rule to check on each job: not those a batch checks itself
    (a file or the prompt that is always required: "no video", "no prompts"), nor those resting on a bad value."""
    if schema is None:
        return []
    out = []
    for item in schema.inputs:
        rule = item.required
        if rule.never or rule.always and (item.is_file or item.name == "prompt"):
            continue
        names = {item.name, *(n for n, _ in rule.if_defined), *(n for n, _ in rule.if_not_defined),
                 *(n for c in rule.conditions for n, _ in c.values)}
        if not names & doubted:
            out.append(item)
    return out


def _relevant(rules: list[ModelInput]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The inputs whose being given decides the rules, and those whose values they compare (`conditional`)."""
    given = {item.name for item in rules}
    compared: set[str] = set()
    for item in rules:
        rule = item.required
        given.update(name for name, _ in (*rule.if_defined, *rule.if_not_defined))
        compared.update(name for condition in rule.conditions for name, _ in condition.values)
    return tuple(sorted(given)), tuple(sorted(compared))


def _missing(item: ModelInput, params: Mapping[str, Any], present: set[str]) -> tuple[str | None, str, str | None] | None:
    """Why a job lacking `item` breaks its `required` rule: (the input whose value makes it required, where the
    problem is shown; None: the batch), what is wrong, the model's own words), or None when it may be left out."""
    def given(name: str) -> bool:
        return name in present or defined(params.get(name))

    rule = item.required
    if rule.always:
        return None, f"no {item.name}: set it under 'defaults', 'sweep' or 'zip'", None
    for other, message in rule.if_defined:
        if given(other):
            plain = message is None or message == f"{item.name} must be given together with {other}"
            return other, f"{other} is set without {item.name}", None if plain else message
    names = [other for other, _ in rule.if_not_defined]
    if names and not any(given(other) for other in names):
        words = next((message for _, message in rule.if_not_defined if message), None)
        return None, f"{item.name} is required unless {' or '.join(names)} is set", words
    for condition in rule.conditions:
        if matches(condition, params):
            return condition.values[0][0], f"{item.name} is required when {describe_condition(condition)}", \
                condition.message
    return None


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
    batch = origin.batch
    label = batch.videos[origin.video].label
    parts = [f"{batch.input_axis} {label}"] if label else []
    if batch.prompts[origin.prompt].text is not None:
        parts.append(format_path(batch.prompts[origin.prompt].path))
    parts += [f"{k}={canonical_json(v)}" for k, v in job.swept.items() if k not in (batch.input_axis, "prompt", "seed")]
    if job.seed is not None:
        parts.append(f"seed={job.seed}")
    return f"job {job.index} (batch {job.batch!r}: {', '.join(parts)})"
