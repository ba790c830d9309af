"""Manifests of any model (issue 15), checked against that model's schema: its names, values, `required` rules in
every form, sentinels, array item counts and defaults; files of any input, a list as one value of a `file_array`
input; located problems, all in one pass. The schemas are the emulator's records (the real ones' shape)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from manifest_helpers import hosted_schemas, load_text, problems_of, renamed_builtin

from pipeline.emulator.catalog import GPT_IMAGE_ID, LTX23_V2V_ID, RETAKE_ID, SEEDANCE_ID
from pipeline.errors import Problem
from pipeline.manifest.load import load_manifest
from pipeline.manifest.params import FILE_PARAMS, MODEL_ID, VALUE_PARAMS
from pipeline.manifest.schema import ModelSchema, parse_model
from pipeline.spec import input_identities

SCHEMAS = hosted_schemas()


def custom(*inputs: dict[str, Any], model_id: str = "model_custom") -> dict[str, ModelSchema]:
    """A made-up model with these inputs (and a prompt), as `schemas` for `load_text`."""
    record = {"id": model_id, "inputs": [{"name": "prompt", "type": "string"}, *inputs]}
    return {model_id: parse_model(record)}


def found(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(p.where, p.message) for p in problems]


def test_a_model_s_jobs_carry_its_defaults_and_nothing_of_ltx_19b(tmp_path: Path) -> None:
    """LTX-2.3 22B jobs: its own defaults filled in (conditioningAttentionStrength, enhancePrompt true), a derived
    seed, no LTX-2 19B-only parameter; no warning about the model."""
    manifest = load_text(tmp_path, f"""
        model: {LTX23_V2V_ID}
        inputs: {{video: clip.mp4}}
        prompts: [a dog]
        sweep: {{conditioningAttentionStrength: [0.2, 0.9], modality: [none, motion_track_control]}}
        """, schemas=SCHEMAS)
    jobs = list(manifest.jobs())
    assert manifest.warnings == () and len(jobs) == 4
    assert jobs[0].params["enhancePrompt"] is True and jobs[0].params["videoStrength"] == 1
    assert [j.params["conditioningAttentionStrength"] for j in jobs] == [0.2, 0.2, 0.9, 0.9]
    assert not {"cameraMotion", "numInferenceSteps", "guidanceScale", "negativePrompt"} & set(jobs[0].params)
    assert all(isinstance(j.seed, int) and j.seed >= 0 for j in jobs) and jobs[0].model == LTX23_V2V_ID
    values, files = manifest.parameters
    assert "conditioningAttentionStrength" in values and "cameraMotion" not in values
    assert files == ("video", "image", "conditioningVideo")


def test_ltx_19b_manifest_names_its_table() -> None:
    """The parameters of an LTX-2 19B manifest are its table's, in table order (results.csv's columns)."""
    manifest = load_manifest(Path(__file__).resolve().parent.parent / "samples" / "demo.yaml")
    assert manifest.parameters == (VALUE_PARAMS, FILE_PARAMS) and manifest.models == (MODEL_ID,)


def test_off_schema_names_and_values_in_one_pass(tmp_path: Path) -> None:
    """cameraMotion (LTX-2 19B's, not 22B's) and an out-of-range conditioningAttentionStrength are both reported,
    located, with the model named and where to see its parameters."""
    problems = problems_of(tmp_path, f"""
        model: {LTX23_V2V_ID}
        inputs: {{video: clip.mp4}}
        defaults: {{cameraMotion: dolly_in, guidanceScal: 3}}
        prompts: [a dog]
        sweep: {{conditioningAttentionStrength: [0.5, 1.5]}}
        """, SCHEMAS)
    assert [(p.line, p.where) for p in problems] == [(4, "defaults.cameraMotion"), (4, "defaults.guidanceScal"),
                                                     (6, "sweep.conditioningAttentionStrength[1]")]
    assert "unknown parameter 'cameraMotion' for model_ltx-2-3-22b-video-to-video (LTX-2 19B takes it" \
        in problems[0].message and f"ltx-batch models {LTX23_V2V_ID}" in problems[0].message
    assert "1.5 is out of range 0..1" in problems[2].message


@pytest.mark.parametrize(("text", "where", "words"), [
    # always: a file, the prompt, a value
    ("inputs: {}\nprompts: [a]\n", "", "no video: set inputs.video"),
    ("inputs: {video: clip.mp4}\n", "", "no prompts: set prompts"),
    ("model: model_custom\nprompts: [a]\ninputs: {image: first.png}\n", "",
     "no style: set it under 'defaults', 'sweep' or 'zip' (job 0)"),
    # ifDefined (with the model's own words)
    ("model: model_custom\nprompts: [a]\ninputs: {image: first.png}\ndefaults: {style: x, strength: 0.5}\n",
     "defaults.strength",
     "strength is set without mask (job 0): a mask goes with a strength"),
    # ifNotDefined: either/or
    ("model: model_custom\nprompts: [a]\ndefaults: {style: x}\ninputs: {mask: first.png}\n", "",
     "image is required unless image2 is set (job 0)"),
    # conditional (the SDK's name) and conditionalValues (the notes'), with `or`
    ("model: model_custom\nprompts: [a]\ndefaults: {style: x, mode: inpaint}\ninputs: {image: first.png}\n",
     "defaults.mode", "mask is required when mode is 'inpaint' (job 0)"),
    ("model: model_custom\nprompts: [a]\ndefaults: {style: x, level: 3}\ninputs: {image: first.png}\n",
     "defaults.level", "strength is required when level is 3 or 4 (job 0): say how strong"),
])
def test_every_required_form(tmp_path: Path, text: str, where: str, words: str) -> None:
    """`always`, `ifDefined`, `ifNotDefined`, `conditional` and `conditionalValues` are each enforced on the jobs,
    located where the value that makes an input required is written (else at the batch)."""
    schemas = custom(
        {"name": "style", "type": "string", "required": {"always": True}},
        {"name": "image", "type": "file", "kind": "image", "required": {"ifNotDefined": {"image2": {}}}},
        {"name": "image2", "type": "file", "kind": "image"},
        {"name": "mask", "type": "file", "kind": "image",
         "required": {"ifDefined": {"strength": {"message": "a mask goes with a strength"}},
                      "conditional": {"values": {"mode": ["inpaint"]}}}},
        {"name": "strength", "type": "number", "min": 0, "max": 1,
         "required": {"conditionalValues": {"level": [3, 4], "message": "say how strong"}}},
        {"name": "mode", "type": "string", "allowedValues": ["plain", "inpaint"]},
        {"name": "level", "type": "number", "step": 1},
    )
    problems = problems_of(tmp_path, text, schemas)
    assert any(p.where == where and words in p.message for p in problems), found(problems)
    assert len(problems) == 1, found(problems)


def test_seedance_first_frame_required_by_a_last_frame(tmp_path: Path) -> None:
    """Seedance's `image` `ifDefined: lastFrameImage`: a last frame without a first is refused at the last frame,
    with the model's message; with both it is fine; a prompt is optional there."""
    problems = problems_of(tmp_path, f"model: {SEEDANCE_ID}\ninputs: {{lastFrameImage: first.png}}\n", SCHEMAS)
    assert found(problems) == [("inputs.lastFrameImage", "lastFrameImage is set without image (job 0): "
                                                         "A first frame must be provided if a last frame is set.")]
    manifest = load_text(tmp_path, f"model: {SEEDANCE_ID}\ninputs: {{lastFrameImage: first.png, image: first.png}}\n",
                         schemas=SCHEMAS)
    job = next(manifest.jobs())
    assert "prompt" not in job.params and job.seed is None and {r.param for r in job.inputs} == {"image",
                                                                                                 "lastFrameImage"}


def test_sentinels_in_allowed_values(tmp_path: Path) -> None:
    """Seedance's duration lists -1 ("Auto") beside 4..15: -1 and 15 are sent as written, 3 and 16 refused
    naming the list as the UI shows it."""
    manifest = load_text(tmp_path, f"model: {SEEDANCE_ID}\nprompts: [a]\nsweep: {{duration: [-1, 15]}}\n",
                         schemas=SCHEMAS)
    assert [job.params["duration"] for job in manifest.jobs()] == [-1, 15]
    problems = problems_of(tmp_path, f"model: {SEEDANCE_ID}\nprompts: [a]\nsweep: {{duration: [3, 16]}}\n", SCHEMAS)
    assert found(problems) == [("sweep.duration[0]", "3 is not one of -1 (Auto), 4..15"),
                               ("sweep.duration[1]", "16 is not one of -1 (Auto), 4..15")]


def test_a_file_list_is_one_value_of_a_file_array_input(tmp_path: Path) -> None:
    """`referenceVideos: [a, b]` is one job sending both files in order (every file's hash in the key); a list of
    lists is one job each; the body carries the asset ids as a list."""
    one = load_text(tmp_path, f"model: {SEEDANCE_ID}\nprompts: [a]\ninputs: {{referenceVideos: [clip.mp4, other.mp4]}}\n",
                    schemas=SCHEMAS)
    (job,) = list(one.jobs())
    assert [(r.param, r.index, r.media) for r in job.inputs] == [("referenceVideos", 0, "video"),
                                                                 ("referenceVideos", 1, "video")]
    assert job.body({r.sha256 or "": f"asset_{r.index}" for r in job.inputs})["referenceVideos"] == ["asset_0",
                                                                                                     "asset_1"]
    assert len(input_identities(job.inputs)["referenceVideos"]) == 2 and len(one.input_files()) == 2
    swapped = load_text(tmp_path, f"model: {SEEDANCE_ID}\nprompts: [a]\n"
                                  "inputs: {referenceVideos: [other.mp4, clip.mp4]}\n", "b.yaml", SCHEMAS)
    assert next(swapped.jobs()).key != job.key  # the order of the files is part of the job
    each = load_text(tmp_path, f"model: {SEEDANCE_ID}\nprompts: [a]\n"
                               "inputs: {referenceVideos: [[clip.mp4, other.mp4], [other.mp4]], referenceAudio: asset_v}\n",
                     "c.yaml", SCHEMAS)
    jobs = list(each.jobs())
    assert [len(j.inputs) for j in jobs] == [3, 2]
    assert [j.swept["referenceVideos"] for j in jobs] == ["clip.mp4, other.mp4", "other.mp4"]
    assert jobs[1].body({r.sha256 or "": "asset_x" for r in jobs[1].inputs})["referenceAudio"] == ["asset_v"]
    assert len(each.input_files()) == 2  # each distinct file once, whatever the lists


@pytest.mark.parametrize(("inputs", "where", "words"), [
    ("{referenceVideos: [clip.mp4, other.mp4, clip.mp4, depth.mp4]}", "inputs.referenceVideos",
     "lists 4 files; referenceVideos takes at most 3"),
    ("{referenceVideos: [[clip.mp4], [clip.mp4, other.mp4, clip.mp4, depth.mp4]]}", "inputs.referenceVideos[1]",
     "lists 4 files; referenceVideos takes at most 3"),
    ("{referenceVideos: [clip.mp4, [other.mp4]]}", "inputs.referenceVideos", "mixes files and lists"),
    ("{referenceVideos: [[clip.mp4], []]}", "inputs.referenceVideos[1]", "must list at least one file"),
    ("{referenceVideos: []}", "inputs.referenceVideos", "not an empty list"),
    ("{referenceVideos: [clip.mp4, nope.mp4]}", "inputs.referenceVideos[1]", "file not found"),
    ("{referenceImages: [first.png, clip.mp4]}", "inputs.referenceImages[1]",
     "referenceImages takes an image, but clip.mp4 is named as a video file"),
    ("{video: clip.mp4}", "inputs.video", "unknown key 'video'"),
])
def test_file_array_problems_are_located(tmp_path: Path, inputs: str, where: str, words: str) -> None:
    """Item counts (maxLength), mixed or empty lists, missing files and a file of another kind are reported where
    they are written."""
    problems = problems_of(tmp_path, f"model: {SEEDANCE_ID}\nprompts: [a]\ninputs: {inputs}\n", SCHEMAS)
    assert any(p.where == where and words in p.message for p in problems), found(problems)


def test_array_item_counts_of_values(tmp_path: Path) -> None:
    """A `string_array` value takes minLength..maxLength items; a bad item is located at its index."""
    schemas = custom({"name": "tags", "type": "string_array", "minLength": 2, "maxLength": 3,
                      "allowedValues": ["a", "b", "c", "d"]})
    manifest = load_text(tmp_path, "model: model_custom\nprompts: [x]\nsweep: {tags: [[a, b], [b, c, d]]}\n",
                         schemas=schemas)
    assert [job.params["tags"] for job in manifest.jobs()] == [["a", "b"], ["b", "c", "d"]]
    problems = problems_of(tmp_path, "model: model_custom\nprompts: [x]\nsweep: {tags: [[a], [a, b, c, d], [a, z]]}\n",
                           schemas)
    assert found(problems) == [("sweep.tags[0]", "must have at least 2 items, not 1"),
                               ("sweep.tags[1]", "must have at most 3 items, not 4"),
                               ("sweep.tags[2][1]", "'z' is not one of 'a', 'b', 'c', 'd'")]


def test_a_model_without_seed_or_prompt(tmp_path: Path) -> None:
    """LTX-2 Retake takes no seed: `seeds` is refused, and its jobs carry none; a model without a prompt input
    refuses `prompts`."""
    problems = problems_of(tmp_path, f"model: {RETAKE_ID}\ninputs: {{video: clip.mp4}}\nprompts: [a]\nseeds: [1]\n",
                           SCHEMAS)
    assert found(problems) == [("seeds", f"{RETAKE_ID} takes no seed: leave 'seeds' out")]
    job = next(load_text(tmp_path, f"model: {RETAKE_ID}\ninputs: {{video: clip.mp4}}\nprompts: [a]\n",
                         schemas=SCHEMAS).jobs())
    assert job.seed is None and job.params == {"duration": 6, "mode": "replace_video", "prompt": "a", "startTime": 0}
    schemas = {"model_mute": parse_model({"id": "model_mute", "inputs": [{"name": "video", "type": "file"}]})}
    problems = problems_of(tmp_path, "model: model_mute\ninputs: {video: clip.mp4}\nprompts: [a]\n", schemas)
    assert found(problems) == [("prompts", "model_mute takes no prompt: leave 'prompts' out")]


def test_a_batch_of_another_model_checks_what_it_inherits(tmp_path: Path) -> None:
    """Top-level values are checked for every model that uses them: a default fine for LTX-2 19B but unknown to
    the 22B model of one batch is reported, saying for which batch's model; a place already faulty is not reported
    again."""
    problems = problems_of(tmp_path, f"""
        inputs: {{video: clip.mp4}}
        defaults: {{numInferenceSteps: 30, videoStrenght: 1}}
        prompts: [a]
        batches:
          - name: old
          - name: new
            model: {LTX23_V2V_ID}
        """, SCHEMAS)
    assert found(problems) == [
        ("defaults.videoStrenght", "unknown parameter 'videoStrenght' (did you mean 'videoStrength'?)"),
        ("defaults.numInferenceSteps", f"unknown parameter 'numInferenceSteps' for {LTX23_V2V_ID} (LTX-2 19B takes it, "
                                       f"this model does not; `ltx-batch models {LTX23_V2V_ID}` lists its parameters) "
                                       f"(for {LTX23_V2V_ID}, the model of batch 'new')")]


def test_a_model_the_api_does_not_know_is_located(tmp_path: Path) -> None:
    """Why a model's schema is not known is a problem where the model is named, among the others of the manifest."""
    problems = problems_of(tmp_path, "model: model_nope\ninputs: {video: clip.mp4}\nprompts: [a]\nseeds: lots\n",
                           {"model_nope": "unknown model id 'model_nope': the API answered 404"})
    assert found(problems) == [("model", "unknown model id 'model_nope': the API answered 404"),
                               ("seeds", "must be a list of seeds or {count: N, from: S}, not the text 'lots'")]
    problems = problems_of(tmp_path, "model: model_unfetched\ninputs: {video: clip.mp4}\nprompts: [a]\n")
    assert found(problems) == [("model", "the parameters of model model_unfetched are not known here (ltx-batch "
                                         "fetches them: plan or run this manifest)")]


def test_max_size_of_a_file_input(tmp_path: Path) -> None:
    """A local file over its input's maxSize is refused before anything is uploaded."""
    schemas = custom({"name": "video", "type": "file", "kind": "video", "maxSize": 5})
    problems = problems_of(tmp_path, "model: model_custom\nprompts: [a]\ninputs: {video: clip.mp4}\n", schemas)
    assert found(problems) == [("inputs.video", "clip.mp4 is 9 bytes; video takes at most 5")]


def test_an_image_model_with_a_renamed_builtin(tmp_path: Path) -> None:
    """A model with the same parameters as LTX-2 19B under another id gives the same jobs but for the model
    (so different keys); an image model's `file_array` needs no `video`."""
    same = load_text(tmp_path, "model: model_twin\ninputs: {video: clip.mp4}\nprompts: [a]\nseeds: [1]\n",
                     schemas={"model_twin": renamed_builtin("model_twin")})
    plain = load_text(tmp_path, "inputs: {video: clip.mp4}\nprompts: [a]\nseeds: [1]\n", "p.yaml")
    assert next(same.jobs()).params == next(plain.jobs()).params and next(same.jobs()).key != next(plain.jobs()).key
    image = load_text(tmp_path, f"model: {GPT_IMAGE_ID}\nprompts: [a]\ninputs: {{referenceImages: first.png}}\n",
                      "i.yaml", SCHEMAS)
    job = next(image.jobs())
    assert [(r.param, r.index, r.media) for r in job.inputs] == [("referenceImages", 0, "image")]
    assert job.params == {"numOutputs": 1, "prompt": "a", "quality": "auto"} and MODEL_ID not in image.models
