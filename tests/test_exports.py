"""Exports: results.csv (columns, quoting, written with results.json and by `report`) and rerun manifests
(key prefixes, --failed, the load_manifest round trip with identical keys, asset ids for vanished inputs)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from run_helpers import run
from runfolder import job, write_run

from pipeline.cli.main import main
from pipeline.emulator import EmulatorServer
from pipeline.errors import InputError
from pipeline.ledger.results_csv import CSV_COLUMNS, CSV_NAME, cell, csv_text
from pipeline.report.rerun import rerun_manifest, select_jobs
from pipeline.manifest.load import load_manifest
from pipeline.manifest.params import FILE_PARAMS, VALUE_PARAMS
from pipeline.ledger.rundir import load_run

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_csv_columns_follow_the_parameter_table() -> None:
    """One column per value parameter in table order, between the job's identity and its files and inputs."""
    assert CSV_COLUMNS[:8] == ("key", "index", "batch", "status", "job_id", "server_status", "error_kind", "error")
    assert CSV_COLUMNS[8:8 + len(VALUE_PARAMS)] == VALUE_PARAMS
    for param in FILE_PARAMS:
        assert {f"{param}_path", f"{param}_sha256", f"{param}_asset_id"} <= set(CSV_COLUMNS)
    assert {"files", "bytes", "sha256", "output_asset_ids"} <= set(CSV_COLUMNS)
    assert len(set(CSV_COLUMNS)) == len(CSV_COLUMNS)


@pytest.mark.parametrize(("value", "text"), [
    (None, ""), (True, "true"), (False, "false"), (0.8, "0.8"), (40, "40"), (2**53 - 1, "9007199254740991"),
    ("a, \"quoted\"\nline", "a, \"quoted\"\nline"),
])
def test_cell_values(value: Any, text: str) -> None:
    """Unset is empty, booleans are true/false, numbers and text as they are (the csv module quotes)."""
    assert cell(value) == text


def test_csv_rows_round_trip_hostile_text() -> None:
    """Commas, quotes, newlines and emoji in prompts survive a csv round trip; one row per job."""
    prompt = 'a "neon", city\nwith 🎬 and =SUM(A1) , ;'
    jobs = [job(0, prompt=prompt, swept={"videoStrength": 0.5}, params={"width": 1280, "height": 768}),
            job(1, prompt="b", status="failed", error="bad, \"very\"", error_kind="rejected")]
    rows = read_csv(csv_text(jobs))
    assert [r["prompt"] for r in rows] == [prompt, "b"]
    first = rows[0]
    assert (first["videoStrength"], first["width"], first["height"], first["enhancePrompt"]) == ("0.5", "1280",
                                                                                                  "768", "false")
    assert first["fps"] == "" and first["seed"] == "1" and first["status"] == "downloaded"
    assert first["video_path"] == "/data/clip.mp4" and first["video_asset_id"] == "asset_clip"
    assert first["files"] == jobs[0]["files"][0]["path"] and first["output_asset_ids"] == "asset_out0"
    assert (rows[1]["error"], rows[1]["error_kind"], rows[1]["files"]) == ('bad, "very"', "rejected", "")


def test_csv_is_written_with_results_json_and_by_report(tmp_path: Path) -> None:
    """Writing results.json writes results.csv beside it (UTF-8, no BOM); `report` writes it too."""
    run_dir = write_run(tmp_path / "run", [job(0, prompt="é ✓"), job(1, seed=2)])
    data = (run_dir / CSV_NAME).read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf") and "é ✓".encode() in data
    assert [r["key"] for r in read_csv(data.decode())] == [j["key"] for j in load_run(run_dir).jobs]
    (run_dir / CSV_NAME).unlink()
    assert main(["report", str(run_dir), "--no-posters", "-q"]) == 0
    assert len(read_csv((run_dir / CSV_NAME).read_text(encoding="utf-8"))) == 2


@pytest.mark.parametrize(("keys", "failed", "expected", "error"), [
    (["aaaa"], False, ["aaaa1"], None),
    (["AAAA1"], False, ["aaaa1"], None),
    (["ab"], False, None, "ab: is ambiguous: 2 jobs match (ab0, ab1)"),
    (["zz", "ab"], False, None, "--keys zz: matches no job"),
    ([], True, ["ab1", "ff"], None),
    (["aaaa"], True, ["aaaa1", "ab1", "ff"], None),
    (["aaaa", "ab1"], True, ["aaaa1", "ab1", "ff"], None),
    ([], False, None, "nothing to rerun"),
])
def test_select_jobs_by_key_prefix_or_failed(keys: list[str], failed: bool, expected: list[str] | None,
                                             error: str | None) -> None:
    """Key prefixes must match exactly one job (errors name ambiguous and unknown ones); --failed adds failures."""
    jobs = [{"key": "aaaa1", "status": "downloaded"}, {"key": "ab0", "status": "downloaded"},
            {"key": "ab1", "status": "failed"}, {"key": "ff", "status": "failed"}]
    if error:
        with pytest.raises(InputError, match=error.replace("(", r"\(").replace(")", r"\)")):
            select_jobs(jobs, keys=keys, failed=failed)
    else:
        assert [j["key"] for j in select_jobs(jobs, keys=keys, failed=failed)] == expected


ROUND_TRIP = """\
name: mixed
inputs:
  video: {clip}
defaults:
  numInferenceSteps: 30
  guidanceScale: 3.5
prompts:
  - "A neon city: \\"rain\\", 50% #night — 🎬"
  - prompt: "  leading spaces, trailing: yes  "
    negativePrompt: "blurry\\nlow quality"
sweep:
  videoStrength: [0.6, 1.0]
seeds: [1, 9007199254740991]
batches:
  - name: plain
  - name: framed
    inputs:
      image: {image}
    defaults: {{imageStrength: 0.8, enhancePrompt: true, audioSource: none}}
    zip: {{width: [1280, 768], height: [768, 1280]}}
    seeds: null
  - name: modal
    sweep: {{videoStrength: null, modality: [canny, depth]}}
    prompts: ["yes", "no", "null", "123", "- dash"]
    seeds: {{count: 2, from: 0}}
"""


async def test_rerun_round_trip_gives_the_same_keys(tmp_path: Path, emulator_factory: Any) -> None:
    """A real run's jobs, written as a rerun manifest and loaded back, give exactly the same keys and params."""
    server: EmulatorServer = await emulator_factory(fault_job_failure_rate=0.3, seed=3)
    manifest_path = tmp_path / "mixed.yaml"
    manifest_path.write_text(ROUND_TRIP.format(clip=SAMPLES / "clip.mp4", image=SAMPLES / "first-frame.png"))
    original = {spec.key: spec for spec in load_manifest(manifest_path).jobs()}
    await run(manifest_path, server, tmp_path / "out")
    view = load_run(tmp_path / "out" / "mixed")
    assert len(view.jobs) == len(original) == 8 + 8 + 20
    rerun = rerun_manifest("mixed", view.jobs)
    assert rerun.notes == () and rerun.jobs == len(original)
    (tmp_path / "rerun.yaml").write_text(rerun.text, encoding="utf-8")
    loaded = load_manifest(tmp_path / "rerun.yaml")
    assert loaded.name == "mixed-rerun"
    again = {spec.key: spec for spec in loaded.jobs()}
    assert again.keys() == original.keys()
    assert all(dict(again[k].params) == dict(original[k].params) for k in again)
    assert all(again[k].inputs == original[k].inputs for k in again)
    failed = [j for j in view.jobs if j["status"] == "failed"]
    assert failed, "the emulator's failure rate should fail some jobs"
    assert main(["rerun", str(view.run_dir), "--failed", "-o", str(tmp_path / "failed.yaml"), "-q"]) == 0
    assert {s.key for s in load_manifest(tmp_path / "failed.yaml").jobs()} == {j["key"] for j in failed}


def test_rerun_uses_the_asset_id_when_the_input_is_gone_or_changed(tmp_path: Path) -> None:
    """A vanished or edited input file is replaced by its uploaded asset id, with a note; paths win otherwise."""
    clip = tmp_path / "clip.mp4"
    shutil.copyfile(SAMPLES / "clip.mp4", clip)
    digest = hashlib.sha256(clip.read_bytes()).hexdigest()
    ref = {"param": "video", "kind": "file", "path": str(clip), "sha256": digest, "asset_id": "asset_up1"}
    record = job(3, inputs=[ref], params={"videoStrength": 0.7})
    document = yaml.safe_load(rerun_manifest("r", [record]).text)
    assert document["batches"][0]["inputs"] == {"video": str(clip)}
    assert document["batches"][0]["seeds"] == [1] and document["batches"][0]["prompts"] == ["a neon city"]
    assert document["batches"][0]["defaults"]["videoStrength"] == 0.7
    assert "prompt" not in document["batches"][0]["defaults"] and "seed" not in document["batches"][0]["defaults"]
    clip.write_bytes(b"changed")
    changed = rerun_manifest("r", [record])
    assert yaml.safe_load(changed.text)["batches"][0]["inputs"] == {"video": "asset_up1"}
    assert "has changed; using its uploaded asset asset_up1" in changed.notes[0]
    clip.unlink()
    gone = rerun_manifest("r", [record])
    assert "is gone" in gone.notes[0] and "# note: job 3" in gone.text
    with pytest.raises(InputError, match="is gone and was never uploaded"):
        rerun_manifest("r", [job(4, inputs=[{**ref, "asset_id": None}])])


def test_rerun_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ltx-batch rerun`: YAML on stdout by default; exit 2 naming bad prefixes, or with nothing chosen; --failed
    with no failures says "nothing to rerun" and exits 0, writing nothing."""
    records = [job(0, seed=1, inputs=[{"param": "video", "kind": "asset", "asset_id": "asset_given"}]),
               job(1, seed=2, inputs=[{"param": "video", "kind": "asset", "asset_id": "asset_given"}])]
    run_dir = write_run(tmp_path / "run", records)
    assert main(["rerun", str(run_dir), "--keys", records[1]["key"][:10]]) == 0
    document = yaml.safe_load(capsys.readouterr().out)
    assert document["name"] == "sweep-rerun" and [b["seeds"] for b in document["batches"]] == [[2]]
    assert document["batches"][0]["inputs"] == {"video": "asset_given"}
    assert main(["rerun", str(run_dir), "--keys", "zzzz"]) == 2
    assert "--keys zzzz: matches no job" in capsys.readouterr().err
    assert main(["rerun", str(run_dir)]) == 2
    assert "--keys K1,K2" in capsys.readouterr().err
    assert main(["rerun", str(run_dir), "--failed"]) == 0
    printed = capsys.readouterr()
    assert printed.err.startswith("nothing to rerun: no failed jobs") and printed.out == ""
    assert main(["rerun", str(run_dir), "--failed", "-o", str(tmp_path / "none.yaml")]) == 0
    assert not (tmp_path / "none.yaml").exists() and "nothing to rerun" in capsys.readouterr().err
    assert main(["rerun", str(run_dir), "--keys", records[0]["key"], "-o", str(tmp_path / "no" / "dir.yaml")]) == 2
    assert "cannot write it" in capsys.readouterr().err
    json.dumps(document)  # plain data: no YAML tags or Python objects
