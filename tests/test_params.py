"""The parameter table (`pipeline.manifest.params`) and the built-in model's checks, made by the schema engine
(`schema_check` over `builtin_schema()`): one value, a whole request, suggestions, defaults inside their ranges."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pipeline.manifest.params import FILE_PARAMS, MODEL_ID, PARAMS, SEED_LIMIT, VALUE_PARAMS, suggest
from pipeline.manifest.schema import builtin_schema
from pipeline.manifest.schema_check import check_params, check_value

SCHEMA = builtin_schema()


@pytest.mark.parametrize(
    ("name", "value", "normalised", "error", "warning"),
    [
        ("videoStrength", 0.5, 0.5, None, None),
        ("videoStrength", 0, 0, None, None),
        ("videoStrength", 1, 1, None, None),
        ("videoStrength", 1.01, None, "out of range 0..1", None),
        ("videoStrength", -0.1, None, "out of range 0..1", None),
        ("videoStrength", "0.5", None, "must be a number, not the string '0.5'", None),
        ("videoStrength", True, None, "must be a number, not a boolean", None),
        ("videoStrength", math.nan, None, "finite", None),
        ("videoStrength", math.inf, None, "finite", None),
        ("cameraMotionStrength", 2, 2, None, None),
        ("cameraMotionStrength", 2.5, None, "out of range 0..2", None),
        ("numInferenceSteps", 40, 40, None, None),
        ("numInferenceSteps", 40.0, 40, None, None),
        ("numInferenceSteps", 2.5, None, "whole number", None),
        ("numInferenceSteps", 0, None, "out of range 1..100", None),
        ("numInferenceSteps", 101, None, "out of range 1..100", None),
        ("guidanceScale", 20, 20, None, None),
        ("guidanceScale", 0.5, None, "out of range 1..20", None),
        ("duration", 3, 3, None, None),
        ("duration", 21, None, "out of range 3..20", None),
        ("fps", 60, 60, None, None),
        ("fps", 0, None, "out of range 1..60", None),
        ("width", 1280, 1280, None, None),
        ("width", 1000, 1024, None, "rounds it to 1024"),
        ("width", 4095, 4096, None, "rounds it to 4096"),
        ("height", 64, 64, None, None),
        ("height", 70.5, 64, None, "rounds it to 64"),
        ("height", 4160, None, "out of range 64..4096", None),
        ("height", 30, None, "out of range 64..4096", None),
        ("modality", "depth", "depth", None, None),
        ("modality", "Depth", None, "did you mean 'depth'?", None),
        ("cameraMotion", "dolly-in", None, "did you mean 'dolly_in'?", None),
        ("resolution", "4k", None, "'4k' is not one of 'auto', '720p', '1080p', '1440p', '2160p'", None),
        ("aspectRatio", "16:9", "16:9", None, None),
        ("audioSource", 1, None, "must be a string", None),
        ("prompt", "a cat", "a cat", None, None),
        ("prompt", "a\x00b", None, "NUL", None),
        ("negativePrompt", "", "", None, None),
        ("enhancePrompt", True, True, None, None),
        ("enhancePrompt", "true", None, "must be true or false", None),
        ("enhancePrompt", 1, None, "must be true or false", None),
        ("video", "asset_abc", "asset_abc", None, None),
        ("video", "clip.mp4", None, "must be an asset id", None),
        ("seed", 0, 0, None, None),
        ("seed", SEED_LIMIT, SEED_LIMIT, None, None),
        ("seed", SEED_LIMIT + 1, None, "out of range", None),
        ("seed", -1, None, "out of range", None),
        ("seed", 3.0, 3, None, None),
    ],
)
def test_check_value(name: str, value: Any, normalised: Any, error: str | None, warning: str | None) -> None:
    """One value against its parameter: normalised value, error text and warning text."""
    item = SCHEMA.get(name)
    assert item is not None
    got, errors, warnings = check_value(item, value)
    got_error, got_warning = (errors[0][1] if errors else None), (warnings[0][1] if warnings else None)
    if error is None:
        assert got_error is None and got == normalised and type(got) is type(normalised)
    else:
        assert got_error is not None and error in got_error
    assert (got_warning is None) == (warning is None)
    if warning:
        assert warning in (got_warning or "")


@pytest.mark.parametrize(
    ("params", "kwargs", "errors", "warnings"),
    [
        ({"prompt": "a", "video": "asset_v"}, {}, [], []),
        ({"video": "asset_v"}, {}, [("prompt", "is required")], []),
        ({"prompt": "a"}, {}, [("video", "is required")], []),
        ({"prompt": "a"}, {"present": ("video",)}, [], []),  # the file given as a path, elsewhere
        ({"numInferenceSteps": 3}, {"require": False}, [], []),
        ({"prompt": "a", "video": "asset_v", "videoStrenght": 1}, {},
         [("videoStrenght", "unknown parameter 'videoStrenght' (did you mean 'videoStrength'?)")], []),
        ({"prompt": "a", "video": "asset_v", "width": 1280}, {}, [("height", "must be given together with width")], []),
        ({"prompt": "a", "video": "asset_v", "height": 768}, {}, [("width", "must be given together with height")], []),
        ({"prompt": "a", "video": "asset_v", "width": 1280, "height": 768}, {}, [], []),
        ({"prompt": "a", "video": "asset_v", "width": 1000, "height": 768}, {}, [], [("width", "rounds it to 1024")]),
        ({"prompt": "a", "video": "asset_v", "conditioningVideo": "asset_c", "modality": "depth"}, {}, [], []),
        ({"prompt": "a", "video": "asset_v", "duration": None}, {}, [], []),
        ({"prompt": None, "video": "asset_v"}, {}, [("prompt", "is required")], []),
        ({"prompt": "   ", "video": "asset_v"}, {}, [("prompt", "must not be empty")], []),
    ],
)
def test_check_params(params: dict[str, Any], kwargs: dict[str, Any], errors: list[tuple[str, str]],
                      warnings: list[tuple[str, str]]) -> None:
    """A whole request: unknown names with suggestions, required ones, width/height pairs, warnings."""
    checked = check_params(SCHEMA, params, **kwargs)
    assert [name for name, _ in checked.errors] == [name for name, _ in errors]
    for (_, got), (_, want) in zip(checked.errors, errors):
        assert want in got
    assert [name for name, _ in checked.warnings] == [name for name, _ in warnings]
    for (_, got), (_, want) in zip(checked.warnings, warnings):
        assert want in got
    assert checked.ok == (not errors)


@pytest.mark.parametrize(("body", "values", "errors"), [
    ({"width": 96, "height": 928}, {"width": 128, "height": 896}, {}),  # ties (1.5, 14.5 steps) to the even step
    ({"width": 160, "height": 224}, {"width": 128, "height": 256}, {}),
    ({"width": 4095.5, "height": 4095.5}, {"width": 4096, "height": 4096}, {}),
    ({"width": 20, "height": 4095.5, "seed": 1e20}, {"height": 4096},
     {"width": "20 is out of range 64..4096", "seed": "100000000000000000000 is out of range 0..9007199254740991"}),
    ({"prompt": " ", "negativePrompt": "", "numInferenceSteps": 40.0, "video": "asset_"},
     {"negativePrompt": "", "numInferenceSteps": 40, "video": "asset_"}, {"prompt": "must not be empty"}),
])
def test_values_sent_for_the_builtin_model(body: dict[str, Any], values: dict[str, Any],
                                           errors: dict[str, str]) -> None:
    """What the built-in model sends for given values (widths and heights rounded to 64 as the API does, ties to
    the even step; whole floats sent as integers) and what it refuses: the cases the table's own check, now
    gone, agreed on with the schema engine."""
    checked = check_params(SCHEMA, {"prompt": "p", "video": "asset_v", **body})
    assert dict(checked.errors) == errors
    sent = {k: v for k, v in checked.values.items() if k not in ("prompt", "video") or k in body}
    assert sent == values and all(type(sent[k]) is type(v) for k, v in values.items())


@pytest.mark.parametrize(
    ("name", "pool", "expected"),
    [
        ("videoStrenght", None, "videoStrength"),
        ("VIDEOSTRENGTH", None, "videoStrength"),
        ("guidance_scale", None, "guidanceScale"),
        ("numInferenceStep", None, "numInferenceSteps"),
        ("negative_prompt", None, "negativePrompt"),
        ("zzz", None, None),
        ("promts", ("name", "prompts", "sweep"), "prompts"),
        ("form", ("count", "from"), "from"),
    ],
)
def test_suggest(name: str, pool: tuple[str, ...] | None, expected: str | None) -> None:
    """The closest known name to a misspelt one, or None when nothing is close."""
    assert suggest(name, pool) == expected


def test_table_shape() -> None:
    """The table is the API notes' list: 22 parameters, 3 files, defaults inside their own ranges."""
    assert len(PARAMS) == 22 and FILE_PARAMS == ("video", "image", "conditioningVideo")
    assert set(VALUE_PARAMS) | set(FILE_PARAMS) == set(PARAMS)
    assert MODEL_ID == "model_ltx-2-19b-video-to-video"
    for param in PARAMS.values():
        item = SCHEMA.get(param.name)
        assert item is not None
        if param.default is not None:
            _, errors, _ = check_value(item, param.default)
            assert not errors, param.name
