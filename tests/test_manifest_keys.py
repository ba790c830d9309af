"""LTX-2 19B manifests keep their job keys: the keys of the samples and of manifests covering every feature of
the manifest are pinned (`tests/data/ltx19b_keys.json`, written by the code before models had schemas)."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pytest

from pipeline.manifest.load import load_manifest

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
PINNED = Path(__file__).resolve().parent / "data" / "ltx19b_keys.json"
INPUT_FILES = {"clip.mp4": b"video one", "other.mp4": b"video two", "first.png": b"an image", "depth.mp4": b"depth",
               "second.png": b"another image"}

MANIFESTS = {
    "plain": """
        inputs: {video: clip.mp4}
        prompts: [a dog]
        """,
    "derived-seeds-sweep": """
        inputs: {video: clip.mp4}
        prompts: [a dog, {prompt: a cat, negativePrompt: blurry}]
        sweep: {videoStrength: [0.2, 0.5, 1], modality: [none, canny, depth, pose, detailer]}
        """,
    "every-value": """
        model: model_ltx-2-19b-video-to-video
        inputs: {video: clip.mp4, image: first.png, conditioningVideo: depth.mp4}
        defaults:
          videoStrength: 0.7
          imageStrength: 0.4
          negativePrompt: low quality
          resolution: 1080p
          cameraMotion: dolly_in
          cameraMotionStrength: 1.5
          duration: 6
          aspectRatio: '16:9'
          fps: 24
          audioSource: generate
          modality: depth
          modalityStrength: 0.5
          numInferenceSteps: 30
          guidanceScale: 4.5
          enhancePrompt: true
        prompts: [a dog]
        seeds: [0, 1, 4294967295, 9007199254740991]
        """,
    "zip-size-rounded": """
        inputs: {video: clip.mp4}
        prompts: [a dog]
        zip: {width: [1280, 768, 1000], height: [768, 1280, 1000]}
        seeds: {count: 3, from: 10}
        """,
    "null-defaults-and-floats": """
        inputs: {video: clip.mp4}
        defaults: {duration: null, fps: 24.0, guidanceScale: 3.0, numInferenceSteps: 40.0}
        prompts: [{prompt: a dog, fps: null}, a cat]
        sweep: {videoStrength: [1.0, 0.5]}
        """,
    "videos-paired": """
        inputs:
          video: [clip.mp4, other.mp4]
          image: [first.png, second.png]
        prompts: [a dog]
        seeds: 7
        """,
    "videos-one-image-assets": """
        inputs:
          video: [clip.mp4, asset_abc123, other.mp4]
          image: first.png
          conditioningVideo: asset_depthVideo-1
        defaults: {modality: depth}
        prompts: [a dog, a cat]
        """,
    "batches": """
        name: grid
        inputs: {video: clip.mp4}
        defaults: {numInferenceSteps: 30}
        prompts: [a, b]
        sweep: {videoStrength: [0.5, 1]}
        batches:
          - name: one
          - name: two
            inputs: {image: first.png}
            defaults: {numInferenceSteps: null, imageStrength: 0.5}
            sweep: {videoStrength: null, cameraMotion: [static, jib_up]}
            seeds: {count: 2}
          - name: three
            model: model_ltx-2-19b-video-to-video
            prompts: [c]
            zip: {enhancePrompt: [true, false], aspectRatio: ['9:16', '1:1']}
            seeds: [5, 6]
        """,
}


def write_inputs(folder: Path) -> None:
    for name, data in INPUT_FILES.items():
        (folder / name).write_bytes(data)


def _digest(keys: list[str]) -> dict[str, object]:
    return {"jobs": len(keys), "sha256": hashlib.sha256("\n".join(keys).encode()).hexdigest(), "first": keys[0]}


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.glob("*.yaml")))
def test_sample_keys_unchanged(sample: str) -> None:
    """Each sample manifest expands to the very job keys it had before models had schemas."""
    keys = [job.key for job in load_manifest(SAMPLES / sample).jobs()]
    assert _digest(keys) == json.loads(PINNED.read_text())[f"samples/{sample}"]


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_manifest_keys_unchanged(tmp_path: Path, name: str) -> None:
    """A manifest using every parameter, pairing, batch and seed form keeps its job keys."""
    write_inputs(tmp_path)
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(MANIFESTS[name]), encoding="utf-8")
    keys = [job.key for job in load_manifest(path).jobs()]
    assert _digest(keys) == json.loads(PINNED.read_text())[name]
