"""A model's parameters as Scenario describes them, as typed records (pure): parse, write back, the built-in one.

`GET /v1/models/{modelId}` answers `{"model": {..., "capabilities": [...], "inputs": [...]}}`. The shape
of an input is scenario-sdk 2.4.0 `types/model_retrieve_response.py` (`ModelInput`, `ModelInputRequired`)
and the official Blender plugin's working validator (github.com/scenario-labs/blender-plugin
`scenario/core/schema/params.py`) with its captured records (`tests/fixtures/models/*.json`):

- `name`, `type`: `string`, `number`, `boolean`, `file`, `file_array`, `string_array`, `number_array`,
  `inputs_array`, `model`, `model_array`;
- as they apply: `default`, `min`, `max`, `step`, `minLength`/`maxLength` (characters for a string, the
  number of items for an array: Seedance 2.0's `referenceVideos` is a `file_array` with `maxLength: 3`),
  `allowedValues` (may hold sentinels: Seedance's `duration` lists -1, "Auto" in `uiConfig.selects`),
  `kind` of a file (`video`, `image`, `audio`, ...), `maxSize` (bytes), `minDuration`/`maxDuration`
  (seconds), `costImpact`, `description`, `label`;
- `required`: a bare boolean (the plugin accepts it) or an object: `always`; `ifDefined: {other: {message}}`
  (required when `other` is set; the plugin fixture of Seedance: `image` when `lastFrameImage` is);
  `ifNotDefined: {other: {message}}` (required when none of the named inputs is set: the plugin reads it as
  an either/or group); `conditional: {values: {other: [v, ...]}, operator: and|or}` (the SDK's name) and
  `conditionalValues` (the name in issue 15 and api-notes; shape unconfirmed: read as `conditional` is, or
  as its `values` mapping alone).

The built-in model (`builtin_schema`) is `pipeline.manifest.params.PARAMS` written in this shape, so the
default model needs no network. `check_params` (in `schema_check`) works from any `ModelSchema`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from pipeline.errors import PipelineError
from pipeline.manifest.params import MODEL_ID, PARAMS, Param

INPUT_TYPES = ("string", "number", "boolean", "file", "file_array", "string_array", "number_array",
               "inputs_array", "model", "model_array")
ARRAY_ITEMS = {"file_array": "file", "string_array": "string", "number_array": "number", "model_array": "model"}
FILE_TYPES = ("file", "file_array")

# the built-in model: the asset kind of each file parameter, and the parameters its price depends on
BUILTIN_FILE_KINDS: dict[str, str] = {"video": "video", "conditioningVideo": "video", "image": "image"}
BUILTIN_COST_INPUTS = ("duration", "resolution", "width", "height", "numInferenceSteps")
BUILTIN_NAME = "LTX-2 19B Video to Video"
BUILTIN_CAPABILITIES = ("video2video",)


class SchemaError(PipelineError):
    """A model description that cannot be read as one (not an object, no id)."""


@dataclass(frozen=True, slots=True)
class Condition:
    """`required.conditional`: the input is required when other inputs hold one of the listed values
    (`values`: (input name, the values that count)), all of them (`and`) or any (`or`)."""

    values: tuple[tuple[str, tuple[Any, ...]], ...]
    operator: Literal["and", "or"] = "and"
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Requirement:
    """When an input must be given; by default never."""

    always: bool = False
    if_defined: tuple[tuple[str, str | None], ...] = ()  # (other input, message): required when it is set
    if_not_defined: tuple[tuple[str, str | None], ...] = ()  # required when none of these is set
    conditions: tuple[Condition, ...] = ()

    @property
    def never(self) -> bool:
        return not (self.always or self.if_defined or self.if_not_defined or self.conditions)


@dataclass(frozen=True, slots=True)
class ModelInput:
    """One input of a model, as `GET /v1/models/{modelId}` describes it (fields absent there are None/empty)."""

    name: str
    type: str
    description: str = ""
    label: str = ""
    default: Any = None  # None: none given (the server decides)
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    min_length: int | None = None  # characters of a string, items of an array
    max_length: int | None = None
    allowed_values: tuple[Any, ...] = ()
    value_labels: tuple[tuple[Any, str], ...] = ()  # uiConfig.selects: (value, what the UI calls it)
    kind: str | None = None  # a file's asset kind
    max_size_bytes: int | None = None
    min_duration_s: float | None = None
    max_duration_s: float | None = None
    cost_impact: bool = False
    required: Requirement = Requirement()

    @property
    def is_file(self) -> bool:
        return self.type in FILE_TYPES

    @property
    def is_array(self) -> bool:
        return self.type.endswith("_array")

    @property
    def item_type(self) -> str:
        """The type of one value: the item type of an array, else the type itself."""
        return ARRAY_ITEMS.get(self.type, self.type)

    @property
    def whole(self) -> bool:
        """A number on a whole step (integers: `step: 1`)."""
        return self.item_type == "number" and self.step is not None and float(self.step).is_integer()

    def label_of(self, value: Any) -> str | None:
        """What the UI calls an allowed value (Seedance: -1 is "Auto"), or None."""
        for known, label in self.value_labels:
            if str(known) == str(value):
                return label
        return None


@dataclass(frozen=True, slots=True)
class ModelSchema:
    """A model: its id, name, capabilities and inputs (in the server's order)."""

    model_id: str
    name: str = ""
    capabilities: tuple[str, ...] = ()
    inputs: tuple[ModelInput, ...] = ()
    custom: bool = True
    builtin: bool = False
    by_name: Mapping[str, ModelInput] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", MappingProxyType({i.name: i for i in self.inputs}))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.inputs)

    def get(self, name: str) -> ModelInput | None:
        return self.by_name.get(name)

    @property
    def file_inputs(self) -> tuple[ModelInput, ...]:
        return tuple(i for i in self.inputs if i.is_file)

    def defaults(self) -> dict[str, Any]:
        """The default of every value input that has one."""
        return {i.name: i.default for i in self.inputs if not i.is_file and i.default is not None}


# -- reading a model's JSON ------------------------------------------------------------------------


def parse_model(data: Any) -> ModelSchema:
    """A `ModelSchema` from `GET /v1/models/{modelId}`'s answer (or its `model` object alone).

    Tolerant, as the notes ask: an input without a name is skipped, a field of the wrong type is read as
    absent. SchemaError when there is no model object with an id."""
    model = data.get("model") if isinstance(data, Mapping) and isinstance(data.get("model"), Mapping) else data
    if not isinstance(model, Mapping) or not isinstance(model.get("id"), str) or not model["id"]:
        raise SchemaError("the model description has no model id (expected {\"model\": {\"id\": ..., "
                          "\"inputs\": [...]}})")
    ui = model.get("uiConfig") if isinstance(model.get("uiConfig"), Mapping) else {}
    selects = ui.get("selects") if isinstance(ui.get("selects"), Mapping) else {}
    inputs = []
    seen: set[str] = set()
    for raw in model.get("inputs") or ():
        if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) or not raw["name"].strip():
            continue
        if raw["name"] in seen:
            continue
        seen.add(raw["name"])
        inputs.append(parse_input(raw, selects.get(raw["name"])))
    capabilities = model.get("capabilities")
    return ModelSchema(
        model_id=model["id"],
        name=_text(model.get("name")),
        capabilities=tuple(c for c in capabilities if isinstance(c, str)) if isinstance(capabilities, list) else (),
        inputs=tuple(inputs),
        custom=model.get("custom") is not False,
    )


def parse_input(raw: Mapping[str, Any], labels: Any = None) -> ModelInput:
    """One entry of `inputs`; `labels` is its `uiConfig.selects` mapping (value as text -> label), if any."""
    allowed = raw.get("allowedValues")
    allowed_values = tuple(allowed) if isinstance(allowed, list) else ()
    value_labels: list[tuple[Any, str]] = []
    if isinstance(labels, Mapping):
        for key, label in labels.items():
            if isinstance(label, str):
                match = next((v for v in allowed_values if str(v) == str(key)), key)
                value_labels.append((match, label))
    return ModelInput(
        name=raw["name"],
        type=raw["type"] if isinstance(raw.get("type"), str) else "string",
        description=_text(raw.get("description")),
        label=_text(raw.get("label")),
        default=raw.get("default"),
        minimum=_number(raw.get("min")),
        maximum=_number(raw.get("max")),
        step=_positive(raw.get("step")),
        min_length=_count(raw.get("minLength")),
        max_length=_count(raw.get("maxLength")),
        allowed_values=allowed_values,
        value_labels=tuple(value_labels),
        kind=raw["kind"] if isinstance(raw.get("kind"), str) else None,
        max_size_bytes=_count(raw.get("maxSize")),
        min_duration_s=_number(raw.get("minDuration")),
        max_duration_s=_number(raw.get("maxDuration")),
        cost_impact=raw.get("costImpact") is True,
        required=parse_required(raw.get("required")),
    )


def parse_required(raw: Any) -> Requirement:
    """`required` in any of its forms (see the module docstring); anything else: never required."""
    if isinstance(raw, bool):
        return Requirement(always=raw)
    if not isinstance(raw, Mapping):
        return Requirement()
    conditions = [c for c in (_condition(raw.get("conditional")),) if c is not None]
    extra = raw.get("conditionalValues")
    for item in extra if isinstance(extra, list) else [extra]:
        condition = _condition(item, bare=True)
        if condition is not None:
            conditions.append(condition)
    return Requirement(always=raw.get("always") is True, if_defined=_named_messages(raw.get("ifDefined")),
                       if_not_defined=_named_messages(raw.get("ifNotDefined")), conditions=tuple(conditions))


def _named_messages(raw: Any) -> tuple[tuple[str, str | None], ...]:
    """`{other: {"message": ...}}` (or `{other: "message"}`, or a list of names) as (name, message) pairs."""
    if isinstance(raw, list):
        return tuple((name, None) for name in raw if isinstance(name, str) and name)
    if not isinstance(raw, Mapping):
        return ()
    out = []
    for name, value in raw.items():
        if not isinstance(name, str) or not name:
            continue
        message = value.get("message") if isinstance(value, Mapping) else value
        out.append((name, message if isinstance(message, str) and message.strip() else None))
    return tuple(out)


def _condition(raw: Any, *, bare: bool = False) -> Condition | None:
    """`{values: {name: [v, ...]}, operator}`; with `bare`, a mapping without `values` is the values mapping."""
    if not isinstance(raw, Mapping):
        return None
    values = raw.get("values") if "values" in raw or not bare else {
        k: v for k, v in raw.items() if k not in ("operator", "message")}
    if not isinstance(values, Mapping):
        return None
    pairs = tuple((name, tuple(v) if isinstance(v, list) else (v,)) for name, v in values.items()
                  if isinstance(name, str) and name)
    if not pairs:
        return None
    operator = "or" if raw.get("operator") == "or" else "and"
    message = raw.get("message")
    return Condition(pairs, operator, message if isinstance(message, str) and message.strip() else None)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def _positive(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None


def _count(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number >= 0 and float(number).is_integer() else None


# -- writing one back ------------------------------------------------------------------------------


def input_json(item: ModelInput) -> dict[str, Any]:
    """One entry of `inputs` as the API shows it (the fields that apply, in the SDK's names)."""
    out: dict[str, Any] = {"name": item.name, "type": item.type}
    if item.description:
        out["description"] = item.description
    if item.label:
        out["label"] = item.label
    for key, value in (("default", item.default), ("min", item.minimum), ("max", item.maximum),
                       ("step", item.step), ("minLength", item.min_length), ("maxLength", item.max_length),
                       ("kind", item.kind), ("maxSize", item.max_size_bytes),
                       ("minDuration", item.min_duration_s), ("maxDuration", item.max_duration_s)):
        if value is not None:
            out[key] = value
    if item.allowed_values:
        out["allowedValues"] = list(item.allowed_values)
    if item.cost_impact:
        out["costImpact"] = True
    required = required_json(item.required)
    if required:
        out["required"] = required
    return out


def required_json(required: Requirement) -> dict[str, Any]:
    """`required` as an object (`{}` when never required)."""
    out: dict[str, Any] = {}
    if required.always:
        out["always"] = True
    for key, pairs in (("ifDefined", required.if_defined), ("ifNotDefined", required.if_not_defined)):
        if pairs:
            out[key] = {name: ({"message": message} if message else {}) for name, message in pairs}
    if required.conditions:
        first = required.conditions[0]
        out["conditional"] = {"values": {name: list(values) for name, values in first.values},
                              "operator": first.operator}
    return out


def selects_json(inputs: Iterable[ModelInput]) -> dict[str, dict[str, str]]:
    """`uiConfig.selects`: the labels of allowed values, by input."""
    return {i.name: {str(value): label for value, label in i.value_labels} for i in inputs if i.value_labels}


# -- the built-in model ----------------------------------------------------------------------------


def from_param(param: Param) -> ModelInput:
    """A parameter of the built-in table as a model input: an integer is a `number` with `step: 1`, a value
    the API rounds to a multiple has that step, a pair is `ifDefined` on each side."""
    step: float | None = 1 if param.kind == "integer" else None
    if param.multiple_of:
        step = param.multiple_of
    if param.required:
        required = Requirement(always=True)
    elif param.paired_with:
        message = f"{param.name} must be given together with {param.paired_with}"
        required = Requirement(if_defined=((param.paired_with, message),))
    else:
        required = Requirement()
    return ModelInput(
        name=param.name,
        type="number" if param.kind == "integer" else param.kind,
        description=param.description,
        default=param.default,
        minimum=param.minimum,
        maximum=param.maximum,
        step=step,
        allowed_values=param.choices,
        kind=BUILTIN_FILE_KINDS.get(param.name, "video") if param.kind == "file" else None,
        cost_impact=param.name in BUILTIN_COST_INPUTS,
        required=required,
    )


def builtin_schema(params: Mapping[str, Param] = PARAMS) -> ModelSchema:
    """LTX-2 19B video-to-video as a schema, from the parameter table: the default model, fully offline."""
    return ModelSchema(MODEL_ID, BUILTIN_NAME, BUILTIN_CAPABILITIES, tuple(from_param(p) for p in params.values()),
                       builtin=True)
