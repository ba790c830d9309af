"""The LTX-2 19B video-to-video parameter table, as data, and the pieces of messages every check shares.

This module is the single source of truth for the built-in model's parameter names, types, ranges, allowed
values and defaults: `schema.builtin_schema` writes it as a model schema, which the schema engine
(`schema_check`) checks manifests and requests against; `plan`, the emulator and the report read it too.
It is pure: no I/O, no asyncio.
"""

from __future__ import annotations

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
