"""results.json keeps its jobs part, and results.csv stays as it is, when a session's records are those they were
written from (a no-op resume); any change to a record, to the manifest or to the files on disk rewrites both."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from run_helpers import run, write_manifest

from pipeline.ledger.results import RESULTS_NAME, write_results
from pipeline.ledger.results_csv import CSV_NAME

RUN = {"name": "t", "sessions": 1}


def _records(count: int = 3, status: str = "downloaded") -> list[dict[str, Any]]:
    return [{"key": f"{i:064x}", "index": i, "batch": "main", "status": status, "params": {"prompt": f"p{i} ☃"},
             "files": [{"path": f"videos/{i}.mp4", "bytes": 10, "sha256": "d" * 64}]} for i in range(count)]


def _identity(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


def _written(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / RESULTS_NAME).read_text(encoding="utf-8"))


def test_the_same_mark_rewrites_only_the_run_part(tmp_path: Path) -> None:
    """With the mark it was written with, results.json gets the new run part and the same jobs (not read from the
    records given), and results.csv is not touched."""
    write_results(tmp_path, RUN, _records(), mark="m1")
    csv_before = _identity(tmp_path / CSV_NAME)
    first = _written(tmp_path)

    def never() -> Any:
        raise AssertionError("the records were read")
        yield

    write_results(tmp_path, {**RUN, "sessions": 2}, never(), mark="m1")
    second = _written(tmp_path)
    assert second["run"]["sessions"] == 2 and second["jobs"] == first["jobs"] == _records()
    assert second["jobs_mark"] == first["jobs_mark"]
    assert _identity(tmp_path / CSV_NAME) == csv_before
    assert sorted(p.name for p in tmp_path.iterdir()) == [CSV_NAME, RESULTS_NAME]  # no temporary left


@pytest.mark.parametrize("change", ["another mark", "csv edited", "csv removed", "jobs edited", "no mark before",
                                    "other columns", "empty jobs part"])
def test_anything_different_rewrites_both_files(tmp_path: Path, change: str) -> None:
    """Another mark (a record changed), results.csv or the jobs part edited or gone, a file written without a mark,
    or other CSV columns: both files are written whole from the records."""
    records = _records(0 if change == "empty jobs part" else 3)
    write_results(tmp_path, RUN, records, mark=None if change == "no mark before" else "m1")
    csv_text = (tmp_path / CSV_NAME).read_text()
    if change == "csv edited":
        (tmp_path / CSV_NAME).write_text(csv_text.replace("downloaded", "failed", 1))
    elif change == "csv removed":
        (tmp_path / CSV_NAME).unlink()
    elif change == "jobs edited":  # the same length: only the digest tells
        data = (tmp_path / RESULTS_NAME).read_bytes()
        (tmp_path / RESULTS_NAME).write_bytes(data.replace(b'"p1 ', b'"q1 '))
    run = {**RUN, "parameters": {"values": ["prompt"], "files": []}} if change == "other columns" else RUN
    now = _records(3, status="failed") if change == "another mark" else _records(
        0 if change == "empty jobs part" else 3)
    write_results(tmp_path, run, now, mark="m2" if change == "another mark" else "m1")
    assert _written(tmp_path)["jobs"] == now
    if change == "empty jobs part":  # nothing to tell apart: reused, and still valid JSON
        assert (tmp_path / CSV_NAME).read_text() == csv_text
    elif change in ("another mark", "other columns"):
        assert (tmp_path / CSV_NAME).read_text() != csv_text
    else:
        assert (tmp_path / CSV_NAME).read_text() == csv_text


async def test_a_no_op_resume_leaves_results_csv_and_the_jobs_part_alone(tmp_path: Path, emulator_factory) -> None:
    """Resuming a finished run: results.csv is the same file (inode, mtime), results.json the same jobs with a new
    run part (two sessions); after a downloaded file goes missing, the resume fetches it again and rewrites both."""
    server = await emulator_factory()
    path = write_manifest(tmp_path)
    first = await run(path, server, tmp_path / "out")
    assert first.exit_status == 0
    run_dir = first.run_dir
    before, csv_before = _written(run_dir), _identity(run_dir / CSV_NAME)
    again = await run(path, server, tmp_path / "out")
    assert again.exit_status == 0
    after = _written(run_dir)
    assert after["jobs"] == before["jobs"] and after["run"]["sessions"] == 2
    assert _identity(run_dir / CSV_NAME) == csv_before
    lost = run_dir / before["jobs"][0]["files"][0]["path"]
    os.unlink(lost)
    third = await run(path, server, tmp_path / "out")
    assert third.exit_status == 0 and lost.exists()
    rewritten = _written(run_dir)
    assert rewritten["jobs"][0]["timings"]["downloaded_at"] != before["jobs"][0]["timings"]["downloaded_at"]
    assert rewritten["jobs"][1:] == before["jobs"][1:]
    assert _identity(run_dir / CSV_NAME) != csv_before


async def test_an_edited_manifest_rewrites_the_records(tmp_path: Path, emulator_factory) -> None:
    """A manifest that gains jobs (the journal's job events unchanged until they run) gets their records; one
    changed only where the key does not look (a batch name) too."""
    server = await emulator_factory()
    path = write_manifest(tmp_path, prompts=1, seeds=1)
    first = await run(path, server, tmp_path / "out")
    assert first.exit_status == 0 and len(_written(first.run_dir)["jobs"]) == 2
    write_manifest(tmp_path, prompts=1, seeds=2)
    grown = await run(path, server, tmp_path / "out")
    assert grown.exit_status == 0 and len(_written(first.run_dir)["jobs"]) == 4
    text = path.read_text()  # the same jobs, in a batch of another name
    path.write_text("name: t\nbatches:\n  - name: renamed\n" + "\n".join(
        "    " + line for line in text.splitlines() if not line.startswith("name:")) + "\n")
    renamed = await run(path, server, tmp_path / "out")
    assert renamed.exit_status == 0
    assert {job["batch"] for job in _written(first.run_dir)["jobs"]} == {"renamed"}
