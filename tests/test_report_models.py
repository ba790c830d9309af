"""The contact sheet of runs of models other than LTX-2 19B (issue 15): LTX-2.3 22B sweeping
`conditioningAttentionStrength`, Seedance 2.0 with `referenceVideos` file arrays and no seed. Axes, cells, setting
labels, the input axis, shown file names, fixed settings and the CSV the report rewrites follow the run's models'
parameters (`run["parameters"]`, the records), not LTX-2 19B's table."""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from runfolder import job

from pipeline.emulator.catalog import LTX23_V2V_ID, SEEDANCE_ID
from pipeline.errors import InputError
from pipeline.ledger.results import write_results
from pipeline.report.axes import value_of
from pipeline.report.grid import SETTING, layout
from pipeline.report.page import write_report
from pipeline.report.tiles import shown

LTX23_VALUES = ["prompt", "videoStrength", "imageStrength", "resolution", "duration", "aspectRatio", "fps",
                "audioSource", "modality", "modalityStrength", "conditioningAttentionStrength", "enhancePrompt",
                "seed"]
LTX23_RUN = {"name": "ltx23", "model": LTX23_V2V_ID,
             "parameters": {"values": LTX23_VALUES, "files": ["video", "image", "conditioningVideo"]}}
SEEDANCE_RUN = {"name": "refs", "model": SEEDANCE_ID,
                "parameters": {"values": ["prompt", "duration", "resolution", "aspectRatio", "generateAudio"],
                               "files": ["image", "lastFrameImage", "referenceImages", "referenceVideos",
                                         "referenceAudio"]}}


def ltx23(index: int, swept: Mapping[str, Any], *, seed: int = 7, params: Mapping[str, Any] | None = None,
          status: str = "downloaded") -> dict[str, Any]:
    """A record of LTX-2.3 22B: its parameters (conditioningAttentionStrength, no cameraMotion), a seed."""
    values = {"prompt": "a dog", "videoStrength": 1, "resolution": "auto", "modality": "none",
              "conditioningAttentionStrength": 1, "enhancePrompt": True, **(params or {}),
              **{k: v for k, v in swept.items() if k not in ("seed", "prompt")}, "seed": seed}
    record = job(index, prompt=str(values["prompt"]), seed=seed, swept=swept, status=status)
    record.update(model=LTX23_V2V_ID, params=dict(sorted(values.items())))
    return record


def refs(paths: Sequence[str], start: int = 0) -> list[dict[str, Any]]:
    """A `referenceVideos` file array's input records, in order."""
    return [{"param": "referenceVideos", "kind": "file", "path": f"/data/{path}", "sha256": path[0] * 64,
             "size_bytes": 10, "media": "video", "index": i, "asset_id": f"asset_{path[0]}"}
            for i, path in enumerate(paths, start)]


def seedance(index: int, videos: Sequence[str], swept: Mapping[str, Any], *, prompt: str = "a dance",
             status: str = "downloaded") -> dict[str, Any]:
    """A record of Seedance 2.0: no seed, a list of reference videos (the input axis when it varies)."""
    values = {"prompt": prompt, "duration": -1, "resolution": "720p", "generateAudio": True,
              **{k: v for k, v in swept.items() if k not in ("referenceVideos", "prompt")}}
    record = job(index, prompt=prompt, swept=swept, status=status, inputs=refs(videos))
    record.update(model=SEEDANCE_ID, params=dict(sorted(values.items())), seed=None)
    return record


LISTS = (("clip.mp4", "other.mp4"), ("clip.mp4", "third.mp4"), ("other.mp4",))


def seedance_sweep() -> list[dict[str, Any]]:
    """Three reference video lists (the input axis, named after `referenceVideos`) x duration (5, 10)."""
    jobs = []
    for videos, duration in itertools.product(LISTS, (5, 10)):
        jobs.append(seedance(len(jobs), videos, {"referenceVideos": ", ".join(videos), "duration": duration}))
    return jobs


def test_jobs_differing_in_a_file_array_are_different_cells() -> None:
    """Each job's referenceVideos list is its value on that axis (every file, in order): three lists make three
    columns (the file input ranks after the value parameter duration), one job per cell, shown by base names."""
    jobs = seedance_sweep()
    assert value_of(jobs[0], "referenceVideos") == ("/data/clip.mp4", "/data/other.mp4")
    sheet = layout(jobs, run=SEEDANCE_RUN)
    assert list(sheet.swept) == ["referenceVideos", "duration"]
    (section,) = sheet.sections
    assert (section.rows, section.cols, section.cell) == ("duration", "referenceVideos", ())
    (grid,) = section.grids
    assert [shown("referenceVideos", v) for v in grid.col_values] == [", ".join(v) for v in LISTS]
    assert [[len(cell) for cell in row] for row in grid.cells] == [[1, 1, 1], [1, 1, 1]]


def test_an_axis_is_any_parameter_of_the_runs_models() -> None:
    """--rows/--cols take a 22B parameter (swept: laid out; unswept: 'not swept', with its value; misspelt: a
    suggestion); Seedance takes no seed, so `seed` is unknown for its run."""
    jobs = [ltx23(i, {"conditioningAttentionStrength": s, "modality": m}, params={"videoStrength": 0.5})
            for i, (s, m) in enumerate(itertools.product((0.3, 0.9), ("none", "motion_track_control")))]
    (section,) = layout(jobs, rows="conditioningAttentionStrength", run=LTX23_RUN).sections
    assert (section.rows, section.cols) == ("conditioningAttentionStrength", "modality")
    assert section.grids[0].row_values == (0.3, 0.9)
    fixed = [ltx23(i, {"modality": m}, params={"conditioningAttentionStrength": 0.5})
             for i, m in enumerate(("none", "motion_track_control"))]
    with pytest.raises(InputError, match="--rows: 'conditioningAttentionStrength' is not swept in this run: every "
                                         "job has conditioningAttentionStrength 0.5. Axes this run sweeps: modality"):
        layout(fixed, rows="conditioningAttentionStrength", run=LTX23_RUN)
    with pytest.raises(InputError, match="did you mean 'conditioningAttentionStrength'"):
        layout(fixed, cols="conditioningAttentionStrenght", run=LTX23_RUN)
    with pytest.raises(InputError, match="--rows: unknown parameter 'seed'"):
        layout(seedance_sweep(), rows="seed", run=SEEDANCE_RUN)


def test_seed_strips_label_settings_by_any_parameter() -> None:
    """A seed study whose settings differ in a 22B parameter no sweep names (an edited default) labels each
    strip by that parameter's value, not by the prompt."""
    jobs = [ltx23(i, {"seed": seed}, seed=seed, params={"conditioningAttentionStrength": strength})
            for i, (strength, seed) in enumerate(itertools.product((0.3, 0.9), (1, 2, 3)))]
    (section,) = layout(jobs, run=LTX23_RUN).sections
    assert (section.kind, section.rows, section.cols) == ("strips", SETTING, "seed")
    assert sorted(section.row_labels.values()) == ["conditioningAttentionStrength=0.3",
                                                   "conditioningAttentionStrength=0.9"]


def test_page_of_a_seedless_file_array_run(tmp_path: Path) -> None:
    """Seedance's page: headers and the fixed line show reference videos by base name; no seed selector and no
    seed on tiles; nothing folded as 'the model default' (its defaults are not LTX-2 19B's); report rewrites
    results.csv in the schema's column order."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    jobs = seedance_sweep()
    write_results(run_dir, SEEDANCE_RUN, jobs)
    (run_dir / "results.csv").unlink()
    result = write_report(run_dir, posters=False)
    page = result.path.read_text(encoding="utf-8")
    headers = re.findall(r"<thead><tr>(.*?)</tr></thead>", page)[0]
    assert re.findall(r'<span class="long">(.*?)</span>', headers) == [", ".join(v) for v in LISTS]
    assert "/data/" not in headers and 'name="seed"' not in page and "data-s=\"\"" in page
    fixed = re.search(r'<div class="fixed">(.*?)</div>', page).group(1)
    assert "resolution <b>720p</b>" in fixed and "model default" not in fixed
    header = next(csv.reader(io.StringIO((run_dir / "results.csv").read_text(encoding="utf-8"))))
    values = header[header.index("error") + 1:header.index("image_path")]
    assert values == SEEDANCE_RUN["parameters"]["values"]
    assert header.index("referenceVideos_path") > header.index("image_path")


def test_fixed_line_of_a_22b_run_names_its_inputs_and_values(tmp_path: Path) -> None:
    """A 22B table's fixed line lists its file input by base name and its own parameters, none folded away as
    LTX-2 19B defaults (modality none is 19B's default, not known to be 22B's)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    jobs = [ltx23(i, {"conditioningAttentionStrength": s}) for i, s in enumerate((0.3, 0.9))]
    write_results(run_dir, LTX23_RUN, jobs)
    page = write_report(run_dir, posters=False).path.read_text(encoding="utf-8")
    fixed = re.search(r'<div class="fixed">(.*?)</div>', page).group(1)
    assert "video <b>clip.mp4</b>" in fixed and "modality <b>none</b>" in fixed and "details" not in fixed
