"""The manifest: YAML text -> a validated `Manifest` -> its jobs, lazily, as `JobSpec`s.

`load_manifest(path, schemas)` reads and checks the whole file, hashes every local input once and
expands every job once (to count them and to find duplicates, keeping each key: `Manifest.keys`),
raising `ManifestError` with every located problem. `Manifest.jobs()` then expands again, lazily.
Pure: the only I/O is reading the manifest and hashing its input files.

Each block is checked against the schema of its model: LTX-2 19B's is built in; the caller passes
the others (`schemas`, model id -> `ModelSchema`, or why it is not known). `models_named(text)`
says which models a manifest names, so that the CLI can resolve their schemas first
(`pipeline.cli.model_schema`): this layer never fetches anything.

One pass finds every problem: the YAML's own (a duplicate key), each value's (layers), each
input file's, each batch's (merge) and each job's (expand.check_jobs) are all collected before
anything is raised. A batch with bad parts is still built, with a placeholder for each bad part
and `Doubts` saying what it does not know, so the checks on whole jobs skip only what rests on
a bad value.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ManifestError, Problem
from pipeline.manifest.expand import Axis, Batch, Doubts, Prompt, Video, check_jobs, expand
from pipeline.manifest.inputs import Inputs, pair_inputs
from pipeline.manifest.layers import INVALID, MAX_JOBS, Layer, Reader, Schemas
from pipeline.manifest.params import MODEL_ID
from pipeline.manifest.schema import ModelSchema, builtin_schema
from pipeline.spec import KEY_BYTES, InputRef, JobSpec
from pipeline.yamlpos import Path as DocPath
from pipeline.yamlpos import describe, format_path, parse, read_capped

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
    keys: bytes = field(default=b"", repr=False, compare=False)  # every job's key by index (32 bytes each), hashed
    # when the manifest was checked; b"" when not known

    def jobs(self, start: int = 0, stop: int | None = None, *, keys: Sequence[str] | None = None) -> Iterator[JobSpec]:
        """The jobs with index in [start, stop) (default: all), in expansion order, built one at a time.

        `keys` (every job's key by index, from an earlier walk: a run's roster) spares hashing them again."""
        for job, _ in expand(self.batches, start, stop, keys=keys):
            yield job

    @property
    def fingerprint(self) -> str:
        """A digest of what its jobs are built from (its batches, inputs' hashes and schemas included): equal
        fingerprints, the same jobs (results.json's records are reused on it). Not cached: computed once a run."""
        return hashlib.sha256(repr(self.batches).encode()).hexdigest()

    def input_files(self) -> list[InputRef]:
        """The distinct local input files (by content), in order of first use: each is uploaded once."""
        seen: dict[str, InputRef] = {}
        for batch in self.batches:
            for video in batch.videos:
                for ref in video.refs:
                    if ref.kind == "file" and ref.sha256 not in seen:
                        seen[ref.sha256 or ""] = ref
        return list(seen.values())

    @property
    def models(self) -> tuple[str, ...]:
        """The models of its batches, in order of first use."""
        return tuple(dict.fromkeys(batch.model for batch in self.batches))

    @property
    def parameters(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The value inputs and the file inputs of its models, in their schemas' order (the first model's
        first): the columns of results.csv. For LTX-2 19B, its parameter table's."""
        values: dict[str, None] = {}
        files: dict[str, None] = {}
        for batch in self.batches:
            for item in batch.schema.inputs if batch.schema is not None else ():
                (files if item.is_file else values)[item.name] = None
        return tuple(values), tuple(files)

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


def load_manifest(path: str | Path, schemas: Schemas | None = None) -> Manifest:
    """Read, validate and count a manifest file; raise ManifestError listing every problem.

    `schemas`: the schema of each model it names besides LTX-2 19B (built in), or why it is not known."""
    return parse_manifest(read_manifest(path), path=path, schemas=schemas)


def read_manifest(path: str | Path) -> str:
    """A manifest file's text; ManifestError when it cannot be read, is too big or is not UTF-8."""
    try:
        data = read_capped(Path(path))
    except OSError as exc:
        raise ManifestError(Problem("", f"cannot read the manifest: {exc.strerror or exc}", source=str(path))) from None
    except ValueError as exc:
        raise ManifestError(Problem("", str(exc), source=str(path))) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ManifestError(Problem("", "the file is not UTF-8 text", line=line, source=str(path))) from None
    return text


def models_named(text: str, *, path: str | Path) -> tuple[str, ...]:
    """The model ids a manifest's text names (at the top and in its batches) that look like ones, in order; the
    default model when it names none at the top. Problems are left to `parse_manifest`."""
    doc = parse(text, str(path)).value
    if not isinstance(doc, dict):
        return ()
    found = [doc.get("model") if doc.get("model") is not None else MODEL_ID]
    batches = doc.get("batches")
    found += [b.get("model") for b in batches if isinstance(b, dict)] if isinstance(batches, list) else []
    return tuple(dict.fromkeys(m for m in found if isinstance(m, str) and m.startswith("model_") and m.isprintable()
                               and " " not in m))


def parse_manifest(text: str, *, path: str | Path, schemas: Schemas | None = None) -> Manifest:
    """Validate manifest text as if read from `path` (which sets the default name and the base of input paths),
    each block against the schema of its model (`schemas`; LTX-2 19B's is built in)."""
    source = str(path)
    tree = parse(text, source)
    reader = Reader(tree, Path(path).expanduser().absolute().parent, {MODEL_ID: builtin_schema(), **(schemas or {})})
    if not isinstance(tree.value, dict):
        raise ManifestError([*tree.problems, tree.problem((), "the manifest must be a mapping of keys (name, inputs, "
                                                              f"prompts, sweep, ...), not {describe(tree.value)}")])
    doc = tree.value
    top_model = reader.read_model(doc, ())
    top_id = top_model.value if top_model is not None else MODEL_ID
    top = reader.layer(doc, (), TOP_KEYS, top_id, top_model)
    tops: dict[Any, Layer] = {top_id: top}
    name = _run_name(reader, doc, path)
    if doc.get("batches") is not None:
        # unreadable `batches`: the top level alone is still checked, as a batch that knows nothing of its own
        layers = _batch_layers(reader, doc["batches"], top_id) or [(MAIN_BATCH, (), Layer(broken=True), top_id)]
    else:
        layers = [(MAIN_BATCH, (), None, top_id)]
    drafts = []
    for bname, bpath, own, model in layers:
        if model is not INVALID and model not in tops:  # the top level, read again for this batch's model
            tops[model] = reader.layer(doc, (), TOP_KEYS, model, top_model,
                                       note=f" (for {model}, the model of batch {bname!r})")
        base = tops.get(model, top)
        drafts.append(merge(reader, base, own, bname, bpath, reader.schemas.get(model) if model is not INVALID
                            else None))
    batches = [batch for batch, _ in drafts]
    _warn_unused_defaults(reader, batches)
    total = sum(b.job_count for b in batches)
    over = any(b.job_count > MAX_JOBS for b in batches)
    if total > MAX_JOBS and not over:
        at_least = "" if all(doubts.count_known for _, doubts in drafts) else "at least "
        reader.error((), f"the manifest expands to {at_least}{total:,} jobs; the limit is {MAX_JOBS:,} "
                         "(split it into several manifests)")
    errors, warnings = [], []
    keys = bytearray()
    if total <= MAX_JOBS:  # else too many to walk: the limit is the problem to fix first
        errors, warnings = check_jobs(batches, tree.problem, [doubts for _, doubts in drafts], keys=keys)
    warnings = _in_order(reader.warnings + warnings)
    if tree.problems or reader.problems or errors:
        raise ManifestError(_in_order(list(dict.fromkeys([*tree.problems, *reader.problems, *errors]))))
    return Manifest(
        name=name,
        path=Path(path).expanduser().absolute(),
        model=top.model.value if top.model is not None else MODEL_ID,  # valid here: no problems were found
        batches=tuple(batches),
        warnings=tuple(warnings),
        job_count=total,
        keys=bytes(keys) if len(keys) == total * KEY_BYTES else b"",
    )


def _run_name(reader: Reader, doc: dict[str, Any], path: str | Path) -> str:
    if "name" not in doc or doc["name"] is None:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(path).stem).strip("-._")[:100]
        return stem or "run"
    return _name(reader, doc["name"], ("name",)) or "run"


def _batch_layers(reader: Reader, raw: object, top_model: Any) -> list[tuple[str, DocPath, Layer | None, Any]]:
    """Each batch: its name, path, block (read against its model's schema) and model."""
    if not isinstance(raw, list) or not raw:
        what = "an empty list" if raw == [] else describe(raw)
        reader.error(("batches",), f"must be a non-empty list of batches (mappings), not {what}")
        return []
    out: list[tuple[str, DocPath, Layer | None, Any]] = []
    used: dict[str, int] = {}
    for i, item in enumerate(raw):
        path = ("batches", i)
        if not isinstance(item, dict):
            reader.error(path, f"a batch must be a mapping (name, inputs, prompts, ...), not {describe(item)}")
            out.append((f"batch-{i}", path, Layer(broken=True), top_model))
            continue
        name = f"batch-{i}"
        if item.get("name") is not None:
            name = _name(reader, item["name"], (*path, "name")) or name
        if name in used:
            reader.error((*path, "name"), f"batch name {name!r} is already used by batches[{used[name]}]")
        used.setdefault(name, i)
        own = reader.read_model(item, path)
        model = own.value if own is not None else top_model
        out.append((name, path, reader.layer(item, path, BATCH_KEYS, model, own), model))
    return out


def _name(reader: Reader, value: object, path: DocPath) -> str | None:
    if isinstance(value, str) and NAME_PATTERN.fullmatch(value):
        return value
    shown = repr(value) if isinstance(value, str) else describe(value)
    reader.error(path, f"must be a name of letters, digits, '.', '_' or '-' (at most 100 characters), not {shown}")
    return None


def merge(reader: Reader, top: Layer, own: Layer | None, name: str, path: DocPath,
          schema: ModelSchema | str | None = None) -> tuple[Batch, Doubts]:
    """One batch: the top level with the batch's own block over it, and what it does not know.

    `inputs`, `defaults`, `sweep` and `zip` merge key by key (the batch wins, null removes);
    `model`, `prompts` and `seeds` are replaced whole. A bad part (INVALID, its problem recorded) is
    left out or stands in as a placeholder (a value as null, a prompt as empty text, a seed as 0), so
    the batch can still be checked as a whole; the `Doubts` say what that changed. `schema`: its model's
    (not a `ModelSchema`: not known, its problem recorded where the model is named).
    """
    schema = schema if isinstance(schema, ModelSchema) else None
    layers = [top] if own is None else [top, own]
    inputs, defaults, sweep, zipped = ({k: v for layer in layers for k, v in getattr(layer, part).items()}
                                       for part in ("inputs", "defaults", "sweep", "zip"))
    model = next((layer.model.value for layer in reversed(layers) if layer.model is not None), MODEL_ID)
    prompts = next((layer.prompts for layer in reversed(layers) if layer.prompts is not None), None)
    seeds = next((layer.seeds.value for layer in reversed(layers) if layer.seeds is not None), None)
    doubts = _Draft(broken=own is not None and own.broken, names=schema.names if schema is not None else ())
    where = " (here or at the top level)" if own is not None else ""
    for item in schema.file_inputs if schema is not None else ():
        if item.required.always and inputs.get(item.name) is None and INVALID not in inputs.values() \
                and not doubts.broken:
            reader.error(path, f"no {item.name}: set inputs.{item.name}{where}")
    prompt = schema.get("prompt") if schema is not None else None
    needs_prompt = schema is None or prompt is not None and prompt.required.always
    if prompts is None and needs_prompt and not doubts.broken:
        reader.error(path, f"no prompts: set prompts{where}")
    if prompts is None and not needs_prompt:
        prompts = (Prompt(None, {}, path),)  # one job without a prompt
    if model is INVALID:
        model = doubts.guess(MODEL_ID)
    inputs, defaults, sweep, zipped = ({k: v for k, v in part.items() if v is not None}
                                       for part in (inputs, defaults, sweep, zipped))
    prompts = _prompts(prompts, path, doubts)
    sweep, zipped = (_axes(axes, doubts) for axes in (sweep, zipped))
    _check_axes(reader, prompts, sweep, zipped)
    rows = min((len(axis.values) for axis in zipped.values()), default=0)
    if any(len(axis.values) != rows for axis in zipped.values()):  # reported: keep the rows every list has
        doubts.guess(None, counted=False)
        zipped = {k: Axis(k, a.values[:rows], a.paths[:rows], a.path) for k, a in zipped.items()}
    axis, videos = _videos(reader, inputs, doubts, schema)
    if seeds is INVALID:
        seeds = doubts.guess(None, counted=False)
    elif isinstance(seeds, tuple) and INVALID in seeds:
        seeds = tuple(0 if seed is INVALID else seed for seed in doubts.guess(seeds))
    for key, value in defaults.items():
        if value is INVALID:
            doubts.lack(key)
    batch = Batch(name, path, model, videos, prompts,
                  {k: v.value for k, v in defaults.items() if v is not INVALID},
                  {k: v.path for k, v in defaults.items() if v is not INVALID},
                  tuple(sweep.values()), tuple(zipped.values()), seeds, schema=schema, input_axis=axis)
    if batch.job_count > MAX_JOBS:
        at_least = "" if doubts.count_known else "at least "
        reader.error(path, f"this batch expands to {at_least}{batch.job_count:,} jobs; the limit is {MAX_JOBS:,}")
    return batch, doubts.done()


class _Draft:
    """What `merge` learns a batch does not know, as it puts placeholders in for bad parts."""

    def __init__(self, *, broken: bool, names: tuple[str, ...] = ()) -> None:
        self.broken = broken  # a batch that is not a mapping: nothing of its own is known
        self.names: set[str] = set(names) if broken else set()
        self.values_known = not broken
        self.count_known = not broken

    def guess(self, placeholder: Any, *, counted: bool = True) -> Any:
        """A placeholder for a bad part; `counted=False` when the part sets how many jobs there are."""
        self.values_known = False
        self.count_known = self.count_known and counted
        return placeholder

    def lack(self, name: str) -> None:
        """Some jobs lack parameter `name`: its value was bad."""
        self.names.add(name)
        self.values_known = False

    def done(self) -> Doubts:
        return Doubts(frozenset(self.names), self.values_known, self.count_known)


def _prompts(prompts: Any, path: DocPath, doubts: _Draft) -> tuple[Prompt, ...]:
    """The prompts with a placeholder for each bad text or override; one placeholder if none could be read."""
    if prompts is None or prompts is INVALID:
        return doubts.guess((Prompt("", {}, path),), counted=False)
    out = []
    for prompt in prompts:
        for key, value in prompt.overrides.items():
            if value is INVALID:
                doubts.lack(key)
        text = prompt.text if prompt.text is not INVALID else doubts.guess("")
        overrides = {k: None if v is INVALID else v for k, v in prompt.overrides.items()}
        out.append(Prompt(text, overrides, prompt.path))
    return tuple(out)


def _axes(axes: dict[str, Any], doubts: _Draft) -> dict[str, Axis]:
    """The axes with each bad value as null (not sent); an axis whose list could not be read is left out."""
    out = {}
    for key, axis in axes.items():
        if axis is INVALID:
            doubts.lack(key)
            doubts.guess(None, counted=False)
        elif INVALID in axis.values:
            doubts.lack(key)
            out[key] = Axis(key, tuple(None if v is INVALID else v for v in axis.values), axis.paths, axis.path)
        else:
            out[key] = axis
    return out


def _videos(reader: Reader, inputs: dict[str, Any], doubts: _Draft, schema: ModelSchema | None
            ) -> tuple[str, tuple[Video, ...]]:
    """The input axis (led by `video`, else the first input with the most values), each step paired with the
    other inputs; one placeholder if an input that is always required is unusable."""
    usable = {k: v for k, v in inputs.items() if isinstance(v, Inputs)}
    for key, value in inputs.items():
        if not isinstance(value, Inputs) or not value.usable:
            doubts.lack(key)
    if len(usable) < len(inputs):
        doubts.guess(None)
    order = [item.name for item in schema.file_inputs] if schema is not None else []
    order += [key for key in usable if key not in order]
    required = [item.name for item in schema.file_inputs if item.required.always] if schema is not None else ["video"]
    if any(name not in usable for name in required) or not usable and len(inputs) > len(usable):
        return (required or ["video"])[0], doubts.guess((Video("", (), {}),), counted=False)
    if not usable:
        return "video", (Video("", (), {}),)  # a model that needs no file, given none
    leader, videos, as_written = pair_inputs(usable, order, reader.error)
    if not as_written:
        doubts.guess(None)
    return leader, videos


def _check_axes(reader: Reader, prompts: tuple[Prompt, ...], sweep: dict[str, Axis], zipped: dict[str, Axis]) -> None:
    """Zip lists of equal length, no key both swept and zipped, no prompt override of a swept key."""
    for key, axis in zipped.items():
        if key in sweep:
            reader.error(axis.path, f"{key!r} is both swept and zipped (also {format_path(sweep[key].path)})")
    lengths = [len(axis.values) for axis in zipped.values()]
    for axis in zipped.values():
        if len(axis.values) != lengths[0]:
            shown = ", ".join(f"{k} has {len(a.values)}" for k, a in zipped.items())
            reader.error(axis.path, f"zip lists must have equal lengths ({shown})")
    for prompt in prompts:
        for key in prompt.overrides:
            if key in sweep or key in zipped:
                reader.error((*prompt.path, key), f"{key!r} is set for this prompt and also swept or zipped; keep one")


def _warn_unused_defaults(reader: Reader, batches: list[Batch]) -> None:
    """A default that a sweep or zip overrides in every batch that inherits it is never sent: say so."""
    hidden: dict[DocPath, tuple[str, DocPath]] = {}
    used: set[DocPath] = set()
    for batch in batches:
        axes = {axis.name: axis.path for axis in (*batch.sweep, *batch.zip)}
        for key, where in batch.default_paths.items():
            if key in axes:
                hidden.setdefault(where, (key, axes[key]))
            else:
                used.add(where)
    for where, (key, axis) in hidden.items():
        if where not in used:
            reader.warn(where, f"is never used: {format_path(axis)} sets {key!r} in every job")


def _in_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: p.line if p.line is not None else 0)
