"""Any model's schema (`pipeline.manifest.schema`, `schema_check`): parsing every `required` form, the built-in
model as a schema, and the checks of one job's parameters (types, ranges, steps, sentinels, array counts,
required rules, unknown names), every problem at once."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pipeline.emulator.catalog import LTX23_V2V, RETAKE, SEEDANCE
from pipeline.manifest import params as table
from pipeline.manifest.schema import (
    Condition,
    ModelInput,
    ModelSchema,
    Requirement,
    SchemaError,
    builtin_schema,
    input_json,
    parse_input,
    parse_model,
    parse_required,
    required_json,
)
from pipeline.manifest.schema_check import check_file, check_params, describe_allowed, describe_range


def errors_of(schema: ModelSchema, body: dict[str, Any], **kwargs: Any) -> dict[str, str]:
    checked = check_params(schema, body, **kwargs)
    return dict(checked.errors)


# -- parsing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    (None, Requirement()),
    (True, Requirement(always=True)),
    (False, Requirement()),
    ("yes", Requirement()),
    ({"always": True}, Requirement(always=True)),
    ({"always": "true"}, Requirement()),
    ({"ifDefined": {"lastFrameImage": {"message": "A first frame must be provided if a last frame is set."}}},
     Requirement(if_defined=(("lastFrameImage", "A first frame must be provided if a last frame is set."),))),
    ({"ifDefined": {"mask": "a mask needs me"}}, Requirement(if_defined=(("mask", "a mask needs me"),))),
    ({"ifDefined": {"mask": {}}}, Requirement(if_defined=(("mask", None),))),
    ({"ifDefined": ["a", "", 3]}, Requirement(if_defined=(("a", None),))),
    ({"ifNotDefined": {"prompt": {"message": "give a prompt or me"}, "image": {}}},
     Requirement(if_not_defined=(("prompt", "give a prompt or me"), ("image", None)))),
    ({"conditional": {"values": {"modality": ["canny", "depth"]}, "operator": "or"}},
     Requirement(conditions=(Condition((("modality", ("canny", "depth")),), "or"),))),
    ({"conditional": {"values": {"mode": "replace_audio", "fps": [24]}}},
     Requirement(conditions=(Condition((("mode", ("replace_audio",)), ("fps", (24,))), "and"),))),
    ({"conditionalValues": {"modality": ["pose"]}},
     Requirement(conditions=(Condition((("modality", ("pose",)),)),))),
    ({"conditionalValues": {"values": {"modality": ["pose"]}, "operator": "or", "message": "pose needs me"}},
     Requirement(conditions=(Condition((("modality", ("pose",)),), "or", "pose needs me"),))),
    ({"conditionalValues": [{"a": [1]}, {"b": [2]}]},
     Requirement(conditions=(Condition((("a", (1,)),)), Condition((("b", (2,)),))))),
    ({"conditional": {"values": "nonsense"}}, Requirement()),
])
def test_every_required_form_is_read(raw: Any, expected: Requirement) -> None:
    """`required` as a boolean or an object: always, ifDefined/ifNotDefined with or without messages,
    conditional and conditionalValues; what is not one of them means "not required"."""
    assert parse_required(raw) == expected


def test_seedance_record_is_read_as_the_plugin_captured_it() -> None:
    """The captured Seedance 2.0 record: file arrays with their kind and item count, the -1 sentinel labelled
    "Auto", `image` required when `lastFrameImage` is set."""
    schema = parse_model({"model": SEEDANCE})
    assert schema.model_id == "model_bytedance-seedance-2-0" and schema.capabilities == ("txt2video", "img2video",
                                                                                            "video2video")
    videos, duration, image = schema.get("referenceVideos"), schema.get("duration"), schema.get("image")
    assert videos is not None and duration is not None and image is not None
    assert (videos.type, videos.kind, videos.max_length, videos.is_array, videos.item_type) == (
        "file_array", "video", 3, True, "file")
    assert duration.allowed_values[0] == -1 and duration.default == -1 and duration.label_of(-1) == "Auto"
    assert image.required.if_defined == (("lastFrameImage", "A first frame must be provided if a last frame is set."),)
    assert describe_allowed(duration) == "-1 (Auto), 4..15"
    assert describe_allowed(schema.get("aspectRatio")) == "'16:9', '4:3', '1:1', '3:4', '9:16', '21:9', 'adaptive' (Auto)"


@pytest.mark.parametrize("data", [None, [], {"model": {}}, {"model": {"id": ""}}, {"id": 3}, "model_x"])
def test_a_record_without_a_model_id_is_refused(data: Any) -> None:
    """No model object with an id: SchemaError, not a half-read schema."""
    with pytest.raises(SchemaError):
        parse_model(data)


def test_malformed_inputs_are_skipped_or_read_as_absent() -> None:
    """An input without a name is skipped (and a repeated name), fields of the wrong type are absent."""
    schema = parse_model({"id": "m", "inputs": [
        {"type": "string"}, "junk", {"name": "a", "type": "number", "min": "0", "max": math.inf, "step": -1,
                                     "maxLength": 2.5, "allowedValues": "x", "costImpact": "yes"},
        {"name": "a", "type": "boolean"}]})
    assert schema.names == ("a",)
    item = schema.inputs[0]
    assert (item.type, item.minimum, item.maximum, item.step, item.max_length, item.allowed_values,
            item.cost_impact) == ("number", None, None, None, None, (), False)


def test_an_input_written_back_reads_the_same() -> None:
    """input_json then parse_input is the identity for every input of the served models."""
    for record in (LTX23_V2V, RETAKE, SEEDANCE):
        for item in parse_model(record).inputs:
            assert parse_input(input_json(item)) == ModelInput(**{**_fields(item), "value_labels": ()})
    for required in (Requirement(always=True), Requirement(if_defined=(("a", "m"),), if_not_defined=(("b", None),)),
                     Requirement(conditions=(Condition((("a", (1, 2)),), "or"),))):
        assert parse_required(required_json(required)) == required


def _fields(item: ModelInput) -> dict[str, Any]:
    return {name: getattr(item, name) for name in ModelInput.__slots__}


# -- the built-in model ----------------------------------------------------------------------------


def test_builtin_schema_is_the_parameter_table() -> None:
    """Every parameter of the table is an input with its type (integers: number, step 1), range, values,
    default, file kind and requirement; the width/height pair requires each other."""
    schema = builtin_schema()
    assert schema.builtin and schema.model_id == table.MODEL_ID and schema.names == tuple(table.PARAMS)
    steps = schema.get("numInferenceSteps")
    assert steps is not None and (steps.type, steps.step, steps.minimum, steps.maximum, steps.default) == (
        "number", 1, 1, 100, 40)
    assert schema.get("prompt").required.always and schema.get("video").required.always  # type: ignore[union-attr]
    assert schema.get("width").required.if_defined[0][0] == "height"  # type: ignore[union-attr]
    assert (schema.get("video").kind, schema.get("image").kind) == ("video", "image")  # type: ignore[union-attr]
    assert schema.defaults() == {n: p.default for n, p in table.PARAMS.items()
                                 if p.kind != "file" and p.default is not None}


# -- checks ----------------------------------------------------------------------------------------

SEEDANCE_SCHEMA = parse_model(SEEDANCE)
LTX23_SCHEMA = parse_model(LTX23_V2V)
RETAKE_SCHEMA = parse_model(RETAKE)


@pytest.mark.parametrize(("value", "error"), [
    (-1, None), (4, None), (15, None), (5.0, None),
    (3, "3 is not one of -1 (Auto), 4..15"), (16, "not one of"), (0, "not one of"), (-2, "not one of"),
    (4.5, "not one of"), ("5", "must be a number, not the string '5'"), (True, "must be a number, not a boolean"),
    (math.nan, "finite"),
])
def test_allowed_values_with_a_sentinel(value: Any, error: str | None) -> None:
    """Seedance's duration: -1 (Auto) and 4..15 only; 5.0 is sent as 5; the error lists the values."""
    checked = check_params(SEEDANCE_SCHEMA, {"duration": value})
    assert (dict(checked.errors).get("duration") is None) == (error is None), checked.errors
    if error:
        assert error in dict(checked.errors)["duration"]
    else:
        assert checked.values["duration"] == value and type(checked.values["duration"]) is int


@pytest.mark.parametrize(("videos", "errors"), [
    (["asset_a"], {}),
    (["asset_a", "asset_b", "asset_c"], {}),
    (["asset_a", "asset_b", "asset_c", "asset_d"], {"referenceVideos": "must have at most 3 items, not 4"}),
    ([], {}),
    ("asset_a", {"referenceVideos": "must be a list, not the string 'asset_a'"}),
    (["asset_a", "clip.mp4", 3], {"referenceVideos[1]": "must be an asset id (asset_...), not 'clip.mp4'",
                                  "referenceVideos[2]": "must be a string, not the number 3"}),
])
def test_array_item_counts_and_items(videos: Any, errors: dict[str, str]) -> None:
    """A file_array holds at most maxLength items, each an asset id (an item's problem names its index)."""
    assert errors_of(SEEDANCE_SCHEMA, {"referenceVideos": videos}) == errors


def test_array_minimum_count_and_item_rules() -> None:
    """minLength bounds the item count from below; a string_array's items are among allowedValues; a
    number_array's items within min..max; paths are accepted as files with asset_ids=False."""
    schema = parse_model({"id": "m", "inputs": [
        {"name": "tags", "type": "string_array", "minLength": 2, "allowedValues": ["a", "b", "c"]},
        {"name": "scales", "type": "number_array", "min": 0, "max": 2, "maxLength": 2},
        {"name": "frames", "type": "file_array", "kind": "image", "minLength": 1}]})
    assert errors_of(schema, {"tags": ["a"], "scales": [0.5, 3], "frames": ["x.png"]}) == {
        "tags": "must have at least 2 items, not 1", "scales[1]": "3 is out of range 0..2",
        "frames[0]": "must be an asset id (asset_...), not 'x.png'"}
    assert errors_of(schema, {"tags": ["a", "d"], "frames": ["x.png"]}, asset_ids=False) == {
        "tags[1]": "'d' is not one of 'a', 'b', 'c'"}


RULES = parse_model({"id": "m", "inputs": [
    {"name": "prompt", "type": "string", "required": {"always": True}},
    {"name": "image", "type": "file", "kind": "image",
     "required": {"ifDefined": {"lastFrameImage": {"message": "A first frame must be provided if a last frame is set."}}}},
    {"name": "lastFrameImage", "type": "file", "kind": "image"},
    {"name": "mesh", "type": "file", "kind": "3d", "required": {"ifNotDefined": {"reference": {}, "sketch": {}}}},
    {"name": "reference", "type": "file", "kind": "image"},
    {"name": "sketch", "type": "file", "kind": "image"},
    {"name": "modality", "type": "string", "allowedValues": ["none", "canny", "pose"]},
    {"name": "fps", "type": "number"},
    {"name": "control", "type": "file", "kind": "video",
     "required": {"conditional": {"values": {"modality": ["canny", "pose"]}, "operator": "or"}}},
    {"name": "track", "type": "file", "kind": "video",
     "required": {"conditionalValues": {"modality": ["pose"], "fps": [24, 25]}}},
    {"name": "mask", "type": "file", "kind": "image", "required": True},
]})
BASE = {"prompt": "p", "reference": "asset_r", "mask": "asset_m"}


@pytest.mark.parametrize(("body", "errors"), [
    (BASE, {}),
    ({**BASE, "prompt": None}, {"prompt": "is required"}),
    ({**BASE, "prompt": "  "}, {"prompt": "must not be empty"}),
    ({k: v for k, v in BASE.items() if k != "mask"}, {"mask": "is required"}),
    ({**BASE, "lastFrameImage": "asset_l"}, {"image": "A first frame must be provided if a last frame is set."}),
    ({**BASE, "lastFrameImage": "asset_l", "image": "asset_i"}, {}),
    ({**BASE, "image": "asset_i"}, {}),
    ({"prompt": "p", "mask": "asset_m"}, {"mesh": "is required unless one of 'reference', 'sketch' is set"}),
    ({"prompt": "p", "mask": "asset_m", "sketch": "asset_s"}, {}),
    ({"prompt": "p", "mask": "asset_m", "mesh": "asset_3"}, {}),
    ({**BASE, "modality": "canny"}, {"control": "is required when modality is 'canny' or 'pose'"}),
    ({**BASE, "modality": "none"}, {}),
    ({**BASE, "modality": "pose", "control": "asset_c"}, {}),
    ({**BASE, "modality": "pose", "control": "asset_c", "fps": 24},
     {"track": "is required when modality is 'pose' and fps is 24 or 25"}),
    ({**BASE, "modality": "pose", "control": "asset_c", "fps": "24"}, {"fps": "must be a number, not the string '24'"}),
    ({**BASE, "modality": "pose", "control": "asset_c", "fps": 30}, {}),
    ({**BASE, "modality": "pose", "control": "asset_c", "fps": 25, "track": "asset_t"}, {}),
    ({"lastFrameImage": "asset_l", "modality": "canny"},
     {"prompt": "is required", "mask": "is required", "image": "A first frame must be provided if a last frame is set.",
      "mesh": "is required unless one of 'reference', 'sketch' is set",
      "control": "is required when modality is 'canny' or 'pose'"}),
])
def test_every_required_rule(body: dict[str, Any], errors: dict[str, str]) -> None:
    """always, a bare `true`, ifDefined (the schema's message), ifNotDefined as an either/or group, conditional
    with `or`, conditionalValues with `and`: each reported by name, all at once."""
    assert errors_of(RULES, body) == errors


def test_required_rules_see_inputs_given_elsewhere_and_can_be_skipped() -> None:
    """`present` names inputs given outside the body (files as paths) for the rules; require=False skips them."""
    assert errors_of(RULES, {"prompt": "p"}, present={"mask", "sketch"}) == {}
    assert errors_of(RULES, {"lastFrameImage": "asset_l"}, require=False) == {}


def test_unknown_names_and_bad_values_all_at_once() -> None:
    """LTX-2.3 22B has no cameraMotion: an unknown name (with a did-you-mean where one is close) and an
    out-of-range conditioningAttentionStrength are both reported in one pass."""
    errors = errors_of(LTX23_SCHEMA, {"prompt": "p", "video": "asset_v", "cameraMotion": "static",
                                      "conditioningAttentionStrength": 1.5, "videoStrenght": 0.5})
    assert errors.pop("cameraMotion").startswith("unknown parameter 'cameraMotion'")
    assert errors == {"conditioningAttentionStrength": "1.5 is out of range 0..1",
                      "videoStrenght": "unknown parameter 'videoStrenght' (did you mean 'videoStrength'?)"}


@pytest.mark.parametrize(("name", "value", "normal", "error", "warning"), [
    ("width", 1000, 1024, None, "1000 is not a multiple of 64; the API rounds it to 1024"),
    ("width", 1024.0, 1024, None, None),
    ("width", 4200, None, "4200 is out of range 64..4096", None),
    ("seed", 7.0, 7, None, None),
    ("seed", 7.5, None, "must be a whole number, not 7.5", None),
    ("seed", -1, None, "-1 is below the minimum 0", None),
    ("fps", 24.5, 24.5, None, None),
    ("modality", "motion_track_control", "motion_track_control", None, None),
    ("modality", "canny2", None, "'canny2' is not one of 'none', 'canny', 'depth', 'pose', 'detailer', "
                                  "'motion_track_control' (did you mean 'canny'?)", None),
    ("enhancePrompt", "yes", None, "must be true or false, not the string 'yes'", None),
    ("prompt", 3, None, "must be a string, not the number 3", None),
    ("prompt", "a\x00b", None, "must not contain NUL characters", None),
])
def test_one_value_against_its_input(name: str, value: Any, normal: Any, error: str | None,
                                     warning: str | None) -> None:
    """Types, whole steps, larger steps rounded with a warning, ranges with one or two bounds, allowed values
    with a did-you-mean."""
    body = {"prompt": "p", "video": "asset_v", "width": 640, "height": 640, name: value}
    checked = check_params(LTX23_SCHEMA, body)
    assert dict(checked.errors).get(name) == error and dict(checked.warnings).get(name) == warning
    if error is None:
        assert checked.values[name] == normal and type(checked.values[name]) is type(normal)


def test_string_lengths_and_retake_ranges() -> None:
    """A string's maxLength counts characters; Retake's duration is 2..16 and startTime has only a minimum."""
    assert errors_of(SEEDANCE_SCHEMA, {"prompt": "x" * 6001}) == {"prompt": "must be at most 6000 characters, not 6001"}
    assert errors_of(RETAKE_SCHEMA, {"prompt": "p", "video": "asset_v", "duration": 17, "startTime": -1,
                                     "mode": "replace_audio"}) == {"duration": "17 is out of range 2..16",
                                                                   "startTime": "-1 is below the minimum 0"}
    assert errors_of(RETAKE_SCHEMA, {"mode": "replace_video"}) == {"video": "is required", "prompt": "is required"}


@pytest.mark.parametrize(("kind", "size", "duration", "problems"), [
    ("video", 10, 5.0, []),
    ("image", None, None, ["is an image, not a video"]),
    ("video", 2001, None, ["is 2,001 bytes, more than the 2,000 allowed"]),
    ("video", None, 16.5, ["lasts 16.5 s, more than the 15 s allowed"]),
    ("video", None, 1, ["lasts 1 s, less than the 2 s required"]),
    (None, None, None, []),
])
def test_a_file_against_its_input(kind: str | None, size: int | None, duration: float | None,
                                  problems: list[str]) -> None:
    """A file's kind, size and length against the input's kind, maxSize and min/maxDuration."""
    item = ModelInput("clip", "file", kind="video", max_size_bytes=2000, min_duration_s=2, max_duration_s=15)
    assert check_file(item, kind=kind, size_bytes=size, duration_s=duration) == problems


def test_ranges_in_words() -> None:
    """How the models table shows a range: both bounds, one, and the step."""
    assert describe_range(LTX23_SCHEMA.get("width")) == "64..4096 step 64"  # type: ignore[arg-type]
    assert describe_range(LTX23_SCHEMA.get("seed")) == ">= 0 whole"  # type: ignore[arg-type]
    assert describe_range(RETAKE_SCHEMA.get("duration")) == "2..16"  # type: ignore[arg-type]
    assert describe_range(ModelInput("x", "number", maximum=3)) == "<= 3"
