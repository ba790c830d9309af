"""Validation of bad manifests: every problem located (path + YAML line), all reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from manifest_helpers import load_text, problems_of

from pipeline.errors import ManifestError
from pipeline.manifest.load import load_manifest
from pipeline.yamlpos import MAX_FILE_BYTES

HEAD = "inputs: {video: clip.mp4}\nprompts: [a dog]\n"  # lines 1-2; the case's own text starts on line 3

CASES = [
    # (id, manifest text, where, line, words in the message)
    ("unknown top key", HEAD + "sweeps: {fps: [1]}\n", "sweeps", 3, "did you mean 'sweep'"),
    ("unknown default", HEAD + "defaults: {videoStrenght: 0.5}\n", "defaults.videoStrenght", 3,
     "did you mean 'videoStrength'"),
    ("unknown sweep param in batch", HEAD + "batches:\n  - name: b\n    sweep:\n      videoStrenght: [1]\n",
     "batches[0].sweep.videoStrenght", 6, "did you mean 'videoStrength'"),
    ("unknown batch key", HEAD + "batches:\n  - {promts: [x]}\n", "batches[0].promts", 4, "did you mean 'prompts'"),
    ("unknown inputs key", "inputs: {video: clip.mp4, imgae: first.png}\nprompts: [a]\n", "inputs.imgae", 1,
     "did you mean 'image'"),
    ("unknown seeds key", HEAD + "seeds: {count: 3, form: 1}\n", "seeds.form", 3, "did you mean 'from'"),
    ("param at top level", HEAD + "videoStrength: 0.5\n", "videoStrength", 3, "unknown key"),
    ("range in sweep", HEAD + "sweep:\n  videoStrength:\n    - 0.6\n    - 0.8\n    - 1.5\n",
     "sweep.videoStrength[2]", 7, "1.5 is out of range 0..1"),
    ("range in default", HEAD + "defaults: {numInferenceSteps: 400}\n", "defaults.numInferenceSteps", 3,
     "out of range 1..100"),
    ("enum", HEAD + "defaults:\n  modality: depht\n", "defaults.modality", 4, "did you mean 'depth'"),
    ("enum in zip", HEAD + "zip: {cameraMotion: [static, dolly-in], fps: [1, 2]}\n", "zip.cameraMotion[1]", 3,
     "did you mean 'dolly_in'"),
    ("type number", HEAD + "defaults: {guidanceScale: forty}\n", "defaults.guidanceScale", 3, "must be a number"),
    ("type boolean", HEAD + "defaults: {enhancePrompt: maybe}\n", "defaults.enhancePrompt", 3, "true or false"),
    ("type integer", HEAD + "defaults: {numInferenceSteps: 2.5}\n", "defaults.numInferenceSteps", 3, "whole number"),
    ("type string", HEAD + "defaults: {negativePrompt: 3}\n", "defaults.negativePrompt", 3, "must be a string"),
    ("width without height", HEAD + "defaults: {width: 1280}\n", "defaults.width", 3, "width is set without height"),
    ("height without width in sweep", HEAD + "sweep: {height: [768]}\n", "sweep.height[0]", 3,
     "height is set without width"),
    ("width removed by batch", HEAD + "defaults: {width: 1280, height: 768}\nbatches:\n  - defaults: {width: null}\n",
     "defaults.height", 3, "in batch 'batch-0'"),
    ("prompt in defaults", HEAD + "defaults: {prompt: hi}\n", "defaults.prompt", 3, "under 'prompts'"),
    ("prompt in sweep", HEAD + "sweep: {prompt: [a, b]}\n", "sweep.prompt", 3, "under 'prompts'"),
    ("file param in sweep", HEAD + "sweep: {video: [a.mp4]}\n", "sweep.video", 3, "give it under 'inputs'"),
    ("file param in prompt", "inputs: {video: clip.mp4}\nprompts:\n  - {prompt: a, image: first.png}\n",
     "prompts[0].image", 3, "under 'inputs'"),
    ("seed in defaults", HEAD + "defaults: {seed: 3}\n", "defaults.seed", 3, "'seeds' key"),
    ("missing file", "inputs:\n  video:\n    - clip.mp4\n    - nope.mp4\nprompts: [a]\n", "inputs.video[1]", 4,
     "file not found"),
    ("missing image", HEAD + "batches:\n  - inputs: {image: nope.png}\n", "batches[0].inputs.image", 4,
     "file not found"),
    ("empty file", "inputs: {video: empty.mp4}\nprompts: [a]\n", "inputs.video", 1, "the file is empty"),
    ("directory", "inputs: {video: .}\nprompts: [a]\n", "inputs.video", 1, "not a regular file"),
    ("bad asset id", "inputs: {video: asset_a b}\nprompts: [a]\n", "inputs.video", 1, "not a valid asset id"),
    ("input not text", "inputs: {video: 3}\nprompts: [a]\n", "inputs.video", 1, "file path or an asset id"),
    ("inputs not mapping", "inputs: clip.mp4\nprompts: [a]\n", "inputs", 1, "must be a mapping"),
    ("no video", "prompts: [a]\n", "", 1, "no video"),
    ("no video in batch", "prompts: [a]\nbatches:\n  - name: x\n", "batches[0]", 3, "here or at the top level"),
    ("no prompts", "inputs: {video: clip.mp4}\n", "", 1, "no prompts"),
    ("empty prompts", "inputs: {video: clip.mp4}\nprompts: []\n", "prompts", 2, "not an empty list"),
    ("empty prompt", "inputs: {video: clip.mp4}\nprompts:\n  - a\n  - ''\n", "prompts[1]", 4, "must not be empty"),
    ("prompt not text", "inputs: {video: clip.mp4}\nprompts: [a, 3]\n", "prompts[1]", 2, "must be a string"),
    ("prompt mapping without text", "inputs: {video: clip.mp4}\nprompts:\n  - {negativePrompt: x}\n",
     "prompts[0]", 3, "needs a 'prompt' key"),
    ("same prompt twice", "inputs: {video: clip.mp4}\nprompts: [a, b, a]\n", "prompts[2]", 2, "listed twice"),
    ("prompt override also swept", "inputs: {video: clip.mp4}\nprompts:\n  - {prompt: a, fps: 3}\n"
     "sweep: {fps: [1, 2]}\n", "prompts[0].fps", 3, "also swept or zipped"),
    ("sweep not a list", HEAD + "sweep: {modality: depth}\n", "sweep.modality", 3, "non-empty list"),
    ("sweep empty list", HEAD + "sweep: {modality: []}\n", "sweep.modality", 3, "not an empty list"),
    ("sweep repeated value", HEAD + "sweep: {videoStrength: [0.5, 1, 1.0]}\n", "sweep.videoStrength[2]", 3,
     "listed twice (also sweep.videoStrength[1])"),
    ("sweep not a mapping", HEAD + "sweep: [fps]\n", "sweep", 3, "must be a mapping"),
    ("zip unequal", HEAD + "zip:\n  width: [1280, 768]\n  height: [768]\n", "zip.height", 5,
     "equal lengths (width has 2, height has 1)"),
    ("swept and zipped", HEAD + "sweep: {fps: [1]}\nzip: {fps: [2]}\n", "zip.fps", 4, "both swept and zipped"),
    ("negative seed", HEAD + "seeds: [1, -2]\n", "seeds[1]", 3, "out of range"),
    ("fractional seed", HEAD + "seeds: [1.5]\n", "seeds[0]", 3, "whole number"),
    ("boolean seed", HEAD + "seeds: [true]\n", "seeds[0]", 3, "must be a number"),
    ("repeated seed", HEAD + "seeds: [4, 5, 4]\n", "seeds[2]", 3, "seed 4 is listed twice"),
    ("seed count zero", HEAD + "seeds: {count: 0}\n", "seeds.count", 3, "from 1 to"),
    ("seed from negative", HEAD + "seeds: {count: 2, from: -1}\n", "seeds.from", 3, "whole number >= 0"),
    ("seeds without count", HEAD + "seeds: {from: 3}\n", "seeds", 3, "needs 'count'"),
    ("seeds text", HEAD + "seeds: lots\n", "seeds", 3, "list of seeds"),
    ("batches empty", HEAD + "batches: []\n", "batches", 3, "non-empty list"),
    ("batch not mapping", HEAD + "batches: [x]\n", "batches[0]", 3, "must be a mapping"),
    ("batch names clash", HEAD + "batches:\n  - {name: x}\n  - {name: x, seeds: [1]}\n", "batches[1].name", 5,
     "already used by batches[0]"),
    ("bad run name", HEAD + "name: ../escape\n", "name", 3, "must be a name"),
    ("bad model", HEAD + "model: 42\n", "model", 3, "model id"),
    ("image list length", "inputs:\n  video: [clip.mp4, other.mp4, asset_x]\n  image: [first.png, first.png]\n"
     "prompts: [a]\n", "inputs.image", 3, "lists 2 files but inputs.video lists 3"),
    ("too many jobs", HEAD + "seeds: {count: 600000}\nsweep: {fps: [1, 2]}\n", "", 1, "the limit is 1,000,000"),
    ("non-text key", HEAD + "1: x\n", "", 3, "keys must be text"),
    ("duplicate yaml key", HEAD + "seeds: [1]\nseeds: [2]\n", "seeds", 4,
     "duplicate key 'seeds' (first given on line 3)"),
    ("duplicate nested key", HEAD + "defaults:\n  fps: 1\n  fps: 2\n", "defaults.fps", 5, "duplicate key"),
    ("yaml syntax", HEAD + "sweep: {fps: [1, 2}\n", "", 3, "YAML syntax error"),
    ("yaml tab", HEAD + "defaults:\n\tfps: 1\n", "", 4, "YAML syntax error"),
    ("yaml unknown tag", HEAD + "seeds: !!python/object:os.system [1]\n", "seeds", 3, "unsupported YAML tag"),
    ("list document", "- a\n- b\n", "", 1, "must be a mapping of keys"),
    ("text document", "hello\n", "", 1, "must be a mapping of keys"),
    ("empty document", "", "", 1, "the file is empty"),
    ("comments only", "# nothing here\n", "", 1, "the file is empty"),
    ("two documents", HEAD + "---\nname: x\n", "", 3, "more than one YAML document"),
]


@pytest.mark.parametrize(("text", "where", "line", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_problem_is_located(tmp_path: Path, text: str, where: str, line: int, words: str) -> None:
    """Each bad manifest is rejected with a problem at the right path and line, with a clear message."""
    (tmp_path / "empty.mp4").write_bytes(b"")
    problems = problems_of(tmp_path, text)
    found = [p for p in problems if words in p.message]
    assert found, [str(p) for p in problems]
    assert (found[0].where, found[0].line) == (where, line), str(found[0])
    assert found[0].source == str(tmp_path / "m.yaml")
    assert str(found[0]).startswith(f"{tmp_path / 'm.yaml'}:{line}: ")


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    """Problems in different places (and missing files) are all listed, in line order."""
    problems = problems_of(tmp_path, """\
inputs: {video: [nope1.mp4, clip.mp4, nope2.mp4]}
prompts: [a, '']
defaults: {modality: depht, videoStrenght: 1}
sweep: {fps: [0, 30, 90]}
seeds: [-1]
""")
    assert [(p.where, p.line) for p in problems] == [
        ("inputs.video[0]", 1), ("inputs.video[2]", 1), ("prompts[1]", 2), ("defaults.modality", 3),
        ("defaults.videoStrenght", 3), ("sweep.fps[0]", 4), ("sweep.fps[2]", 4), ("seeds[0]", 5)]


def test_duplicate_jobs_name_both(tmp_path: Path) -> None:
    """Two identical jobs (same key) are an error naming both jobs, their batches and prompts."""
    problems = problems_of(tmp_path, """\
inputs: {video: clip.mp4}
prompts: [a, b]
seeds: [1]
batches:
  - name: first
  - name: second
    prompts: [c, b]
""")
    assert len(problems) == 1
    message = problems[0].message
    assert (problems[0].where, problems[0].line) == ("batches[1]", 6)
    assert "job 3 (batch 'second'" in message and "batches[1].prompts[1]" in message
    assert "job 1 (batch 'first'" in message and "prompts[1]" in message


def test_duplicates_from_rounding_are_found(tmp_path: Path) -> None:
    """Values that differ as written but round to the same request (1000 and 1024) are duplicate jobs."""
    problems = problems_of(tmp_path, """\
inputs: {video: clip.mp4}
prompts: [a]
batches:
  - defaults: {width: 1000, height: 768}
  - defaults: {width: 1024, height: 768}
""")
    assert [p.where for p in problems] == ["batches[1]"]
    assert "job 1 (batch 'batch-1'" in problems[0].message and "identical to job 0" in problems[0].message


def test_rounding_is_a_warning(tmp_path: Path) -> None:
    """A width/height not a multiple of 64 is rounded (as the API does) with a located warning, not an error."""
    manifest = load_text(tmp_path, HEAD + "defaults:\n  width: 1000\n  height: 700\n")
    assert [(w.where, w.line) for w in manifest.warnings] == [("defaults.width", 4), ("defaults.height", 5)]
    assert "rounds it to 1024" in manifest.warnings[0].message
    job = next(manifest.jobs())
    assert (job.params["width"], job.params["height"]) == (1024, 704)


def test_conditioning_video_without_modality_warns(tmp_path: Path) -> None:
    """conditioningVideo with modality 'none' is a warning at the input, counting the jobs concerned."""
    manifest = load_text(tmp_path, "inputs: {video: clip.mp4, conditioningVideo: depth.mp4}\nprompts: [a]\n"
                                   "sweep: {modality: [none, depth, none-x]}\n".replace(", none-x", ""))
    assert [(w.where, w.line) for w in manifest.warnings] == [("inputs.conditioningVideo", 1)]
    assert "(job 0)" in manifest.warnings[0].message


def test_unreadable_manifest(tmp_path: Path) -> None:
    """A missing manifest file or one that is not UTF-8 is a ManifestError, not an OSError."""
    with pytest.raises(ManifestError, match="cannot read the manifest"):
        load_manifest(tmp_path / "nope.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"inputs: {video: clip.mp4}\nprompts: [caf\xe9]\n")
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path / "latin1.yaml")
    assert caught.value.problems[0].line == 2 and "not UTF-8" in caught.value.problems[0].message


def test_huge_manifest_is_refused_before_parsing(tmp_path: Path) -> None:
    """A manifest over the size cap (a video given by mistake, /dev/zero) is refused with a clear message."""
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"prompts: [a]\n" + b"#" * MAX_FILE_BYTES)
    for path in (huge, Path("/dev/zero")):
        with pytest.raises(ManifestError, match="over 8 MiB, too large for a YAML document") as caught:
            load_manifest(path)
        assert caught.value.problems[0].source == str(path)


@pytest.mark.parametrize(
    "text",
    ["a: &x [*x]\n", "a: &x {b: *x}\n", "a: &a [1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
     "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n", "x: " + "[" * 5000 + "]" * 5000 + "\n"],
    ids=["recursive list", "recursive map", "alias bomb", "deep nesting"],
)
def test_hostile_yaml_is_refused(tmp_path: Path, text: str) -> None:
    """Recursive aliases, alias bombs and absurd nesting give a ManifestError quickly."""
    with pytest.raises(ManifestError):
        load_text(tmp_path, text)


def test_default_hidden_by_sweep_warns(tmp_path: Path) -> None:
    """A default that a sweep or zip overrides in every job of a batch is a located warning."""
    manifest = load_text(tmp_path, HEAD + "defaults: {fps: 10, duration: 5}\nsweep: {fps: [12, 24]}\n")
    assert [(w.where, w.line) for w in manifest.warnings] == [("defaults.fps", 3)]
    assert "sweep.fps sets 'fps' in every job" in manifest.warnings[0].message


def test_one_mistake_one_problem(tmp_path: Path) -> None:
    """A wrongly shaped `inputs` is reported once, not again as 'no video'."""
    problems = problems_of(tmp_path, "inputs: clip.mp4\nprompts: [a]\n")
    assert [p.where for p in problems] == ["inputs"]
