"""Table tests of the contact sheet's pure layout (pipeline.report.grid, pipeline.report.axes): axes, groups, seed strips,
the cell's axes, manifest value order, axes the run does not sweep."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from pipeline.errors import InputError
from pipeline.report.axes import manifest_order
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
    (sweep(prompts=("a", "b", "c", "d"), videoStrength=[0.4, 0.8, 1], modality=["none", "depth"]), None, None,
     ("videoStrength", "modality", ())),  # more prompts than values: still the parameters, prompts in the cell
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


def test_groups_one_grid_per_combination_in_manifest_order() -> None:
    """Every other swept axis makes one grid per combination, headed by its values, all in the manifest's order."""
    jobs = sweep(videoStrength=[0.8, 0.4, 1], modality=["depth", "none"], cameraMotion=["jib_up", "none"],
                 guidanceScale=[4, 2.5])
    (section,) = layout(jobs).sections
    assert section.groups == ("cameraMotion", "guidanceScale")
    assert [grid.heading for grid in section.grids] == [
        (("cameraMotion", "jib_up"), ("guidanceScale", 4)), (("cameraMotion", "jib_up"), ("guidanceScale", 2.5)),
        (("cameraMotion", "none"), ("guidanceScale", 4)), (("cameraMotion", "none"), ("guidanceScale", 2.5))]
    grid = section.grids[0]
    assert grid.row_values == (0.8, 0.4, 1) and grid.col_values == ("depth", "none")
    assert all(len(cell) == 1 for row in grid.cells for cell in row)


def test_zipped_values_keep_the_manifest_order() -> None:
    """`width: [1280, 768, 1024]` zipped with height stays 1280, 768, 1024 (it was sorted to 768, 1024, 1280)."""
    jobs = []
    for strength in (0.5, 0.9):
        for width, height in ((1280, 768), (768, 1280), (1024, 1024)):
            for seed in (1, 2):
                jobs.append(job(len(jobs), seed=seed, swept={"videoStrength": strength, "width": width,
                                                             "height": height, "seed": seed}))
    (section,) = layout(jobs).sections
    (grid,) = section.grids
    assert (section.rows, section.cols) == ("width", "videoStrength")
    assert grid.row_values == (1280, 768, 1024)
    assert section.cell == ("seed",)


def test_prompts_and_seeds_are_the_cells_axes() -> None:
    """Several prompts and seeds per (row, column): the cell holds one job of each, in job index order."""
    jobs = sweep(prompts=("a", "b"), seeds=(7, 8), videoStrength=[0.4, 0.6, 0.8], modality=["none", "depth", "pose"])
    sheet = layout(jobs)
    (section,) = sheet.sections
    assert (section.rows, section.cols, section.groups, section.cell) == \
        ("videoStrength", "modality", (), ("prompt", "seed"))
    assert sheet.choices == (("prompt", ("a", "b")), ("seed", (7, 8)))
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


def ordered(name: str, jobs: list[dict[str, Any]]) -> tuple[Any, ...]:
    return manifest_order(name, sorted(jobs, key=lambda j: j["index"]))


@pytest.mark.parametrize(("axes", "name", "expected"), [
    ({"videoStrength": [0.8, 0.4, 1, 0.6]}, "videoStrength", (0.8, 0.4, 1, 0.6)),
    ({"numInferenceSteps": [10, 9, 100, 30]}, "numInferenceSteps", (10, 9, 100, 30)),
    ({"modality": ["depth", "none", "canny"]}, "modality", ("depth", "none", "canny")),
    ({"enhancePrompt": [True, False]}, "enhancePrompt", (True, False)),
    ({"videoStrength": [1, 0.5], "modality": ["pose", "none"]}, "modality", ("pose", "none")),
])
def test_values_in_manifest_order(axes: dict[str, list[Any]], name: str, expected: tuple[Any, ...]) -> None:
    """Axis values come in the manifest's order, as written (not sorted), for sweep keys outer and inner."""
    assert ordered(name, sweep(**axes)) == expected


def test_manifest_order_survives_missing_jobs() -> None:
    """Jobs missing from the start of a run (a journal that knows only some) do not reorder an inner axis."""
    jobs = sweep(width=[1280, 768], videoStrength=[0.9, 0.3, 0.6])
    partial = [j for j in jobs if not (j["swept"]["width"] == 1280 and j["swept"]["videoStrength"] in (0.9, 0.3))]
    assert [j["swept"]["videoStrength"] for j in partial][:2] == [0.6, 0.9]  # first appearance would say 0.6 first
    assert ordered("videoStrength", partial) == (0.9, 0.3, 0.6)
    assert ordered("width", partial) == (1280, 768)


def test_values_mixed_kinds_and_identity() -> None:
    """1 and 1.0 are one value, True is not 1; unset is a value like the others."""
    jobs = [job(i, swept={"x": v}, params={"negativePrompt": v}) for i, v in enumerate(["b", None, "a", "b"])]
    assert ordered("negativePrompt", jobs) == ("b", None, "a")
    jobs = sweep(videoStrength=[1, 1.0, 0.5])
    assert ordered("videoStrength", jobs) == (1, 0.5)


@pytest.mark.parametrize(("name", "message"), [
    ("videoStrenght", "--rows: unknown parameter 'videoStrenght' (did you mean 'videoStrength'?). "
                      "Axes this run sweeps: videoStrength, modality"),
    ("zzzz", "--rows: unknown parameter 'zzzz'. Axes this run sweeps: videoStrength, modality"),
    ("guidanceScale", "--rows: 'guidanceScale' is not swept in this run: every job has guidanceScale 3. "
                      "Axes this run sweeps: videoStrength, modality"),
    ("seed", "--rows: 'seed' is not swept in this run: every job has seed 1. Axes this run sweeps"),
    ("batch", "--rows: 'batch' is not swept in this run: every job has batch main."),
])
def test_an_axis_the_run_does_not_sweep_is_an_input_error(name: str, message: str) -> None:
    """--rows/--cols naming a typo or a parameter every job shares is an InputError (exit 2) listing the axes."""
    jobs = sweep(videoStrength=[0.4, 0.8], modality=["none", "depth"])
    with pytest.raises(InputError) as caught:
        layout(jobs, rows=name)
    assert message in str(caught.value) and caught.value.exit_status == 2
    with pytest.raises(InputError, match="--cols: "):
        layout(jobs, cols=name)


def test_zip_partners_share_one_filter() -> None:
    """width and height zipped together make one group heading pair but a single filter (width's)."""
    jobs = []
    for width, height in ((1280, 768), (768, 1280)):
        for strength in (0.4, 0.8):
            for modality in ("none", "depth"):
                jobs.append(job(len(jobs), swept={"width": width, "height": height, "videoStrength": strength,
                                                  "modality": modality}))
    sheet = layout(jobs, rows="videoStrength", cols="modality")
    assert sheet.sections[0].groups == ("width", "height")
    assert [name for name, _ in sheet.filters] == ["width"]


def test_same_rows_and_cols_is_an_input_error() -> None:
    """--rows and --cols naming the same parameter is refused."""
    with pytest.raises(InputError, match="both 'modality'"):
        layout(sweep(modality=["none", "depth"]), rows="modality", cols="modality")
