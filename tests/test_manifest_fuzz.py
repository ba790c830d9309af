"""Hypothesis: any text or YAML-ish structure gives a valid Manifest or a ManifestError, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from manifest_helpers import write_inputs

from pipeline.errors import ManifestError
from pipeline.manifest.load import BATCH_KEYS, TOP_KEYS, Manifest, parse_manifest
from pipeline.manifest.params import PARAMS

WORDS = [*TOP_KEYS, *PARAMS, "count", "from", "prompt", "clip.mp4", "first.png", "nope.mp4", "asset_x", "none",
         "depth", "auto", "720p", "static", "videoStrenght", "", "main", "<<"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3000), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS), st.text(max_size=12),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(WORDS), inner, max_size=5)),
    max_leaves=25,
)
TOP = st.dictionaries(st.sampled_from(TOP_KEYS), VALUES, max_size=len(TOP_KEYS))
BATCH = st.dictionaries(st.sampled_from(BATCH_KEYS), VALUES, max_size=4)
SHAPED = st.fixed_dictionaries(
    {
        "inputs": st.one_of(st.just({"video": "clip.mp4"}), VALUES),
        "prompts": st.one_of(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3), VALUES),
    },
    optional={
        "defaults": st.dictionaries(st.sampled_from(list(PARAMS)), SCALARS, max_size=4),
        "sweep": st.dictionaries(st.sampled_from(list(PARAMS)), st.lists(SCALARS, max_size=3), max_size=3),
        "zip": st.dictionaries(st.sampled_from(list(PARAMS)), st.lists(SCALARS, max_size=3), max_size=2),
        "seeds": st.one_of(st.lists(st.integers(-2, 50), max_size=4),
                           st.fixed_dictionaries({"count": st.integers(-1, 20)}, optional={"from": SCALARS}), VALUES),
        "batches": st.lists(BATCH, max_size=3),
    },
)
CHECKS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz")
    write_inputs(path)
    return path


def outcome(folder: Path, text: str) -> Manifest | None:
    """Load the text; a ManifestError is a fine answer, any other exception fails the test."""
    try:
        manifest = parse_manifest(text, path=folder / "m.yaml")
    except ManifestError as exc:
        assert exc.problems and all(p.message for p in exc.problems)
        return None
    jobs = list(manifest.jobs(0, 200))
    assert len(jobs) == min(manifest.job_count, 200)
    assert all(job.key and job.params["prompt"] and "seed" in job.params for job in jobs)
    return manifest


@CHECKS
@given(text=st.text(max_size=200))
def test_random_text(folder: Path, text: str) -> None:
    """Arbitrary text never raises anything but ManifestError."""
    outcome(folder, text)


@CHECKS
@given(pieces=st.lists(st.sampled_from([*"{}[],:-&*!|>'\"#\n\t ?<%@`a1", "x: ", "- ", "&a ", "*a", "!!str ",
                                        "<<: ", "inputs: ", "prompts: ", "\n  "]), max_size=40))
def test_yaml_punctuation_soup(folder: Path, pieces: list[str]) -> None:
    """Text made mostly of YAML punctuation (aliases, tags, flow, block) never crashes the loader."""
    outcome(folder, "".join(pieces))


@CHECKS
@given(doc=st.one_of(TOP, VALUES))
def test_random_structures(folder: Path, doc: object) -> None:
    """Random documents built from the manifest's own vocabulary give a Manifest or a ManifestError."""
    outcome(folder, yaml.safe_dump(doc, allow_unicode=True))


@CHECKS
@given(doc=SHAPED)
def test_nearly_valid_manifests(folder: Path, doc: dict[str, object]) -> None:
    """Manifests with the right shape and random contents reach deep validation without crashing."""
    outcome(folder, yaml.safe_dump(doc, allow_unicode=True))


@CHECKS
@given(cut=st.integers(0, 400), insert=st.text(max_size=3))
def test_mutated_sample(folder: Path, cut: int, insert: str) -> None:
    """A valid manifest with characters inserted anywhere stays a Manifest or becomes a ManifestError."""
    text = ("inputs: {video: clip.mp4, image: first.png}\nprompts:\n  - a\n  - {prompt: b, fps: 3}\n"
            "sweep: {videoStrength: [0.5, 1], modality: [none, depth]}\nzip: {width: [64, 128], height: [64, 64]}\n"
            "seeds: {count: 2, from: 5}\nbatches:\n  - name: x\n  - {name: y, prompts: [c]}\n")
    cut %= len(text) + 1
    outcome(folder, text[:cut] + insert + text[cut:])
