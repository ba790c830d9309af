"""The parameter table and its checks (`pipeline.manifest.params`): one value, a whole request, suggestions, defaults."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pipeline.manifest.params import (
    FILE_PARAMS,
    MODEL_ID,
    PARAMS,
    SEED_LIMIT,
    VALUE_PARAMS,
    check_params,
    check_value,
    complete,
    suggest,
)


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
        ("resolution", "4k", None, "is not one of auto, 720p, 1080p, 1440p, 2160p", None),
        ("aspectRatio", "16:9", "16:9", None, None),
        ("audioSource", 1, None, "must be a string", None),
        ("prompt", "a cat", "a cat", None, None),
        ("prompt", "   ", None, "must not be empty", None),
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
    got, got_error, got_warning = check_value(PARAMS[name], value)
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
        ({"prompt": "a"}, {"files": False}, [], []),
        ({"prompt": "a", "video": "asset_v"}, {"files": False}, [("video", "unknown parameter 'video'")], []),
        ({"numInferenceSteps": 3}, {"require": False}, [], []),
        ({"prompt": "a", "video": "asset_v", "videoStrenght": 1}, {},
         [("videoStrenght", "did you mean 'videoStrength'?")], []),
        ({"prompt": "a", "video": "asset_v", "width": 1280}, {}, [("width", "together with 'height'")], []),
        ({"prompt": "a", "video": "asset_v", "height": 768}, {}, [("height", "together with 'width'")], []),
        ({"prompt": "a", "video": "asset_v", "width": 1280, "height": 768}, {}, [], []),
        ({"prompt": "a", "video": "asset_v", "width": 1000, "height": 768}, {}, [], [("width", "rounds it to 1024")]),
        ({"prompt": "a", "video": "asset_v", "conditioningVideo": "asset_c"}, {}, [],
         [("conditioningVideo", "modality is 'none'")]),
        ({"prompt": "a", "video": "asset_v", "conditioningVideo": "asset_c", "modality": "depth"}, {}, [], []),
        ({"prompt": "a", "video": "asset_v", "duration": None}, {}, [], []),
        ({"prompt": None, "video": "asset_v"}, {}, [("prompt", "must be a string, not null")], []),
    ],
)
def test_check_params(params: dict[str, Any], kwargs: dict[str, bool], errors: list[tuple[str, str]],
                      warnings: list[tuple[str, str]]) -> None:
    """A whole request: unknown names with suggestions, required ones, width/height pairs, warnings."""
    checked = check_params(params, **kwargs)
    assert [name for name, _ in checked.errors] == [name for name, _ in errors]
    for (_, got), (_, want) in zip(checked.errors, errors):
        assert want in got
    assert [name for name, _ in checked.warnings] == [name for name, _ in warnings]
    for (_, got), (_, want) in zip(checked.warnings, warnings):
        assert want in got
    assert checked.ok == (not errors)


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


def test_complete_fills_defaults_and_sorts() -> None:
    """complete() adds every value default, drops None values, keeps given values and sorts by name."""
    full = complete({"prompt": "a", "videoStrength": 0.5, "duration": None})
    assert list(full) == sorted(full)
    assert full["videoStrength"] == 0.5 and full["prompt"] == "a" and "duration" not in full
    for param in PARAMS.values():
        if param.default is not None and param.name != "videoStrength":
            assert full[param.name] == param.default
    assert not set(FILE_PARAMS) & set(full)


def test_table_shape() -> None:
    """The table is the API notes' list: 22 parameters, 3 files, defaults inside their own ranges."""
    assert len(PARAMS) == 22 and FILE_PARAMS == ("video", "image", "conditioningVideo")
    assert set(VALUE_PARAMS) | set(FILE_PARAMS) == set(PARAMS)
    assert MODEL_ID == "model_ltx-2-19b-video-to-video"
    for param in PARAMS.values():
        if param.default is not None:
            _, error, _ = check_value(param, param.default)
            assert error is None, param.name
