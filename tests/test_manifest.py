"""Expansion of valid manifests: counts, order, params, swept values, inputs, keys and seeds."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import pytest
from manifest_helpers import load_text, renamed_builtin

from pipeline.manifest.expand import filled_defaults
from pipeline.manifest.params import MAX_SEED, MODEL_ID, PARAMS
from pipeline.manifest.schema import builtin_schema
from pipeline.spec import derived_seed, job_key

BASE = """
inputs: {video: clip.mp4}
prompts: [a dog]
"""


def sections(**parts: str) -> str:
    """A manifest from top-level sections (YAML flow text), over the base `inputs` and `prompts`."""
    merged = {"inputs": "{video: clip.mp4}", "prompts": "[a dog]", **parts}
    return "".join(f"{key}: {value}\n" for key, value in merged.items())


@pytest.mark.parametrize(
    ("extra", "count"),
    [
        ("", 1),
        ("seeds: [1, 2, 3]", 3),
        ("seeds: {count: 5, from: 10}", 5),
        ("seeds: {count: 4}", 4),
        ("seeds: 7", 1),
        ("sweep: {videoStrength: [0.2, 0.4], modality: [none, canny, depth]}", 6),
        ("zip: {width: [1280, 768], height: [768, 1280]}", 2),
        ("sweep: {videoStrength: [0.2, 0.4]}\nzip: {width: [1280, 768], height: [768, 1280]}\nseeds: [1, 2]", 8),
        ("batches: [{prompts: [a, b, c], sweep: {fps: [12, 24]}}]", 6),
        ("batches: [{inputs: {video: [clip.mp4, other.mp4]}, prompts: [a, b]}]", 4),
        ("batches: [{name: one}, {name: two, prompts: [x, y]}]", 3),
        ("batches: [{seeds: [1, 2]}, {sweep: {fps: [1, 2, 3]}, seeds: {count: 2, from: 5}}]", 8),
    ],
)
def test_job_count(tmp_path: Path, extra: str, count: int) -> None:
    """job_count = videos x prompts x product(sweep) x zip rows x seeds, summed over batches; jobs() agrees."""
    manifest = load_text(tmp_path, BASE + extra)
    jobs = list(manifest.jobs())
    assert manifest.job_count == len(jobs) == count
    assert [job.index for job in jobs] == list(range(count))
    assert sum(manifest.batch_counts().values()) == count


def test_expansion_order_and_swept(tmp_path: Path) -> None:
    """Order is videos > prompts > sweep (written order, last fastest) > zip > seeds; swept shows the axes."""
    manifest = load_text(tmp_path, """
        inputs: {video: [clip.mp4, other.mp4]}
        prompts: [a, b]
        sweep: {modality: [none, depth], videoStrength: [0.5, 1]}
        zip: {width: [1280, 768], height: [768, 1280]}
        seeds: [7, 8]
    """)
    expected = [
        {"video": v, "prompt": p, "modality": m, "videoStrength": s, "width": w, "height": h, "seed": seed}
        for v, p, m, s, (w, h), seed in itertools.product(
            ["clip.mp4", "other.mp4"], [0, 1], ["none", "depth"], [0.5, 1], [(1280, 768), (768, 1280)], [7, 8])
    ]
    jobs = list(manifest.jobs())
    assert [dict(job.swept) for job in jobs] == expected
    assert [list(job.swept) for job in jobs[:1]] == [list(expected[0])]
    for job, want in zip(jobs, expected):
        assert job.params["modality"] == want["modality"] and job.params["seed"] == want["seed"]
        assert job.prompt == ["a", "b"][want["prompt"]]
        assert job.inputs[0].path == str(tmp_path / want["video"])
    assert manifest.batches[0].axes == tuple(expected[0])


def test_params_complete_with_layers(tmp_path: Path) -> None:
    """params = the model's defaults + the manifest's defaults + prompt overrides + sweep + zip + seed, sorted by
    name: every default filled, seed explicit."""
    manifest = load_text(tmp_path, """
        inputs: {video: clip.mp4}
        defaults: {numInferenceSteps: 20, negativePrompt: ugly, guidanceScale: 5}
        prompts:
          - a
          - {prompt: b, negativePrompt: null, guidanceScale: 7.0}
        sweep: {fps: [24]}
        seeds: [3]
    """)
    first, second = manifest.jobs()
    given = {"prompt": "a", "numInferenceSteps": 20, "negativePrompt": "ugly", "guidanceScale": 5, "fps": 24, "seed": 3}
    assert dict(first.params) == dict(sorted({**filled_defaults(builtin_schema()), **given}.items()))
    assert "negativePrompt" not in second.params  # null unsets the default for this prompt
    assert second.params["guidanceScale"] == 7 and isinstance(second.params["guidanceScale"], int)
    assert list(first.params) == sorted(first.params)
    assert all(p.name in first.params for p in PARAMS.values() if p.default is not None and p.kind != "file")
    assert first.swept == {"prompt": 0, "fps": 24} and first.batch == "main" and first.model == MODEL_ID


def test_inputs_refs_hash_and_pairing(tmp_path: Path) -> None:
    """Local inputs carry absolute path, sha256 and size; one image applies to every video, a list pairs up."""
    manifest = load_text(tmp_path, """
        inputs:
          video: [clip.mp4, other.mp4, asset_abc123]
          image: first.png
          conditioningVideo: [depth.mp4, depth.mp4, asset_depth-1]
        defaults: {modality: depth}
        prompts: [a]
    """)
    jobs = list(manifest.jobs())
    clip = jobs[0].inputs[0]
    assert (clip.param, clip.kind, clip.path) == ("video", "file", str(tmp_path / "clip.mp4"))
    assert clip.sha256 == hashlib.sha256(b"video one").hexdigest() and clip.size_bytes == 9
    assert [ref.param for ref in jobs[0].inputs] == ["video", "image", "conditioningVideo"]
    assert jobs[2].inputs[0].kind == "asset" and jobs[2].inputs[0].asset_id == "asset_abc123"
    assert jobs[2].inputs[2].asset_id == "asset_depth-1"
    assert [ref.path for ref in manifest.input_files()] == [str(tmp_path / n) for n in
                                                             ("clip.mp4", "first.png", "depth.mp4", "other.mp4")]


def test_batches_merge_and_replace(tmp_path: Path) -> None:
    """Batches inherit every key: inputs/defaults/sweep/zip merge per key (null removes); prompts/seeds replace."""
    manifest = load_text(tmp_path, """
        inputs: {video: clip.mp4, image: first.png}
        defaults: {numInferenceSteps: 20, fps: 12}
        prompts: [a]
        sweep: {videoStrength: [0.5, 1], modality: [none, depth]}
        seeds: [1, 2]
        batches:
          - {}
          - name: other
            inputs: {video: other.mp4, image: null}
            defaults: {fps: 30, duration: 5}
            prompts: [b]
            sweep: {modality: null, cameraMotion: [static]}
            seeds: {count: 1, from: 9}
    """)
    assert manifest.batch_counts() == {"batch-0": 8, "other": 2}
    last = list(manifest.jobs())[-1]
    assert last.batch == "other" and last.index == 9
    assert [ref.param for ref in last.inputs] == ["video"] and last.inputs[0].path.endswith("other.mp4")
    assert (last.params["numInferenceSteps"], last.params["fps"], last.params["duration"]) == (20, 30, 5)
    assert last.params["modality"] == "none" and last.params["seed"] == 9 and last.prompt == "b"
    assert last.swept == {"videoStrength": 1, "cameraMotion": "static"}


def test_derived_seed_matches_spec(tmp_path: Path) -> None:
    """Without seeds, each job's seed is derived_seed(key of the seedless job) and is not in swept."""
    manifest = load_text(tmp_path, BASE + "sweep: {videoStrength: [0.1, 0.2]}")
    for job in manifest.jobs():
        seedless = {k: v for k, v in job.params.items() if k != "seed"}
        assert job.seed == derived_seed(job_key(job.model, seedless, job.inputs), MAX_SEED)
        assert job.key == job_key(job.model, job.params, job.inputs)
        assert "seed" not in job.swept and 0 <= job.seed <= MAX_SEED


@pytest.mark.parametrize(
    ("seeds", "expected"),
    [
        ("[5, 0, 9]", [5, 0, 9]),
        ("{count: 3, from: 1000}", [1000, 1001, 1002]),
        ("{count: 2}", [0, 1]),
        ("4", [4]),
        ("[3.0]", [3]),
        (f"[{2**53 - 1}]", [2**53 - 1]),
    ],
)
def test_explicit_seeds(tmp_path: Path, seeds: str, expected: list[int]) -> None:
    """Seeds may be a list, {count, from} or one integer; the job params carry them as ints in order."""
    manifest = load_text(tmp_path, BASE + f"seeds: {seeds}")
    assert [job.seed for job in manifest.jobs()] == expected
    assert all(type(job.params["seed"]) is int for job in manifest.jobs())


def test_same_manifest_same_keys_and_mapping_order_irrelevant(tmp_path: Path) -> None:
    """Keys are stable across loads and do not depend on the order of YAML mapping keys."""
    one = load_text(tmp_path, """
        inputs: {video: clip.mp4}
        defaults: {numInferenceSteps: 20, guidanceScale: 4}
        prompts: [{prompt: a, negativePrompt: n, fps: 10}]
        sweep: {videoStrength: [0.5]}
    """, "one.yaml")
    two = load_text(tmp_path, """
        sweep: {videoStrength: [0.5]}
        prompts: [{fps: 10, negativePrompt: n, prompt: a}]
        defaults: {guidanceScale: 4, numInferenceSteps: 20}
        inputs: {video: clip.mp4}
    """, "two.yaml")
    again = load_text(tmp_path, (tmp_path / "one.yaml").read_text(), "three.yaml")
    assert [j.key for j in one.jobs()] == [j.key for j in two.jobs()] == [j.key for j in again.jobs()]
    assert [j.seed for j in one.jobs()] == [j.seed for j in two.jobs()]


@pytest.mark.parametrize(
    "change",
    [
        {"defaults": "{numInferenceSteps: 21}"},
        {"defaults": "{numInferenceSteps: 20, guidanceScale: 3.5}"},
        {"defaults": "{numInferenceSteps: 20, enhancePrompt: true}"},
        {"defaults": "{numInferenceSteps: 20, width: 1280, height: 768}"},
        {"prompts": "[a dog.]"},
        {"seeds": "[2]"},
        {"inputs": "{video: other.mp4}"},
        {"inputs": "{video: clip.mp4, image: first.png}"},
        {"inputs": "{video: asset_x}"},
        {"model": "model_other"},
    ],
)
def test_key_changes_with_any_param_or_input(tmp_path: Path, change: dict[str, str]) -> None:
    """Changing any parameter, input file or model changes the key."""
    base = {"seeds": "[1]", "defaults": "{numInferenceSteps: 20}"}
    schemas = {"model_other": renamed_builtin("model_other")}
    before = load_text(tmp_path, sections(**base), "base.yaml")
    after = load_text(tmp_path, sections(**{**base, **change}), "changed.yaml", schemas)
    assert next(before.jobs()).key != next(after.jobs()).key


def test_key_changes_with_input_bytes(tmp_path: Path) -> None:
    """One changed byte in the input file changes every key (the key hashes content, not the path)."""
    before = next(load_text(tmp_path, BASE).jobs())
    (tmp_path / "m.yaml").write_text(BASE)
    from pipeline.manifest.load import load_manifest

    (tmp_path / "clip.mp4").write_bytes(b"video onE")
    after = next(load_manifest(tmp_path / "m.yaml").jobs())
    assert before.key != after.key and before.seed != after.seed


def test_one_and_one_point_zero_are_the_same_job(tmp_path: Path) -> None:
    """Integral floats are normalised to ints, so `1.0` and `1` give the same key."""
    a = next(load_text(tmp_path, BASE + "defaults: {videoStrength: 1.0, guidanceScale: 3.0}", "a.yaml").jobs())
    b = next(load_text(tmp_path, BASE + "defaults: {videoStrength: 1}", "b.yaml").jobs())
    assert a.key == b.key


@pytest.mark.parametrize(("start", "stop"), [(0, 5), (3, 9), (7, 24), (23, 24), (0, None), (30, 40)])
def test_job_slices_match_full_expansion(tmp_path: Path, start: int, stop: int | None) -> None:
    """jobs(start, stop) yields exactly the same jobs as slicing the full expansion (also across batches)."""
    manifest = load_text(tmp_path, """
        inputs: {video: clip.mp4}
        prompts: [a, b]
        sweep: {fps: [1, 2, 3]}
        batches: [{seeds: [1, 2]}, {name: x, seeds: [3, 4]}]
    """)
    assert manifest.job_count == 24
    assert list(manifest.jobs(start, stop)) == list(manifest.jobs())[start:stop]


@pytest.mark.parametrize(
    ("text", "name"),
    [("name: my-run_1.0\n", "my-run_1.0"), ("", "My-Sweep-v2"), ("name: null\n", "My-Sweep-v2")],
)
def test_run_name(tmp_path: Path, text: str, name: str) -> None:
    """The run name is `name`, else the file's stem made safe for a folder name."""
    manifest = load_text(tmp_path, BASE + text, "My Sweep (v2).yaml")
    assert manifest.name == name
    assert manifest.run_dir("out") == Path("out") / name


def test_null_sweep_value_leaves_param_to_server(tmp_path: Path) -> None:
    """A null in a sweep list means 'not sent' (server default), e.g. duration: [null, 5]."""
    jobs = list(load_text(tmp_path, BASE + "sweep: {duration: [null, 5]}").jobs())
    assert "duration" not in jobs[0].params and jobs[1].params["duration"] == 5
    assert jobs[0].swept == {"duration": None}


def test_yaml_anchors_and_merge_keys(tmp_path: Path) -> None:
    """YAML anchors, aliases and merge keys work (explicit keys win over merged ones)."""
    manifest = load_text(tmp_path, """
        inputs: {video: clip.mp4}
        defaults: &d {numInferenceSteps: 20, guidanceScale: 4}
        prompts: [a]
        batches:
          - name: x
            defaults:
              <<: *d
              guidanceScale: 6
    """)
    job = next(manifest.jobs())
    assert (job.params["numInferenceSteps"], job.params["guidanceScale"]) == (20, 6)
