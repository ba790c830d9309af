"""Sweeps of models other than LTX-2 19B end to end (issue 15): `plan`, `run`, `status`, `report` and `rerun`
against the emulator, which refuses any generate body off its model's schema. The schema is fetched once and
cached; a fetch that fails, an unknown model or missing credentials stop before anything is sent.

The commands run synchronously (`asyncio.run` inside), so the emulator serves from a thread of its own
(127.0.0.1, ephemeral port)."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from emulator_helpers import Threaded
from run_helpers import CLIP, FAST

from pipeline.api.model_cache import ModelCache, cache_root
from pipeline.cli.main import main
from pipeline.emulator import EMULATOR_API_KEY, EMULATOR_API_SECRET
from pipeline.emulator.catalog import LTX23_V2V, LTX23_V2V_ID, SEEDANCE_ID
from pipeline.emulator.stats import ROUTE_GENERATE, ROUTE_UPLOAD, ROUTE_UPLOADS

KNOBS = {"job_time_s": 0.2, "job_time_spread_s": 0.05, "max_running_jobs": 8, "upload_processing_s": 0.02}
SENT = (ROUTE_UPLOAD, ROUTE_UPLOADS, ROUTE_GENERATE)
WEEK_S = 604800
AUDIO = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(64)  # an MP3 with an empty ID3 tag


@pytest.fixture
def api() -> Iterator[Threaded]:
    server = Threaded(**KNOBS)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The emulator's credentials, the user's cache under tmp_path, fast settings (a config file)."""
    for name, value in {"SCENARIO_API_KEY": EMULATOR_API_KEY, "SCENARIO_API_SECRET": EMULATOR_API_SECRET,
                        "XDG_CACHE_HOME": str(tmp_path / "cache")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SCENARIO_API_URL", raising=False)
    (tmp_path / "fast.yaml").write_text(yaml.safe_dump({**FAST, "max_retries": 1}))


def command(tmp_path: Path, api: Threaded, *argv: str) -> list[str]:
    return [*argv, "--api-url", api.url, "--config", str(tmp_path / "fast.yaml")]


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    (tmp_path / "clip.mp4").write_bytes(CLIP.read_bytes())
    (tmp_path / "other.mp4").write_bytes(CLIP.read_bytes() + b"another clip")
    (tmp_path / "voice.mp3").write_bytes(AUDIO)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


LTX23_SWEEP = f"""
name: ltx23
model: {LTX23_V2V_ID}
inputs: {{video: clip.mp4}}
prompts: [a dog in the rain]
sweep:
  conditioningAttentionStrength: [0.3, 0.9]
  modality: [none, motion_track_control]
seeds: [7]
"""


def test_ltx23_sweep_plans_runs_and_reports(tmp_path: Path, api: Threaded, capsys: pytest.CaptureFixture[str]) -> None:
    """A sweep over LTX-2.3 22B: plan fetches its schema once, run sends only what it takes (the emulator would
    refuse anything else), report, status and rerun work, and results.csv has its columns, not LTX-2 19B's."""
    path = write(tmp_path, LTX23_SWEEP)
    out = tmp_path / "out"
    assert main(command(tmp_path, api, "plan", str(path))) == 0
    assert "jobs      4  (main: 4)" in capsys.readouterr().out and api.fetches == 1
    assert main(command(tmp_path, api, "run", str(path), "--out", str(out), "-q", "--no-report")) == 0
    assert api.fetches == 1  # cached: fetched once for plan and run
    records = api.job_records()
    assert len(records) == 4 and all(r["status"] == "success" for r in records)
    assert sorted(r["body"]["conditioningAttentionStrength"] for r in records) == [0.3, 0.3, 0.9, 0.9]
    assert all("cameraMotion" not in r["body"] and r["body"]["seed"] == 7 for r in records)
    run_dir = out / "ltx23"
    table = rows(run_dir / "results.csv")
    assert [r["status"] for r in table] == ["downloaded"] * 4
    assert "conditioningAttentionStrength" in table[0] and "cameraMotion" not in table[0]
    assert main(["report", str(run_dir), "--no-posters", "-q"]) == 0
    assert (run_dir / "report.html").is_file()
    capsys.readouterr()
    assert main(["status", str(run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["downloaded"] == 4
    rerun = tmp_path / "rerun.yaml"
    assert main(["rerun", str(run_dir), "--keys", table[0]["key"][:12], "-o", str(rerun), "-q"]) == 0
    assert main(command(tmp_path, api, "plan", str(rerun), "--json")) == 0
    assert json.loads(capsys.readouterr().out)[0]["key"] == table[0]["key"]


def test_off_schema_manifest_exits_2_naming_both_and_sends_nothing(tmp_path: Path, api: Threaded,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """cameraMotion and an out-of-range conditioningAttentionStrength for LTX-2.3 22B: plan and run both exit 2
    listing both problems, located, in one pass; nothing is uploaded or generated."""
    path = write(tmp_path, f"model: {LTX23_V2V_ID}\ninputs: {{video: clip.mp4}}\nprompts: [a]\n"
                           "defaults: {cameraMotion: dolly_in}\nsweep: {conditioningAttentionStrength: [0.5, 2]}\n")
    for argv in (["plan", str(path)], ["run", str(path), "--out", str(tmp_path / "out")]):
        assert main(command(tmp_path, api, *argv)) == 2
        err = capsys.readouterr().err
        assert f"{path}:4: defaults.cameraMotion: unknown parameter 'cameraMotion' for {LTX23_V2V_ID}" in err
        assert f"{path}:5: sweep.conditioningAttentionStrength[1]: 2 is out of range 0..1" in err
    assert [api.requests(route) for route in SENT] == [0, 0, 0] and not (tmp_path / "out").exists()


def test_seedance_reference_videos_in_one_job(tmp_path: Path, api: Threaded,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A list of two reference videos (and an audio file) is one value: each file is uploaded once (as its
    input's kind), and every job sends both asset ids, in order, with the audio's; results.csv lists them; a
    rerun manifest keeps the list as one value (same key)."""
    path = write(tmp_path, f"name: refs\nmodel: {SEEDANCE_ID}\nprompts: [a dance, a fight]\n"
                           "inputs: {referenceVideos: [clip.mp4, other.mp4], referenceAudio: voice.mp3}\n")
    assert main(command(tmp_path, api, "run", str(path), "--out", str(tmp_path / "out"), "-q", "--no-report")) == 0
    assert api.requests(ROUTE_UPLOADS) == 3  # two videos and the audio, once each
    records = sorted(api.job_records(), key=lambda r: r["body"]["prompt"])
    assert [r["status"] for r in records] == ["success", "success"]
    videos = records[0]["body"]["referenceVideos"]
    assert len(set(videos)) == 2 and all(r["body"]["referenceVideos"] == videos for r in records)
    assert len(records[0]["body"]["referenceAudio"]) == 1 and "seed" not in records[0]["body"]
    journal = [json.loads(line) for line in (tmp_path / "out" / "refs" / "ledger.jsonl").read_text().splitlines()]
    uploaded = {e["path"].rsplit("/", 1)[-1]: e["asset_id"] for e in journal if e.get("ev") == "upload"}
    assert videos == [uploaded["clip.mp4"], uploaded["other.mp4"]]
    table = rows(tmp_path / "out" / "refs" / "results.csv")
    assert table[0]["referenceVideos_asset_id"] == ";".join(videos) and "video_path" not in table[0]
    rerun = tmp_path / "rerun.yaml"
    assert main(["rerun", str(tmp_path / "out" / "refs"), "--keys", table[1]["key"], "-o", str(rerun), "-q"]) == 0
    assert yaml.safe_load(rerun.read_text())["batches"][0]["inputs"]["referenceVideos"] == [
        str(tmp_path / "clip.mp4"), str(tmp_path / "other.mp4")]  # one value: both files, in order
    assert main(command(tmp_path, api, "plan", str(rerun), "--json")) == 0
    assert json.loads(capsys.readouterr().out)[0]["key"] == table[1]["key"]


def test_unknown_model_is_a_located_problem(tmp_path: Path, api: Threaded, capsys: pytest.CaptureFixture[str]) -> None:
    """A model the API answers 404 for is reported where it is named, with the manifest's other problems (exit 2)."""
    path = write(tmp_path, "model: model_nope\ninputs: {video: clip.mp4}\nprompts: [a]\nseeds: lots\n")
    assert main(command(tmp_path, api, "run", str(path), "--out", str(tmp_path / "out"))) == 2
    err = capsys.readouterr().err
    assert f"{path}:1: model: unknown model id 'model_nope'" in err and f"{path}:4: seeds:" in err
    assert [api.requests(route) for route in SENT] == [0, 0, 0]


def test_a_schema_fetch_that_fails_sends_nothing(tmp_path: Path, api: Threaded,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """With the API unreachable and nothing cached, run says it could not fetch the model's parameters (exit 1)
    and starts nothing: no run folder."""
    path = write(tmp_path, LTX23_SWEEP)
    api.stop()
    assert main(command(tmp_path, api, "run", str(path), "--out", str(tmp_path / "out"))) == 1
    err = capsys.readouterr().err
    assert f"could not fetch the parameters of model {LTX23_V2V_ID} from {api.url}" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_plan_without_credentials_says_what_to_do(tmp_path: Path, api: Threaded, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Without credentials, an uncached model's plan exits 2 naming the variables to set (or --emulator); with
    --emulator it plans from the built-in emulator."""
    monkeypatch.delenv("SCENARIO_API_KEY")
    monkeypatch.delenv("SCENARIO_API_SECRET")
    path = write(tmp_path, LTX23_SWEEP)
    assert main(["plan", str(path)]) == 2
    err = capsys.readouterr().err
    assert "set SCENARIO_API_KEY and SCENARIO_API_SECRET" in err and "--emulator" in err
    assert main(["plan", str(path), "--emulator", "-q"]) == 0
    assert "jobs      4" in capsys.readouterr().out


def test_plan_is_offline_from_the_cache_and_a_stale_cache_is_renewed(tmp_path: Path, api: Threaded,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A cached schema plans offline; a stale one is fetched again when the API answers (the fresh schema then
    decides) and used, with a warning, when it does not; --refresh-model fetches it whatever its age."""
    path = write(tmp_path, LTX23_SWEEP.replace("0.9]", "0.9, 3]"))  # 3: out of range for the real schema
    cache = ModelCache(cache_root(), EMULATOR_API_KEY)
    loose = {**LTX23_V2V, "inputs": [{**i, "max": 5} if i["name"] == "conditioningAttentionStrength" else i
                                     for i in LTX23_V2V["inputs"]]}
    cache.write(LTX23_V2V_ID, loose, api_url=api.url, fetched_at_s=time.time())
    assert main(command(tmp_path, api, "plan", str(path), "-q")) == 0 and api.fetches == 0  # fresh: offline
    assert main(command(tmp_path, api, "plan", str(path), "-q", "--refresh-model")) == 2 and api.fetches == 1
    assert "3 is out of range 0..1" in capsys.readouterr().err
    cache.write(LTX23_V2V_ID, loose, api_url=api.url, fetched_at_s=time.time() - 2 * WEEK_S)
    assert main(command(tmp_path, api, "plan", str(path), "-q")) == 2 and api.fetches == 2  # stale: renewed
    cache.write(LTX23_V2V_ID, loose, api_url=api.url, fetched_at_s=time.time() - 2 * WEEK_S)
    api.stop()
    assert main(command(tmp_path, api, "plan", str(path))) == 0  # stale, cannot be renewed: used
    assert "using the cached parameters of model_ltx-2-3-22b-video-to-video" in capsys.readouterr().err
