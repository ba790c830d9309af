"""YAML traps get hints in the located messages: quote a text with ',' or ': ', indent with spaces,
`seeds: N` is one seed, and a near-miss of an allowed value names the value meant."""

from __future__ import annotations

from pathlib import Path

import pytest
from manifest_helpers import load_text, problems_of, write_inputs

from pipeline.cli.main import main

HEAD = "inputs: {video: clip.mp4}\nprompts: [a]\n"  # lines 1-2

CASES = [
    # (id, manifest, line, where, words in the message)
    ("comma in a flow-style prompt", "inputs: {video: clip.mp4}\nprompts:\n"
     "  - {prompt: A station, neon signs, negativePrompt: x}\n", 3, "prompts[0].neon signs",
     "unknown parameter 'neon signs' (a comma ends a value inside {...}: quote the prompt, "
     'e.g. prompt: "A station, neon signs")'),
    ("commas in a flow-style negativePrompt", HEAD + "defaults: {negativePrompt: blurry, low, grainy, fps: 3}\n",
     3, "defaults.low", 'quote the negativePrompt, e.g. negativePrompt: "blurry, low, grainy"'),
    ("': ' in a prompt of a list", "inputs: {video: clip.mp4}\nprompts:\n  - A harbour: at dusk\n", 3, "prompts[0]",
     "if this is a prompt with ': ' in it, quote it, e.g. - \"A harbour: at dusk\""),
    ("': ' in a prompt of a flow list", "inputs: {video: clip.mp4}\nprompts: [a, A harbour: at dusk]\n", 2,
     "prompts[1]", "quote it, e.g. - \"A harbour: at dusk\""),
    ("a text parameter got a mapping", "inputs: {video: clip.mp4}\nprompts:\n  - prompt:\n      A harbour: at dusk\n",
     3, "prompts[0].prompt", 'must be a string, not a mapping (a \': \' inside unquoted text makes YAML read a '
     'mapping: quote the prompt, e.g. prompt: "A harbour: at dusk")'),
    ("': ' in a block value", "inputs: {video: clip.mp4}\nprompts:\n  - prompt: A harbour: at dusk\n", 3, "",
     "YAML syntax error: a ': ' inside an unquoted value starts a new key; quote the text "
     '(prompt: "A harbour: at dusk")'),
    ("': ' in a flow value", "inputs: {video: clip.mp4}\nprompts: [{prompt: A: b}]\n", 2, "",
     "a ': ' inside an unquoted value starts a new key; quote the text"),
    ("tab indentation", HEAD + "defaults:\n\tfps: 1\n", 4, "",
     "YAML syntax error: the line is indented with a tab: indent with spaces"),
    ("tab after a key", HEAD + "defaults:\n  fps:\t1\n", 4, "", "a tab at column 7: use spaces"),
    ("indented less than its siblings", HEAD + "defaults:\n  fps: 1\n guidanceScale: 3\n", 5, "",
     "line 5 is indented by 1 space and the key on line 4 by 2: keys of one mapping, and items of one list, "
     "must line up"),
    ("indented more than its siblings", HEAD + "defaults:\n  fps: 1\n    guidanceScale: 3\n", 5, "",
     "line 5 is indented further than the key on line 4 (4 spaces, not 2), so YAML reads it as part of "
     "line 4's value"),
    ("list item out of line", "inputs: {video: clip.mp4}\nprompts:\n  - a\n - b\n", 4, "",
     "line 4 is indented by 1 space and the item on line 3 by 2"),
    ("key under a list item indented too far", "inputs: {video: clip.mp4}\nprompts:\n  - prompt: b\n      fps: 3\n",
     4, "", "line 4 is indented further than the key on line 3 (6 spaces, not 4)"),
    ("no space after ':'", HEAD + "defaults:\n  fps:1\n", 3, "defaults", "(put a space after the ':' of each key)"),
    ("no ':' after a key", HEAD + "defaults:\n  fps: 1\n  guidanceScale 3\n", 5, "",
     "expected 'key: value' or '- item' (with a space after ':' and '-'), not 'guidanceScale 3'"),
    ("resolution 720", HEAD + "defaults: {resolution: 720}\n", 3, "defaults.resolution", "(did you mean '720p'?)"),
    ("resolution 1080 in a sweep", HEAD + "sweep: {resolution: [720p, 1080]}\n", 3, "sweep.resolution[1]",
     "(did you mean '1080p'?)"),
    ("resolution '1440'", HEAD + "defaults: {resolution: '1440'}\n", 3, "defaults.resolution",
     "(did you mean '1440p'?)"),
    ("aspect ratio read as base 60", HEAD + "defaults: {aspectRatio: 16:9}\n", 3, "defaults.aspectRatio",
     "YAML reads an unquoted 16:9 as the base-60 number 969: quote it, aspectRatio: '16:9'"),
    ("off read as a boolean", HEAD + "defaults: {audioSource: off}\n", 3, "defaults.audioSource",
     "YAML reads an unquoted yes, no, on, off, true or false as a boolean: quote the text"),
    ("quoted number", HEAD + "defaults: {guidanceScale: '4'}\n", 3, "defaults.guidanceScale",
     "(write the number without quotes)"),
]


@pytest.mark.parametrize(("text", "line", "where", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_trap_gets_a_hint(tmp_path: Path, text: str, line: int, where: str, words: str) -> None:
    """Each YAML trap is reported at its line and place with a hint naming the cause and the fix."""
    problems = problems_of(tmp_path, text)
    found = [p for p in problems if words in p.message]
    assert found, [str(p) for p in problems]
    assert (found[0].line, found[0].where) == (line, where), str(found[0])


def test_comma_hint_replaces_a_guess(tmp_path: Path) -> None:
    """A piece of a text cut at a comma gets the quoting hint, not a 'did you mean' guessed from the piece."""
    problems = problems_of(tmp_path, HEAD + "defaults: {negativePrompt: blurry, low quality}\n")
    assert len(problems) == 1 and "did you mean" not in problems[0].message, problems


def test_no_hint_for_a_plain_unknown_key(tmp_path: Path) -> None:
    """An unknown key with a value (or in block style) keeps its suggestion and gets no quoting hint."""
    problems = problems_of(tmp_path, HEAD + "defaults: {videoStrenght: 1}\nsweep:\n  neon signs:\n")
    assert "did you mean 'videoStrength'" in problems[0].message and "quote" not in problems[0].message
    assert "quote" not in problems[1].message


@pytest.mark.parametrize(("seeds", "jobs", "warned"), [("3", 1, True), ("[3]", 1, False), ("{count: 3}", 3, False),
                                                       ("1", 1, False), ("42", 1, True)])
def test_single_seed_warns_about_count(tmp_path: Path, seeds: str, jobs: int, warned: bool) -> None:
    """`seeds: N` (N >= 2) is the one seed N, with a warning naming {count: N}; `[N]` and `{count: N}` do not warn."""
    manifest = load_text(tmp_path, HEAD + f"seeds: {seeds}\n")
    assert manifest.job_count == jobs
    messages = [w.message for w in manifest.warnings]
    if warned:
        n = seeds
        assert [(w.where, w.line) for w in manifest.warnings] == [("seeds", 3)]
        assert messages == [f"is the one seed {n}; for {n} seeds write seeds: {{count: {n}}} (seeds 0..{int(n) - 1}) "
                            f"or {{count: {n}, from: 1000}}; write seeds: [{n}] to keep the one seed without this "
                            "warning"]
    else:
        assert messages == []


def test_plan_shows_the_seed_warning(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`plan` prints the seeds warning, located, and still exits 0 (a warning is not an error)."""
    write_inputs(tmp_path)
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + "seeds: 3\n")
    status = main(["plan", str(path), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert status == 0
    assert f"warning   {path}:3: seeds: is the one seed 3; for 3 seeds write seeds: {{count: 3}}" in out


IDLE_CASES = [
    # (id, manifest after HEAD's video, expected warnings as (where, line, words))
    ("a strength swept with its modality none", "prompts: [a]\nsweep:\n  modalityStrength: [0.5, 1, 1.5]\n"
     "seeds: [1, 2]\n", [("sweep.modalityStrength", 4, "swept where modality is 'none' (4 jobs, e.g. job 2)")]),
    ("camera motion strength, motion none, seeds chosen by the tool", "prompts: [a, b]\nsweep:\n"
     "  cameraMotionStrength: [0.5, 2]\n", [("sweep.cameraMotionStrength", 4, "swept where cameraMotion is 'none' "
                                            "(2 jobs, e.g. job 1)")]),
    ("strength zipped with what differs", "prompts: [a]\nzip:\n  cameraMotionStrength: [0.5, 2]\n"
     "  guidanceScale: [3, 4]\n", []),
    ("swept together with its modality", "prompts: [a]\nsweep:\n  modality: [none, depth]\n"
     "  modalityStrength: [0.5, 1]\n", [("sweep.modalityStrength", 5, "swept where modality is 'none' (job 1)")]),
    ("modality set: no warning", "prompts: [a]\ndefaults: {modality: canny}\nsweep:\n  modalityStrength: [0.5, 1]\n",
     []),
    ("one value: no warning", "prompts: [a]\ndefaults: {modalityStrength: 0.5}\nseeds: [1, 2]\n", []),
]


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in IDLE_CASES], ids=[c[0] for c in IDLE_CASES])
def test_a_strength_swept_where_what_it_strengthens_is_none_is_warned(tmp_path: Path, text: str,
                                                                      expected: list[tuple[str, int, str]]) -> None:
    """Sweeping modalityStrength with modality 'none' (or cameraMotionStrength with cameraMotion 'none') makes jobs
    that most likely render the same video, each paid for: a located warning counts them; none when it is set."""
    manifest = load_text(tmp_path, "inputs: {video: clip.mp4}\n" + text)
    found = [(w.where, w.line, w.message) for w in manifest.warnings]
    assert len(found) == len(expected), found
    for (where, line, message), (want_where, want_line, words) in zip(found, expected):
        assert (where, line) == (want_where, want_line) and words in message, found
