"""One `plan` (or `run`) lists every problem of a manifest: the YAML's own, each value's, each input file's,
each batch's and the checks on whole jobs together, each located by path and line (exit 2)."""

from __future__ import annotations

import re
import socket
import textwrap
from pathlib import Path

import pytest
from manifest_helpers import write_inputs

from pipeline.cli.main import main

# (id, manifest, [(line, where, words in the message)]): every problem expected, and no other
CASES = [
    ("unknown key and width without height", """\
        inputs: {video: clip.mp4}
        prompts: [a, b]
        defaults:
          videoStrenght: 0.5
          width: 1280
        """, [(4, "defaults.videoStrenght", "did you mean 'videoStrength'"),
              (5, "defaults.width", "width is set without height (2 jobs, e.g. job 0)")]),
    ("unknown top key and duplicate jobs", """\
        inputs: {video: clip.mp4}
        prompts: [a, b]
        sweeps: {fps: [1, 2]}
        batches:
          - name: first
          - name: second
            prompts: [c, b]
        """, [(3, "sweeps", "did you mean 'sweep'"),
              (6, "batches[1]", "job 3 (batch 'second'")]),
    ("missing file, bad value, unequal zip and an unpaired height", """\
        inputs: {video: [clip.mp4, nope.mp4]}
        prompts: [a]
        defaults: {height: 768, guidanceScale: 40}
        zip:
          fps: [12, 24]
          duration: [3]
        """, [(1, "inputs.video[1]", "file not found"),
              (3, "defaults.guidanceScale", "out of range 1..20"),
              (3, "defaults.height", "height is set without width"),
              (6, "zip.duration", "equal lengths (fps has 2, duration has 1)")]),
    ("input lists, a bad sweep value, a prompt override and an unpaired width", """\
        inputs:
          video: [clip.mp4, other.mp4]
          image: [first.png, first.png, first.png]
        prompts:
          - {prompt: a, numInferenceSteps: 0}
          - b
        defaults: {width: 640}
        sweep: {modality: [none, depht]}
        """, [(3, "inputs.image", "lists 3 files but inputs.video lists 2"),
              (5, "prompts[0].numInferenceSteps", "out of range 1..100"),
              (7, "defaults.width", "width is set without height (8 jobs, e.g. job 0)"),
              (8, "sweep.modality[1]", "did you mean 'depth'")]),
    ("duplicate YAML key, unknown parameter and an unpaired width", """\
        inputs: {video: clip.mp4}
        prompts: [a]
        seeds: [1]
        seeds: [2]
        defaults: {width: 1280, imageStrenght: 1}
        """, [(4, "seeds", "duplicate key 'seeds' (first given on line 3)"),
              (5, "defaults.imageStrenght", "did you mean 'imageStrength'"),
              (5, "defaults.width", "width is set without height (job 0)")]),
    ("unreadable YAML values and a repeated seed beside an unpaired width", """\
        inputs: {video: clip.mp4}
        prompts: [a, !!int x]
        defaults: {width: 1280}
        seeds: [1, 1, 2]
        """, [(2, "prompts[1]", "cannot read the value 'x'"),
              (3, "defaults.width", "width is set without height (6 jobs, e.g. job 0)"),
              (4, "seeds[1]", "seed 1 is listed twice")]),
    ("a batch that is not a mapping, empty prompts, bad seeds and an unpaired height", """\
        inputs: {video: clip.mp4}
        prompts: [a]
        batches:
          - 3
          - name: b
            prompts: []
          - name: c
            defaults: {height: 512}
            seeds: {from: -1}
        """, [(4, "batches[0]", "must be a mapping"),
              (6, "batches[1].prompts", "not an empty list"),
              (8, "batches[2].defaults.height", "height is set without width in batch 'c'"),
              (9, "batches[2].seeds", "needs 'count'"),
              (9, "batches[2].seeds.from", "whole number >= 0")]),
    ("too many jobs and an unknown sweep parameter", """\
        inputs: {video: clip.mp4}
        prompts: [a]
        seeds: {count: 600000}
        sweep: {fps: [1, 2], videoStrenght: [1]}
        """, [(1, "", "this batch expands to 1,200,000 jobs; the limit is 1,000,000"),
              (4, "sweep.videoStrenght", "did you mean 'videoStrength'")]),
    ("a bad seed keeps the job count: the unpaired width names its jobs", """\
        inputs: {video: clip.mp4, image: nope.png}
        prompts: [a]
        defaults: {width: 64}
        seeds: [1, -1]
        """, [(1, "inputs.image", "file not found"),
              (3, "defaults.width", "width is set without height (2 jobs, e.g. job 0)"),
              (4, "seeds[1]", "out of range")]),
]

PROBLEM = re.compile(r"^  (?P<source>.+?):(?P<line>\d+): (?:(?P<where>[^:]+?): )?(?P<message>.*)$")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation needs no network: any socket creation fails the test."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket, "socket", refuse)


def reported(capsys: pytest.CaptureFixture[str], argv: list[str], path: Path) -> list[tuple[int, str, str]]:
    """Run the command; it must exit 2 with nothing on stdout; the (line, where, message) of each problem."""
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 2 and out == "" and "Traceback" not in err, err
    lines = err.splitlines()
    assert lines[0].endswith("error:"), err
    found = []
    for text in lines[1:]:
        match = PROBLEM.match(text)
        assert match and match["source"] == str(path), text
        where = match["where"] or ""
        message = match["message"]
        if where and " " in where:  # not a path: the message had no place
            where, message = "", f"{where}: {message}"
        found.append((int(match["line"]), where, message))
    return found


@pytest.mark.parametrize("command", ["plan", "run"])
@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_kind_of_problem_in_one_pass(capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str,
                                           text: str, expected: list[tuple[int, str, str]]) -> None:
    """Problems of several kinds (YAML, values, files, batches, whole jobs) are all listed by one run, located."""
    write_inputs(tmp_path)
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    extra = ["--emulator", "--out", str(tmp_path / "out")] if command == "run" else []
    found = reported(capsys, [command, str(path), *extra], path)
    assert len(found) == len(expected), found
    for line, where, words in expected:
        assert any((line, where) == (f[0], f[1]) and words in f[2] for f in found), (line, where, words, found)
    assert [f[0] for f in found] == sorted(f[0] for f in found)
    if command == "run":
        assert not (tmp_path / "out").exists()  # nothing was started


def test_job_numbers_are_left_out_when_unsure(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """When a bad part changes how many jobs there are, a message names no job number (nor count) it cannot know."""
    write_inputs(tmp_path)
    path = tmp_path / "m.yaml"
    path.write_text("inputs: {video: clip.mp4}\nprompts: [a]\nbatches:\n  - 3\n  - defaults: {width: 64}\n"
                    "  - {defaults: {height: 64}, seeds: lots}\n")
    found = reported(capsys, ["plan", str(path)], path)
    unpaired = sorted(f[2] for f in found if "is set without" in f[2])
    assert unpaired == ["height is set without width in batch 'batch-2'",  # its own count is unknown
                        "width is set without height in batch 'batch-1' (1 job)"], found  # its first index is


def test_a_bad_value_skips_only_the_checks_resting_on_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A height that fails its own check is not reported again as 'width without height', nor a repeated
    sweep value as duplicate jobs."""
    write_inputs(tmp_path)
    path = tmp_path / "m.yaml"
    path.write_text("inputs: {video: clip.mp4}\nprompts: [a]\ndefaults: {width: 640, height: 9999}\n"
                    "sweep: {fps: [12, 12]}\n")
    found = reported(capsys, ["plan", str(path)], path)
    assert [(f[0], f[1]) for f in found] == [(3, "defaults.height"), (4, "sweep.fps[1]")], found
