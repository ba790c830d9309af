"""Reading one block of the manifest (the top level or one batch) into a `Layer` of checked values.

Each value is checked once, where it is written, against the parameter table in `params`;
every problem is recorded with its location (`batches[0].sweep.videoStrength[2]`) and line,
with a hint (`hints`) when a YAML trap is the likely cause. A bad entry inside a list (a sweep
value, a prompt, a seed) is marked INVALID in place, so the list keeps its length and the jobs
can still be counted and checked as a whole (`load.merge`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from pipeline.errors import Problem
from pipeline.manifest import hints
from pipeline.manifest.expand import Axis, Prompt
from pipeline.manifest.inputs import InputFiles
from pipeline.manifest.params import FILE_PARAMS, MODEL_ID, PARAMS, SEED_LIMIT, check_value, suggest, unknown_message
from pipeline.yamlpos import Path, Tree, describe, format_path

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
    """Reads the blocks of one manifest, collecting every problem and warning."""

    def __init__(self, tree: Tree, base_dir: FsPath) -> None:
        self.tree = tree
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.files = InputFiles(base_dir, self.error)

    def error(self, path: Path, message: str) -> None:
        if self.tree.is_damaged(path):
            return  # the YAML value there could not be read as written: that problem is already recorded
        self.problems.append(self.tree.problem(path, message))

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
        self.warnings.append(self.tree.problem(path, message))

    def layer(self, doc: dict[str, Any], path: Path, allowed: tuple[str, ...]) -> Layer:
        """Every key of one block except `name` and `batches` (read by `manifest`)."""
        layer = Layer()
        for key, raw in doc.items():
            here = (*path, key)
            if key not in allowed:
                self.unknown(here, unknown_key(key, allowed))
            elif key == "model" and raw is not None:
                layer.model = At(self.model(raw, here), here)
            elif key == "inputs":
                layer.inputs = self.mapping(raw, here, "video, image or conditioningVideo", self.inputs)
            elif key == "defaults":
                layer.defaults = self.mapping(raw, here, "parameter: value", self.setting)
            elif key in ("sweep", "zip"):
                setattr(layer, key, self.mapping(raw, here, "parameter: [values]", self.axis))
            elif key == "prompts":
                layer.prompts = self.prompts(raw, here)
            elif key == "seeds":
                layer.seeds = At(self.seeds(raw, here), here)
        return layer

    def model(self, raw: Any, path: Path) -> Any:
        if not isinstance(raw, str) or not raw.startswith("model_") or not raw.isprintable() or " " in raw:
            self.error(path, f"must be a model id (model_...), not {describe(raw)}")
            return INVALID
        if raw != MODEL_ID:
            self.warn(path, f"parameters are checked against the table of {MODEL_ID}")
        return raw

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
        if param not in FILE_PARAMS:
            self.unknown(path, unknown_key(param, FILE_PARAMS))
            return INVALID
        if raw is None:
            return None  # drops an inherited input
        found = self.files.read(param, raw, path)
        return INVALID if found is None else found

    def settable(self, name: str, path: Path) -> bool:
        """Whether a parameter may be set in defaults, prompt overrides, sweep or zip; records why not."""
        if name in FILE_PARAMS:
            self.error(path, f"{name!r} is a file: give it under 'inputs'")
        elif name == "prompt":
            self.error(path, "prompts are given under 'prompts'")
        elif name == "seed":
            self.error(path, "seeds are given with the 'seeds' key")
        elif name not in PARAMS:
            self.unknown(path, unknown_message(name), "parameter")
        else:
            return True
        return False

    def value(self, name: str, raw: Any, path: Path) -> Any:
        """One value checked against the table (integral numbers become ints); INVALID if bad."""
        if raw is None:
            return None  # not sent: the server decides
        value, error, warning = check_value(PARAMS[name], raw)
        if error:
            hint = hints.value_hint(PARAMS[name], raw)
            self.error(path, f"{error} ({hint})" if hint else error)
            return INVALID
        if warning:
            self.warn(path, warning)
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 1 and 1.0 are the same request, so the same key
        return value

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
            hint = hints.prompt_mapping(item, PARAMS)
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
            value, error, _ = check_value(PARAMS["seed"], item)
            if error:
                self.error(path if single else (*path, i), f"a seed {error}")
            seeds.append(INVALID if error else int(value))
        for i in self.repeated(seeds, path, "seed"):
            seeds[i] = INVALID
        return tuple(seeds)

    def seed_range(self, raw: dict[str, Any], path: Path) -> Any:
        for key in raw:
            if key not in SEEDS_KEYS:
                self.unknown((*path, key), unknown_key(key, SEEDS_KEYS))
        count, start = _whole(raw.get("count")), _whole(raw.get("from", 0))
        if "count" not in raw:
            self.error(path, "needs 'count' (how many seeds), e.g. {count: 8, from: 1000}")
        elif count is None or not 1 <= count <= MAX_JOBS:
            self.error((*path, "count"), f"must be a whole number from 1 to {MAX_JOBS:,}, not {describe(raw['count'])}")
        if start is None or start < 0:
            shown = describe(raw.get("from"))
            self.error((*path, "from"), f"must be a whole number >= 0 (the first seed), not {shown}")
        if count is None or start is None or not 1 <= count <= MAX_JOBS or start < 0:
            return INVALID
        if start + count - 1 > SEED_LIMIT:
            self.error(path, f"the seeds run past the largest seed, {SEED_LIMIT}")
            return INVALID
        return range(start, start + count)


def _known_prompt(prompt: Prompt) -> bool:
    return prompt.text is not INVALID and INVALID not in prompt.overrides.values()


def _whole(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value)


def unknown_key(key: str, allowed: tuple[str, ...]) -> str:
    """The error for a key that is not allowed here, with the closest allowed one or a hint."""
    hint = suggest(key, allowed)
    message = f"unknown key {key!r}"
    if hint:
        return f"{message} (did you mean {hint!r}?)"
    if key in FILE_PARAMS and "inputs" in allowed:
        return f"{message} (files go under 'inputs')"
    if key in PARAMS and "defaults" in allowed:
        return f"{message} (parameters go under 'defaults', 'sweep' or 'zip')"
    if key == "batches":
        return f"{message} (batches cannot be nested)"
    return f"{message}; expected one of {', '.join(allowed)}"
