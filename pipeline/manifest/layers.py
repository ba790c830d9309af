"""Reading one block of the manifest (the top level or one batch) into a `Layer` of checked values.

Each value is checked once, where it is written, against the parameter table in `params`;
every problem is recorded with its location (`batches[0].sweep.videoStrength[2]`) and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from pipeline.errors import Problem
from pipeline.manifest.expand import Axis, Prompt
from pipeline.manifest.inputs import InputFiles
from pipeline.manifest.params import FILE_PARAMS, MODEL_ID, PARAMS, SEED_LIMIT, check_value, suggest, unknown_message
from pipeline.yamlpos import Path, Tree, describe, format_path

MAX_JOBS = 1_000_000  # per manifest: beyond this, split it
SEEDS_KEYS = ("count", "from")


class _Invalid:
    """Marks an entry that is written but invalid (its problem is already recorded)."""

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
    prompts: Any = None  # tuple[Prompt, ...] | None (not given) | INVALID
    sweep: dict[str, Any] = field(default_factory=dict)  # name -> Axis | None | INVALID
    zip: dict[str, Any] = field(default_factory=dict)
    seeds: At | None = None  # value: range | tuple[int, ...] | None (null: derived seeds) | INVALID


class Reader:
    """Reads the blocks of one manifest, collecting every problem and warning."""

    def __init__(self, tree: Tree, base_dir: FsPath) -> None:
        self.tree = tree
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.files = InputFiles(base_dir, self.error)

    def error(self, path: Path, message: str) -> None:
        self.problems.append(self.tree.problem(path, message))

    def warn(self, path: Path, message: str) -> None:
        self.warnings.append(self.tree.problem(path, message))

    def layer(self, doc: dict[str, Any], path: Path, allowed: tuple[str, ...]) -> Layer:
        """Every key of one block except `name` and `batches` (read by `manifest`)."""
        layer = Layer()
        for key, raw in doc.items():
            here = (*path, key)
            if key not in allowed:
                self.error(here, unknown_key(key, allowed))
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
            self.error(path, f"must be a mapping ({shape}), not {describe(raw)}")
            return {"": INVALID}
        return {key: read(key, value, (*path, key)) for key, value in raw.items()}

    def inputs(self, param: str, raw: Any, path: Path) -> Any:
        if param not in FILE_PARAMS:
            self.error(path, unknown_key(param, FILE_PARAMS))
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
            self.error(path, unknown_message(name))
        else:
            return True
        return False

    def value(self, name: str, raw: Any, path: Path) -> Any:
        """One value checked against the table (integral numbers become ints); INVALID if bad."""
        if raw is None:
            return None  # not sent: the server decides
        value, error, warning = check_value(PARAMS[name], raw)
        if error:
            self.error(path, error)
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
        if not self.settable(name, path):
            return INVALID
        if raw is None:
            return None  # drops an inherited axis
        if not isinstance(raw, list) or not raw:
            what = "an empty list" if raw == [] else describe(raw)
            self.error(path, f"must be a non-empty list of values (a single value goes in 'defaults'), not {what}")
            return INVALID
        values = [self.value(name, item, (*path, i)) for i, item in enumerate(raw)]
        if INVALID in values or self.repeated(values, path, "value"):
            return INVALID
        return Axis(name, tuple(values), tuple((*path, i) for i in range(len(raw))), path)

    def repeated(self, values: list[Any], path: Path, what: str) -> bool:
        """Record every value listed twice in one list (prompts: same text and overrides); True if any."""
        first: dict[str, int] = {}
        for i, value in enumerate(values):
            marker = repr((value.text, sorted(value.overrides.items())) if isinstance(value, Prompt) else value)
            if marker in first:
                shown = value.text if isinstance(value, Prompt) else value
                self.error((*path, i), f"{what} {shown!r} is listed twice (also {format_path((*path, first[marker]))})")
            first.setdefault(marker, i)
        return len(first) < len(values)

    def prompts(self, raw: Any, path: Path) -> Any:
        if isinstance(raw, (str, dict)):
            found = self.prompt(raw, path)
            return INVALID if found is None else (found,)
        if not isinstance(raw, list) or not raw:
            what = "an empty list" if raw == [] else describe(raw)
            self.error(path, f"must be a non-empty list of prompts (text or {{prompt: ..., <parameter>: ...}}), "
                             f"not {what}")
            return INVALID
        found = [self.prompt(item, (*path, i)) for i, item in enumerate(raw)]
        prompts = [p for p in found if p is not None]
        if len(prompts) < len(found) or self.repeated(prompts, path, "prompt"):
            return INVALID
        return tuple(prompts)

    def prompt(self, item: Any, path: Path) -> Prompt | None:
        """Text, or a mapping of `prompt` (the text) and parameter overrides (null unsets a default)."""
        if not isinstance(item, dict):
            text = self.text(item, path)
            return None if text is None else Prompt(text, {}, path)
        if "prompt" not in item:
            self.error(path, "a prompt given as a mapping needs a 'prompt' key (the text)")
            return None
        text, overrides, ok = None, {}, True
        for key, raw in item.items():
            if key == "prompt":
                text = self.text(raw, (*path, key))
                ok = ok and text is not None
                continue
            found = self.setting(key, raw, (*path, key))
            ok = ok and found is not INVALID
            overrides[key] = found.value if isinstance(found, At) else None
        return Prompt(text, overrides, path) if ok and text is not None else None

    def text(self, raw: Any, path: Path) -> str | None:
        if raw is None:
            self.error(path, "a prompt must be text, not null")
            return None
        value = self.value("prompt", raw, path)
        return None if value is INVALID else value

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
        seeds = []
        for i, item in enumerate([raw] if single else raw):
            value, error, _ = check_value(PARAMS["seed"], item)
            if error:
                self.error(path if single else (*path, i), f"a seed {error}")
            seeds.append(INVALID if error else int(value))
        if INVALID in seeds or self.repeated(seeds, path, "seed"):
            return INVALID
        return tuple(seeds)

    def seed_range(self, raw: dict[str, Any], path: Path) -> Any:
        for key in raw:
            if key not in SEEDS_KEYS:
                self.error((*path, key), unknown_key(key, SEEDS_KEYS))
        if "count" not in raw:
            self.error(path, "needs 'count' (how many seeds), e.g. {count: 8, from: 1000}")
            return INVALID
        count, start = _whole(raw["count"]), _whole(raw.get("from", 0))
        if count is None or not 1 <= count <= MAX_JOBS:
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
