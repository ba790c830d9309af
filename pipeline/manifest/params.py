"""The LTX-2 19B video-to-video parameter table, as data, and the checks that use it.

This module is the single source of truth for parameter names, types, ranges,
allowed values and defaults: the manifest validation, `plan`, the emulator and
the report all read it. It is pure: no I/O, no asyncio.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pipeline.errors import did_you_mean

MODEL_ID = "model_ltx-2-19b-video-to-video"
DEFAULT_BASE_URL = "https://api.cloud.scenario.com"

Kind = Literal["string", "number", "integer", "boolean", "file"]

MAX_SEED = 2**32 - 1  # seeds we derive stay in this range; the API takes any integer >= 0
SEED_LIMIT = 2**53 - 1  # the largest integer JSON carries exactly


@dataclass(frozen=True, slots=True)
class Param:
    """One model parameter: its wire name, kind, default and the values it admits."""

    name: str
    kind: Kind
    description: str
    default: Any = None  # None: the server decides (e.g. "match input")
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    required: bool = False
    multiple_of: int | None = None  # rounded to this, with a warning, as the API does
    paired_with: str | None = None  # must be given together with this parameter


def _table(*params: Param) -> dict[str, Param]:
    return {p.name: p for p in params}


PARAMS: dict[str, Param] = _table(
    Param("prompt", "string", "Text prompt for video generation", required=True),
    Param("video", "file", "Reference video asset: the conditioning source", required=True),
    Param("videoStrength", "number", "Reference video conditioning strength", 1, 0, 1),
    Param("image", "file", "Optional first-frame image asset"),
    Param("imageStrength", "number", "First-frame image conditioning strength", 1, 0, 1),
    Param("negativePrompt", "string", "What to avoid in the generation"),
    Param("resolution", "string", "Video resolution", "auto",
          choices=("auto", "720p", "1080p", "1440p", "2160p")),
    Param("width", "number", "Explicit width in pixels (with height)", None, 64, 4096,
          multiple_of=64, paired_with="height"),
    Param("height", "number", "Explicit height in pixels (with width)", None, 64, 4096,
          multiple_of=64, paired_with="width"),
    Param("cameraMotion", "string", "Camera movement type", "none",
          choices=("none", "static", "dolly_in", "dolly_out", "dolly_left", "dolly_right",
                   "jib_up", "jib_down")),
    Param("cameraMotionStrength", "number", "Strength of camera motion", 1, 0, 2),
    Param("duration", "number", "Output duration in seconds (empty: match input)", None, 3, 20),
    Param("aspectRatio", "string", "Video aspect ratio", "auto",
          choices=("auto", "21:9", "16:9", "4:3", "1:1", "3:4", "9:16")),
    Param("fps", "number", "Output frame rate (empty: match input)", None, 1, 60),
    Param("audioSource", "string", "Audio: copy from input, generate new, or none", "original",
          choices=("original", "generate", "none")),
    Param("modality", "string", "IC-LoRA control", "none",
          choices=("none", "canny", "depth", "pose", "detailer")),
    Param("modalityStrength", "number", "Strength of the IC-LoRA modality", 1, 0, 2),
    Param("conditioningVideo", "file",
          "Pre-processed canny/depth/pose video asset; overrides video as the conditioning source"),
    Param("numInferenceSteps", "integer", "Number of inference steps", 40, 1, 100),
    Param("guidanceScale", "number", "Classifier-free guidance scale", 3, 1, 20),
    Param("enhancePrompt", "boolean", "Use Gemma to enhance the prompt", False),
    Param("seed", "integer", "Random seed for reproducibility", None, 0, SEED_LIMIT),
)

FILE_PARAMS: tuple[str, ...] = tuple(p.name for p in PARAMS.values() if p.kind == "file")
VALUE_PARAMS: tuple[str, ...] = tuple(p.name for p in PARAMS.values() if p.kind != "file")


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of checking parameters: normalised values, errors and warnings, each keyed by name."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def suggest(name: str, candidates: tuple[str, ...] | list[str] | None = None) -> str | None:
    """The closest parameter (or other `candidates`) to a misspelt name, or None."""
    return did_you_mean(name, list(candidates if candidates is not None else PARAMS))


def unknown_message(name: str, candidates: tuple[str, ...] | list[str] | None = None) -> str:
    """The error text for an unknown key, with a suggestion when one is close."""
    hint = suggest(name, candidates)
    return f"unknown parameter {name!r}" + (f" (did you mean {hint!r}?)" if hint else "")


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def check_value(param: Param, value: Any) -> tuple[Any, str | None, str | None]:
    """Check one value against its parameter: (normalised value, error or None, warning or None)."""
    kind = param.kind
    if kind == "boolean":
        if not isinstance(value, bool):
            return value, f"must be true or false, not {describe_value(value)}", None
        return value, None, None
    if kind in ("string", "file"):
        if not isinstance(value, str):
            return value, f"must be a string, not {describe_value(value)}", None
        if kind == "file" and not value.startswith("asset_"):
            return value, f"must be an asset id (asset_...), not {value!r}", None
        if param.choices and value not in param.choices:
            hint = suggest(value, param.choices)
            extra = f" (did you mean {hint!r}?)" if hint else ""
            return value, f"{value!r} is not one of {', '.join(param.choices)}{extra}", None
        if param.required and not value.strip():
            return value, "must not be empty", None
        if "\x00" in value:
            return value, "must not contain NUL characters", None
        return value, None, None
    # number / integer
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value, f"must be a number, not {describe_value(value)}", None
    if isinstance(value, float) and not math.isfinite(value):
        return value, f"must be a finite number, not {value}", None
    if kind == "integer":
        if isinstance(value, float):
            if not value.is_integer():
                return value, f"must be a whole number, not {value}", None
            value = int(value)
    warning = None
    if param.multiple_of:
        rounded = max(param.multiple_of, int(round(value / param.multiple_of)) * param.multiple_of)
        if rounded != value:
            warning = f"{_fmt(value)} is not a multiple of {param.multiple_of}; the API rounds it to {rounded}"
            if param.minimum is not None and param.maximum is not None and param.minimum <= value <= param.maximum:
                value = min(rounded, int(param.maximum))
        else:
            value = int(value)
    if param.minimum is not None and value < param.minimum or param.maximum is not None and value > param.maximum:
        return value, f"{_fmt(value)} is out of range {_fmt(param.minimum or 0)}..{_fmt(param.maximum or 0)}", None
    return value, None, warning


def check_params(
    params: Mapping[str, Any],
    *,
    files: bool = True,
    require: bool = True,
) -> Checked:
    """Check a whole parameter set (a request body): names, values, required ones and pairs.

    `files=False` checks only value parameters (the manifest carries files as `inputs`);
    `require=False` skips required/pair checks (for partial layers such as `defaults`).
    """
    result = Checked()
    allowed = PARAMS if files else {n: PARAMS[n] for n in VALUE_PARAMS}
    for name, value in params.items():
        param = allowed.get(name) if isinstance(name, str) else None
        if param is None:
            result.errors.append((str(name), unknown_message(str(name), list(allowed))))
            continue
        if value is None and not param.required:
            continue  # explicit null: leave it to the server (e.g. "match input")
        value, error, warning = check_value(param, value)
        if error:
            result.errors.append((name, error))
            continue
        if warning:
            result.warnings.append((name, warning))
        result.values[name] = value
    if require:
        for param in allowed.values():
            if param.required and param.name not in params:
                result.errors.append((param.name, "is required"))
            if param.paired_with and (param.name in result.values) != (param.paired_with in params):
                if param.name in result.values:
                    result.errors.append((param.name, f"must be given together with {param.paired_with!r}"))
        if result.values.get("conditioningVideo") and result.values.get("modality", "none") == "none":
            result.warnings.append(
                ("conditioningVideo", "is given but modality is 'none'; set the matching modality"))
    return result


def complete(values: Mapping[str, Any]) -> dict[str, Any]:
    """The full request parameters: every default filled in, then the given values (sorted by name)."""
    full = {p.name: p.default for p in PARAMS.values() if p.kind != "file" and p.default is not None}
    full.update({k: v for k, v in values.items() if v is not None})
    return dict(sorted(full.items()))


def describe_value(value: Any) -> str:
    """A value as a message names it: `null`, `a boolean`, `the number 3`, `the string 'x'`, `a list`..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
