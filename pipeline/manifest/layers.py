"""Reading one block of the manifest (the top level or one batch) into a `Layer` of checked values.

Each value is checked where it is written, against the schema of the block's model (`schema`,
`schema_check`: the built-in table of LTX-2 19B, or the description the CLI fetched for another
model); every problem is recorded with its location (`batches[0].sweep.videoStrength[2]`) and line,
with a hint (`hints`) when a YAML trap is the likely cause. A bad entry inside a list (a sweep
value, a prompt, a seed) is marked INVALID in place, so the list keeps its length and the jobs
can still be counted and checked as a whole (`load.merge`).

The top level is read once for its own model; when a batch names another model, the top level is
read again for that one (its problems then say which model they are about, and are not repeated).
A model whose schema is not known (an invalid id, one the API does not know) has its problem
recorded where it is named, and the values of its blocks are left unchecked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from collections.abc import Mapping

from pipeline.errors import Problem
from pipeline.manifest import hints
from pipeline.manifest.expand import Axis, Prompt
from pipeline.manifest.inputs import InputFiles
from pipeline.manifest.params import MODEL_ID, PARAMS, SEED_LIMIT, suggest
from pipeline.manifest.schema import ModelInput, ModelSchema
from pipeline.manifest.schema_check import check_value, defined
from pipeline.yamlpos import Path, Tree, describe, format_path

Schemas = Mapping[str, "ModelSchema | str"]
"""The schema of each model a manifest names, or why it is not known (a located problem where it is named)."""

MAX_JOBS = 1_000_000  # per manifest: beyond this, split it
SEEDS_KEYS = ("count", "from")


class _Invalid:
    """Marks an entry that is written but invalid (its problem is already recorded): a value, a whole
    entry of a block, a prompt's text, an input file."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()


@dataclass(frozen=True, slots=True)
class At:
    """A checked value and where it is written."""

    value: Any
    path: Path


@dataclass(slots=True)
class Layer:
    """One block as written. In the dicts, None removes an inherited key and INVALID marks a bad entry."""

    model: At | None = None
    inputs: dict[str, Any] = field(default_factory=dict)  # param -> Inputs | None | INVALID
    defaults: dict[str, Any] = field(default_factory=dict)  # name -> At | None | INVALID
    prompts: Any = None  # tuple[Prompt, ...] | None (not given) | INVALID; a bad prompt's text is INVALID
    sweep: dict[str, Any] = field(default_factory=dict)  # name -> Axis | None | INVALID; bad values INVALID
    zip: dict[str, Any] = field(default_factory=dict)
    seeds: At | None = None  # value: range | tuple[int, ...] | None (null: derived seeds) | INVALID
    broken: bool = False  # a batch that is not a mapping: nothing in it could be read


class Reader:
    """Reads the blocks of one manifest, collecting every problem and warning.

    `schema` and `model` are those of the block being read (`layer`); `note` is added to the problems found
    when the top level is read again for a batch's model."""

    def __init__(self, tree: Tree, base_dir: FsPath, schemas: Schemas | None = None) -> None:
        self.tree = tree
        self.schemas: Schemas = schemas if schemas is not None else {}
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.files = InputFiles(base_dir, self.error)
        self.schema: ModelSchema | None = None
        self.model_id = MODEL_ID
        self.note = ""
        self.said: set[tuple[bool, str, str]] = set()  # (warning?, where, message) recorded: never twice
        self.faulty: set[str] = set()  # where problems are recorded

    def _new(self, warning: bool, path: Path, message: str) -> bool:
        said = (warning, format_path(path), message)
        if said in self.said:
            return False
        self.said.add(said)
        return True

    def error(self, path: Path, message: str) -> None:
        if self.tree.is_damaged(path):
            return  # the YAML value there could not be read as written: that problem is already recorded
        if self.note and format_path(path) in self.faulty:
            return  # read again for another model: one problem a place is enough (the first one fixed, it shows)
        if self._new(False, path, message):
            self.faulty.add(format_path(path))
            self.problems.append(self.tree.problem(path, message + self.note))

    def unknown(self, path: Path, message: str, what: str = "key") -> None:
        """An unknown key; when it looks like the rest of a text cut at a comma in `{...}`, the hint says so
        (in place of a suggestion, which would be a guess from a piece of text)."""
        container: Any = self.tree.value
        for part in path[:-1]:
            if isinstance(container, dict):
                container = container.get(part)
            else:
                in_list = isinstance(container, list) and isinstance(part, int) and part < len(container)
                container = container[part] if in_list else None
        hint = None
        if isinstance(container, dict):
            hint = hints.split_text(container, path[-1], flow=path[:-1] in self.tree.flow)
        self.error(path, f"unknown {what} {path[-1]!r} ({hint})" if hint else message)

    def warn(self, path: Path, message: str) -> None:
        if self._new(True, path, message):
            self.warnings.append(self.tree.problem(path, message + self.note))

    def read_model(self, doc: dict[str, Any], path: Path) -> At | None:
        """A block's own `model`, checked (INVALID if it cannot be a model id), or None if it names none."""
        if doc.get("model") is None:
            return None
        return At(self.model(doc["model"], (*path, "model")), (*path, "model"))

    def schema_of(self, model: Any, where: At | None) -> ModelSchema | None:
        """The schema of a model, or None (recording why where the model is named) when it is not known."""
        if model is INVALID:
            return None  # its problem is recorded
        found = self.schemas.get(model)
        if isinstance(found, ModelSchema):
            return found
        self.error(where.path if where is not None else (), found if isinstance(found, str) else
                   f"the parameters of model {model} are not known here (ltx-batch fetches them: plan or run "
                   "this manifest)")
        return None

    def layer(self, doc: dict[str, Any], path: Path, allowed: tuple[str, ...], model: Any = MODEL_ID,
              where: At | None = None, *, note: str = "") -> Layer:
        """Every key of one block except `name` and `batches` (read by `manifest`), checked against `model`'s
        schema (`where`: the block's own `model`, if it names one; `note`: added to each problem found)."""
        self.model_id, self.note = model, note
        self.schema = self.schema_of(model, where)
        layer = Layer(model=where)
        try:
            self._read(layer, doc, path, allowed)
        finally:
            self.note = ""
        return layer

    def _read(self, layer: Layer, doc: dict[str, Any], path: Path, allowed: tuple[str, ...]) -> None:
        for key, raw in doc.items():
            here = (*path, key)
            if key not in allowed:
                self.unknown(here, unknown_key(key, allowed, self.schema))
            elif key == "model":
                continue  # read first (`read_model`): it says which schema the rest is checked against
            elif key == "inputs":
                layer.inputs = self.mapping(raw, here, self.files_shape(), self.inputs)
            elif key == "defaults":
                layer.defaults = self.mapping(raw, here, "parameter: value", self.setting)
            elif key in ("sweep", "zip"):
                setattr(layer, key, self.mapping(raw, here, "parameter: [values]", self.axis))
            elif key == "prompts":
                layer.prompts = self.prompts(raw, here)
            elif key == "seeds":
                layer.seeds = At(self.seeds(raw, here), here)

    def model(self, raw: Any, path: Path) -> Any:
        if not isinstance(raw, str) or not raw.startswith("model_") or not raw.isprintable() or " " in raw:
            self.error(path, f"must be a model id (model_...), not {describe(raw)}")
            return INVALID
        return raw

    def item(self, name: str) -> ModelInput | None:
        return self.schema.get(name) if self.schema is not None else None

    def files_shape(self) -> str:
        names = [i.name for i in self.schema.file_inputs] if self.schema is not None else []
        if not names:
            return "input: file"
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]

    def for_model(self) -> str:
        """` for model_x` when the block's model is not the default one (messages about its parameters)."""
        return "" if self.model_id == MODEL_ID else f" for {self.model_id}"

    def unknown_parameter(self, name: str) -> str:
        names = list(self.schema.names) if self.schema is not None else []
        hint = suggest(name, names)
        message = f"unknown parameter {name!r}{self.for_model()}"
        listing = f"`ltx-batch models {self.model_id}` lists its parameters"
        if self.model_id != MODEL_ID and name in PARAMS and (hint is None or hint.lower() != name.lower()):
            return f"{message} (LTX-2 19B takes it, this model does not; {listing})"
        if hint:
            return f"{message} (did you mean {hint!r}?)"
        return f"{message} ({listing})" if self.model_id != MODEL_ID else message

    def mapping(self, raw: Any, path: Path, shape: str, read: Any) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            hint = ""
            if isinstance(raw, str) and ":" in raw and ": " not in raw:
                hint = " (put a space after the ':' of each key)"
            self.error(path, f"must be a mapping ({shape}), not {describe(raw)}{hint}")
            return {"": INVALID}
        return {key: read(key, value, (*path, key)) for key, value in raw.items()}

    def inputs(self, param: str, raw: Any, path: Path) -> Any:
        item = self.item(param)
        if self.schema is not None and (item is None or not item.is_file):
            names = tuple(i.name for i in self.schema.file_inputs)
            if names:
                self.unknown(path, unknown_key(param, names, self.schema))
            else:
                self.error(path, f"unknown key {param!r}: {self.model_id} takes no file")
            return INVALID
        if raw is None:
            return None  # drops an inherited input
        found = self.files.read(param, raw, path, item)
        return INVALID if found is None else found

    def settable(self, name: str, path: Path) -> bool:
        """Whether a parameter may be set in defaults, prompt overrides, sweep or zip; records why not."""
        item = self.item(name)
        known = self.schema is None or item is not None
        if item is not None and item.is_file:
            self.error(path, f"{name!r} is a file: give it under 'inputs'")
        elif name == "prompt" and known:
            self.error(path, "prompts are given under 'prompts'")
        elif name == "seed" and known:
            self.error(path, "seeds are given with the 'seeds' key")
        elif not known:
            self.unknown(path, self.unknown_parameter(name), "parameter")
        else:
            return True
        return False

    def value(self, name: str, raw: Any, path: Path) -> Any:
        """One value checked against the model's schema (integral numbers become ints); INVALID if bad.

        A model whose schema is not known: the value as written (its problem is recorded where it is named)."""
        if raw is None:
            return None  # not sent: the server decides
        item = self.item(name)
        if item is None:
            return raw
        value, errors, warnings = check_value(item, raw)
        if not errors and item.required.always and not defined(value):
            errors = [(name, "must not be empty")]
        if errors:
            hint = hints.value_hint(item, raw) if len(errors) == 1 and errors[0][0] == name else None
            for key, error in errors:
                self.error(_item_path(path, name, key), f"{error} ({hint})" if hint else error)
            return INVALID
        for key, warning in warnings:
            self.warn(_item_path(path, name, key), warning)
        return _whole(value) if not isinstance(value, list) else [_whole(v) for v in value]

    def setting(self, name: str, raw: Any, path: Path) -> Any:
        if not self.settable(name, path):
            return INVALID
        if raw is None:
            return None  # drops an inherited default
        value = self.value(name, raw, path)
        return INVALID if value is INVALID else At(value, path)

    def axis(self, name: str, raw: Any, path: Path) -> Any:
        """The values of one swept or zipped parameter; INVALID in place of each bad or repeated one."""
        settable = self.settable(name, path)
        if raw is None:
            return None if settable else INVALID  # null drops an inherited axis
        paths = tuple((*path, i) for i in range(len(raw))) if isinstance(raw, list) else ()
        if not settable:
            return Axis(name, (INVALID,) * len(raw), paths, path) if isinstance(raw, list) and raw else INVALID
        if not isinstance(raw, list) or not raw:
            what = "an empty list" if raw == [] else describe(raw)
            self.error(path, f"must be a non-empty list of values (a single value goes in 'defaults'), not {what}")
            return INVALID
        values = [self.value(name, item, (*path, i)) for i, item in enumerate(raw)]
        for i in self.repeated(values, path, "value"):
            values[i] = INVALID
        return Axis(name, tuple(values), paths, path)

    def repeated(self, values: list[Any], path: Path, what: str) -> list[int]:
        """Record every value listed twice in one list (prompts: same text and overrides); their indices.

        Entries already INVALID (or prompts with an INVALID part) are not compared."""
        first: dict[str, int] = {}
        found = []
        for i, value in enumerate(values):
            if value is INVALID or isinstance(value, Prompt) and not _known_prompt(value):
                continue
            marker = repr((value.text, sorted(value.overrides.items())) if isinstance(value, Prompt) else value)
            if marker in first:
                shown = value.text if isinstance(value, Prompt) else value
                self.error((*path, i), f"{what} {shown!r} is listed twice (also {format_path((*path, first[marker]))})")
                found.append(i)
            first.setdefault(marker, i)
        return found

    def prompts(self, raw: Any, path: Path) -> Any:
        """The prompts in order; a bad or repeated one keeps its place with an INVALID text."""
        if self.schema is not None and self.item("prompt") is None:
            self.error(path, f"{self.model_id} takes no prompt: leave 'prompts' out")
            return INVALID
        if isinstance(raw, (str, dict)):
            return (self.prompt(raw, path),)
        if not isinstance(raw, list) or not raw:
            what = "an empty list" if raw == [] else describe(raw)
            self.error(path, f"must be a non-empty list of prompts (text or {{prompt: ..., <parameter>: ...}}), "
                             f"not {what}")
            return INVALID
        prompts = [self.prompt(item, (*path, i)) for i, item in enumerate(raw)]
        for i in self.repeated(prompts, path, "prompt"):
            prompts[i] = Prompt(INVALID, prompts[i].overrides, prompts[i].path)
        return tuple(prompts)

    def prompt(self, item: Any, path: Path) -> Prompt:
        """Text, or a mapping of `prompt` (the text) and parameter overrides (null unsets a default).

        The text is INVALID if it is bad; so is each bad override."""
        if not isinstance(item, dict):
            return Prompt(self.text(item, path), {}, path)
        if "prompt" not in item:
            hint = hints.prompt_mapping(item, self.schema.by_name if self.schema is not None else {})
            message = "a prompt given as a mapping needs a 'prompt' key (the text)"
            self.error(path, f"{message}; {hint}" if hint else message)
            if hint:  # a text with ': ' in it, not overrides: nothing more to say about its keys
                return Prompt(INVALID, {}, path)
        text, overrides = INVALID, {}
        for key, raw in item.items():
            if key == "prompt":
                text = self.text(raw, (*path, key))
                continue
            found = self.setting(key, raw, (*path, key))
            overrides[key] = found.value if isinstance(found, At) else found  # None unsets, INVALID is bad
        return Prompt(text, overrides, path)

    def text(self, raw: Any, path: Path) -> Any:
        """A prompt's text, or INVALID."""
        if raw is None:
            self.error(path, "a prompt must be text, not null")
            return INVALID
        return self.value("prompt", raw, path)

    def seeds(self, raw: Any, path: Path) -> Any:
        """A list of seeds, one seed, {count: N, from: S}, or null (each job's seed derived from its key)."""
        if raw is None:
            return None
        seed = self.item("seed")
        if self.schema is not None and seed is None:
            self.error(path, f"{self.model_id} takes no seed: leave 'seeds' out")
            return INVALID
        if isinstance(raw, dict):
            return self.seed_range(raw, path)
        single = isinstance(raw, int) and not isinstance(raw, bool)
        if not single and not (isinstance(raw, list) and raw):
            what = "an empty list" if raw == [] else describe(raw)
            self.error(path, f"must be a list of seeds or {{count: N, from: S}}, not {what}")
            return INVALID
        if single and 2 <= raw <= MAX_JOBS:
            self.warn(path, hints.single_seed(raw))
        seeds = []
        for i, item in enumerate([raw] if single else raw):
            error = _seed_error(seed, item)
            if error:
                self.error(path if single else (*path, i), f"a seed {error}")
            seeds.append(INVALID if error else int(item))
        for i in self.repeated(seeds, path, "seed"):
            seeds[i] = INVALID
        return tuple(seeds)

    def seed_range(self, raw: dict[str, Any], path: Path) -> Any:
        for key in raw:
            if key not in SEEDS_KEYS:
                self.unknown((*path, key), unknown_key(key, SEEDS_KEYS))
        count, start = _count(raw.get("count")), _count(raw.get("from", 0))
        if "count" not in raw:
            self.error(path, "needs 'count' (how many seeds), e.g. {count: 8, from: 1000}")
        elif count is None or not 1 <= count <= MAX_JOBS:
            self.error((*path, "count"), f"must be a whole number from 1 to {MAX_JOBS:,}, not {describe(raw['count'])}")
        if start is None or start < 0:
            shown = describe(raw.get("from"))
            self.error((*path, "from"), f"must be a whole number >= 0 (the first seed), not {shown}")
        if count is None or start is None or not 1 <= count <= MAX_JOBS or start < 0:
            return INVALID
        seed = self.item("seed")
        lowest = int(seed.minimum) if seed is not None and seed.minimum is not None else 0
        largest = int(seed.maximum) if seed is not None and seed.maximum is not None else SEED_LIMIT
        if start < lowest:
            self.error((*path, "from"), f"must be at least {lowest} (the smallest seed{self.for_model()}), not {start}")
            return INVALID
        if start + count - 1 > largest:
            self.error(path, f"the seeds run past the largest seed{self.for_model()}, {largest}")
            return INVALID
        return range(start, start + count)


def _known_prompt(prompt: Prompt) -> bool:
    return prompt.text is not INVALID and INVALID not in prompt.overrides.values()


def _whole(value: Any) -> Any:
    """An integral float as an int (1 and 1.0 are the same request, so the same key); anything else as it is."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value)


def _item_path(path: Path, name: str, key: str) -> Path:
    """Where a problem keyed `name` or `name[i]` (an item of a list value) is written."""
    if key.startswith(f"{name}[") and key.endswith("]") and key[len(name) + 1:-1].isdigit():
        return (*path, int(key[len(name) + 1:-1]))
    return path


def _seed_error(seed: ModelInput | None, value: Any) -> str | None:
    """Why `value` cannot be a seed (of this model's `seed` input, when known), or None."""
    if seed is not None:
        _, errors, _ = check_value(seed, value)
        if errors:
            return errors[0][1]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        return f"must be a whole number, not {value if isinstance(value, float) else describe(value)}"
    return None if seed is not None or 0 <= value <= SEED_LIMIT else f"{int(value)} is out of range 0..{SEED_LIMIT}"


def unknown_key(key: str, allowed: tuple[str, ...], schema: ModelSchema | None = None) -> str:
    """The error for a key that is not allowed here, with the closest allowed one or a hint."""
    hint = suggest(key, allowed)
    message = f"unknown key {key!r}"
    if hint:
        return f"{message} (did you mean {hint!r}?)"
    item = schema.get(key) if schema is not None else None
    if item is not None and item.is_file and "inputs" in allowed:
        return f"{message} (files go under 'inputs')"
    if item is not None and "defaults" in allowed:
        return f"{message} (parameters go under 'defaults', 'sweep' or 'zip')"
    if key == "batches":
        return f"{message} (batches cannot be nested)"
    return f"{message}; expected one of {', '.join(allowed)}"
