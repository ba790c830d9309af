"""Table tests of the contact sheet's pure layout (pipeline.report.grid, pipeline.report.axes): axes, groups, seed strips,
value order."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from pipeline.errors import InputError
from pipeline.report.axes import check_axis, ordered_values
from pipeline.report.grid import POSITION, SETTING, is_seed_study, layout, swept_axes
from runfolder import job


def sweep(seeds: tuple[int, ...] = (1,), prompts: tuple[str, ...] = ("p",), batch: str = "main",
          start: int = 0, **axes: list[Any]) -> list[dict[str, Any]]:
    """Records of a full cartesian sweep, expanded in manifest order (prompts, then axes, then seeds)."""
    out = []
    names = list(axes)
    for p, prompt in enumerate(prompts):
        for combo in itertools.product(*axes.values()):
            for seed in seeds:
                swept: dict[str, Any] = {"prompt": p} if len(prompts) > 1 else {}
                swept.update(zip(names, combo))
                if len(seeds) > 1:
                    swept["seed"] = seed
                out.append(job(start + len(out), prompt=prompt, seed=seed, swept=swept, batch=batch))
    return out


@pytest.mark.parametrize(("jobs", "rows", "cols", "expected"), [
    (sweep(videoStrength=[0.4, 0.6, 0.8], modality=["none", "depth"]), None, None,
     ("videoStrength", "modality", ())),
    (sweep(modality=["none", "depth"], videoStrength=[0.4, 0.6, 0.8]), None, None,
     ("videoStrength", "modality", ())),
    (sweep(prompts=("a", "b", "c"), videoStrength=[0.4, 0.6, 0.8]), None, None, ("videoStrength", "prompt", ())),
    (sweep(videoStrength=[0.4, 0.8, 1], modality=["none", "depth"], cameraMotion=["none", "jib_up"]), None, None,
     ("videoStrength", "modality", ("cameraMotion",))),
    (sweep(videoStrength=[0.4, 0.8]), None, None, (None, "videoStrength", ())),
    (sweep(seeds=(1, 2, 3), videoStrength=[0.4, 0.8]), None, None, ("videoStrength", "seed", ())),
    (sweep(seeds=(1, 2), videoStrength=[0.4, 0.8], modality=["none", "depth"]), None, None,
     ("videoStrength", "modality", ())),
    (sweep(videoStrength=[0.4, 0.8, 1], modality=["none", "depth"]), "modality", "videoStrength",
     ("modality", "videoStrength", ())),
    (sweep(videoStrength=[0.4, 0.8, 1], modality=["none", "depth"], fps=[12, 24]), "fps", None,
     ("fps", "videoStrength", ("modality",))),
    (sweep(videoStrength=[0.4, 0.8, 1], modality=["none", "depth"], fps=[12, 24]), None, "fps",
     ("videoStrength", "fps", ("modality",))),
    (sweep(videoStrength=[0.4, 0.8]), "guidanceScale", None, ("guidanceScale", "videoStrength", ())),
])
def test_axis_choice(jobs: list[dict[str, Any]], rows: str | None, cols: str | None,
                     expected: tuple[str | None, str | None, tuple[str, ...]]) -> None:
    """Rows get the swept axis with the most values, columns the next (real parameters win ties); the rest group."""
    sheet = layout(jobs, rows=rows, cols=cols)
    (section,) = sheet.sections
    assert (section.rows, section.cols, section.groups) == expected
    assert sorted(p for grid in section.grids for row in grid.cells for cell in row for p in cell) == \
        list(range(len(jobs)))


def test_zipped_partner_is_never_the_other_axis() -> None:
    """Zipped width/height do not make a diagonal grid: height rides along with width in its header."""
    jobs = []
    for width, height in ((1280, 768), (768, 1280), (1024, 1024)):
        for strength in (0.5, 0.9):
            jobs.append(job(len(jobs), swept={"videoStrength": strength, "width": width, "height": height}))
    (section,) = layout(jobs).sections
    assert (section.rows, section.cols, section.groups) == ("width", "videoStrength", ())
    assert section.companions == {"width": ("height",), "videoStrength": ()}


def test_groups_one_grid_per_combination_in_value_order() -> None:
    """Every other swept axis makes one grid per combination, headed by its values, in value order."""
    jobs = sweep(videoStrength=[0.8, 0.4, 1], modality=["depth", "none"], cameraMotion=["jib_up", "none"],
                 guidanceScale=[4, 2.5])
    (section,) = layout(jobs).sections
    assert section.groups == ("cameraMotion", "guidanceScale")
    assert [grid.heading for grid in section.grids] == [
        (("cameraMotion", "none"), ("guidanceScale", 2.5)), (("cameraMotion", "none"), ("guidanceScale", 4)),
        (("cameraMotion", "jib_up"), ("guidanceScale", 2.5)), (("cameraMotion", "jib_up"), ("guidanceScale", 4))]
    grid = section.grids[0]
    assert grid.row_values == (0.4, 0.8, 1) and grid.col_values == ("none", "depth")
    assert all(len(cell) == 1 for row in grid.cells for cell in row)


def test_prompts_and_seeds_stack_in_a_cell() -> None:
    """Several prompts and seeds per (row, column) stack in the cell, in job index order."""
    jobs = sweep(prompts=("a", "b"), seeds=(7, 8), videoStrength=[0.4, 0.6, 0.8], modality=["none", "depth", "pose"])
    (section,) = layout(jobs).sections
    assert (section.rows, section.cols, section.groups) == ("videoStrength", "modality", ())
    (grid,) = section.grids
    cell = grid.cells[0][0]
    assert [jobs[p]["prompt"] for p in cell] == ["a", "a", "b", "b"]
    assert [jobs[p]["seed"] for p in cell] == [7, 8, 7, 8]


@pytest.mark.parametrize(("jobs", "strips"), [
    (sweep(seeds=(5, 6, 7, 8)), True),
    ([job(0, seed=3), job(1, seed=9), job(2, seed=4)], True),  # all share params but the seed, none swept
    (sweep(seeds=(1, 2), prompts=("a", "b")), False),  # prompts x seeds: rows are prompts, columns seeds
    (sweep(seeds=(1, 2), videoStrength=[0.4, 0.8]), False),
    (sweep(videoStrength=[0.4, 0.8]), False),
    ([job(0, seed=3)], False),
])
def test_seed_study_detection(jobs: list[dict[str, Any]], strips: bool) -> None:
    """A seed study (only the seed swept, or only the seed differs) lays out as strips."""
    assert is_seed_study(jobs, swept_axes(jobs)) == strips
    (section,) = layout(jobs).sections
    assert section.kind == ("strips" if strips else "grid")


def test_seed_strips_one_row_per_setting_seeds_along() -> None:
    """Two settings with the same seeds: one strip each, the seeds as columns, labelled by what differs."""
    jobs = [job(i, prompt=prompt, seed=seed, swept={"seed": seed}, batch=prompt[:1])
            for i, (prompt, seed) in enumerate(itertools.product(["cat", "dog"], [10, 11, 12]))]
    sheet = layout(jobs)
    assert [s.heading for s in sheet.sections] == [(("batch", "c"),), (("batch", "d"),)]
    section = sheet.sections[0]
    assert (section.kind, section.rows, section.cols) == ("strips", SETTING, "seed")
    (grid,) = section.grids
    assert grid.col_values == (10, 11, 12)
    assert [[jobs[p]["seed"] for cell in row for p in cell] for row in grid.cells] == [[10, 11, 12]]
    assert list(section.row_labels.values()) == ["cat"]


def test_seed_strips_with_different_seed_lists_use_positions() -> None:
    """Strips whose seeds differ line up by position (#1, #2, ...), shorter strips leave cells empty."""
    jobs = [job(0, prompt="a", seed=1, swept={"prompt": 0, "seed": 1}), job(1, prompt="a", seed=2, swept={"seed": 2}),
            job(2, prompt="b", seed=5, swept={"prompt": 1, "seed": 5})]
    (section,) = layout(jobs, rows=None).sections
    assert section.kind == "grid"  # prompt and seed swept: rows are prompts, columns seeds
    jobs = [job(0, seed=1, swept={"seed": 1}), job(1, seed=2, swept={"seed": 2}),
            job(2, seed=5, swept={"seed": 5}, params={"fps": 12})]
    (section,) = layout(jobs).sections
    assert (section.kind, section.cols) == ("strips", POSITION)
    (grid,) = section.grids
    assert grid.col_values == (1, 2)
    assert [[len(c) for c in row] for row in grid.cells] == [[1, 1], [1, 0]]
    assert list(section.row_labels.values()) == ["fps=unset", "fps=12"]


def test_batches_get_sections_with_their_own_axes() -> None:
    """Batches that sweep different things are laid out one section each, on their own axes."""
    jobs = sweep(batch="strength", videoStrength=[0.4, 0.8, 1], modality=["none", "depth"])
    jobs += sweep(batch="camera", start=len(jobs), cameraMotion=["none", "jib_up", "dolly_in"], fps=[12, 24])
    sheet = layout(jobs)
    assert [(s.heading, s.rows, s.cols) for s in sheet.sections] == [
        ((("batch", "strength"),), "videoStrength", "modality"), ((("batch", "camera"),), "cameraMotion", "fps")]
    assert [name for name, _ in sheet.filters][:1] == ["batch"]
    (together,) = layout(jobs, cols="batch").sections
    assert together.cols == "batch" and together.heading == ()


@pytest.mark.parametrize(("name", "values", "expected"), [
    ("videoStrength", [0.8, 0.4, 1, 0.6], (0.4, 0.6, 0.8, 1)),
    ("numInferenceSteps", [10, 9, 100, 30], (9, 10, 30, 100)),  # numeric, not text order
    ("modality", ["depth", "none", "canny"], ("none", "canny", "depth")),  # the table's enum order
    ("negativePrompt", ["zeta", "alpha", "mid"], ("zeta", "alpha", "mid")),  # free text: first appearance
    ("width", [None, 1280, 768], (768, 1280, None)),  # unset last
    ("enhancePrompt", [True, False, True], (False, True)),
    ("videoStrength", [1, 1.0, 0.5], (0.5, 1)),  # 1 and 1.0 are one value
    ("x", ["b", 2, None, True, "a", 1.5], (True, 1.5, 2, "b", "a", None)),  # mixed kinds: bool, number, text, unset
    ("x", [True, 1], (True, 1)),  # True is not 1
])
def test_value_order(name: str, values: list[Any], expected: tuple[Any, ...]) -> None:
    """Axis values: booleans, then numbers ascending, then enum order or first appearance, then unset."""
    got = ordered_values(name, values)
    assert got == expected and [type(v) for v in got] == [type(v) for v in expected]


@pytest.mark.parametrize(("name", "message"), [
    ("videoStrenght", "did you mean 'videoStrength'?"),
    ("Modality", "did you mean 'modality'?"),
    ("zzzz", "choose from batch, video, videoStrength,"),
])
def test_unknown_axis_is_an_input_error(name: str, message: str) -> None:
    """An unknown --rows/--cols name is an InputError (exit 2) with a suggestion."""
    with pytest.raises(InputError, match="--rows: unknown parameter") as caught:
        check_axis(name, flag="--rows")
    assert message in str(caught.value) and caught.value.exit_status == 2


def test_same_rows_and_cols_is_an_input_error() -> None:
    """--rows and --cols naming the same parameter is refused."""
    with pytest.raises(InputError, match="both 'modality'"):
        layout(sweep(modality=["none", "depth"]), rows="modality", cols="modality")
