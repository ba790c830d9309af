"""Output paths: two jobs never share a file, and a resume notices a file changed on disk (issue 10, point 2)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from pipeline.ledger.replay import JOURNAL_NAME, LedgerState, apply, read_events
from pipeline.spec import JobSpec
from pipeline.report.status import run_status
from pipeline.run.storage import claim_output_path, output_name, output_path, part_path
from run_helpers import CLIP, check_consistent, run

JOBS = 12  # 3 prompts x 2 strengths x 2 seeds
IN_FLIGHT = 4  # fewer than the jobs: the run cycles its in-flight slots


def seeded_manifest(folder: Path, *, steps: int) -> Path:
    """12 jobs with explicit seeds; `numInferenceSteps` is a default, not swept (so not in the file names' values)."""
    path = folder / "m.yaml"
    path.write_text("\n".join([
        "name: m", "inputs:", f"  video: {CLIP}", f"defaults: {{numInferenceSteps: {steps}}}", "prompts:",
        "  - a neon city", "  - a quiet forest", "  - a desert road",
        "sweep:", "  videoStrength: [0.5, 1.0]", "seeds: [11, 12]", ""]))
    return path


def disk_hashes(run_dir: Path) -> dict[str, str]:
    """sha256 of every output file, by path relative to the run folder."""
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((run_dir / "videos").iterdir())}


async def test_edited_default_never_overwrites_paid_files(tmp_path: Path, emulator_factory) -> None:
    """Editing a default that is not swept gives the new jobs their own files; the paid ones keep their bytes."""
    server = await emulator_factory()
    out = tmp_path / "out"
    first = await run(seeded_manifest(tmp_path, steps=40), server, out, max_in_flight_jobs=IN_FLIGHT)
    assert first.exit_status == 0 and first.counts["downloaded"] == JOBS
    before = disk_hashes(first.run_dir)
    assert len(before) == JOBS

    second = await run(seeded_manifest(tmp_path, steps=30), server, out, max_in_flight_jobs=IN_FLIGHT)
    assert second.exit_status == 0 and server.emulator.stats()["jobs_created"] == 2 * JOBS
    after = disk_hashes(second.run_dir)
    assert {path: after.get(path) for path in before} == before, "a paid file was overwritten"
    assert len(after) == 2 * JOBS
    results = await check_consistent(second.run_dir, server, expect_jobs=2 * JOBS)
    paths = [job["files"][0]["path"] for job in results["jobs"]]
    assert len(set(paths)) == 2 * JOBS
    assert {job["files"][0]["path"]: job["files"][0]["sha256"] for job in results["jobs"]} == after
    steps = sorted(job["params"]["numInferenceSteps"] for job in results["jobs"])
    assert steps == [30] * JOBS + [40] * JOBS
    assert not json.loads((second.run_dir / "results.json").read_text())["run"].get("stopped")


def rewrite_in_place(path: Path) -> bytes:
    """Change some bytes of `path` without changing its size; returns the bytes it had."""
    data = path.read_bytes()
    with path.open("r+b") as handle:
        handle.seek(len(data) // 2)
        handle.write(bytes(b ^ 0xFF for b in data[len(data) // 2:len(data) // 2 + 64]))
    return data


def shift_mtime(path: Path, by_s: int = 5) -> int:
    """Move `path`'s modification time `by_s` seconds on (whatever the clock's grain); returns the new one."""
    stat = path.stat()
    mtime_ns = stat.st_mtime_ns + by_s * 1_000_000_000
    os.utime(path, ns=(stat.st_atime_ns, mtime_ns))
    return mtime_ns


def lost_keys(run_dir: Path) -> list[str]:
    return [e["key"] for e in read_events(run_dir / JOURNAL_NAME) if e.get("ev") == "file-lost"]


async def test_file_changed_in_place_is_fetched_again_but_a_touched_one_is_kept(tmp_path: Path,
                                                                                emulator_factory) -> None:
    """A file rewritten with the same size is fetched again on resume; one merely touched is kept as it is."""
    server = await emulator_factory()
    manifest = seeded_manifest(tmp_path, steps=40)
    summary = await run(manifest, server, tmp_path / "out", max_in_flight_jobs=IN_FLIGHT)
    assert summary.exit_status == 0
    results = json.loads((summary.run_dir / "results.json").read_text())
    changed, touched = results["jobs"][3], results["jobs"][8]
    changed_path = summary.run_dir / changed["files"][0]["path"]
    touched_path = summary.run_dir / touched["files"][0]["path"]
    original = rewrite_in_place(changed_path)
    shift_mtime(changed_path)
    touched_mtime_ns = shift_mtime(touched_path)
    assert run_status(summary.run_dir).resume.refetch_lost == 1

    summary = await run(manifest, server, tmp_path / "out", max_in_flight_jobs=IN_FLIGHT)
    assert summary.exit_status == 0 and server.emulator.stats()["jobs_created"] == JOBS
    assert changed_path.read_bytes() == original
    assert lost_keys(summary.run_dir) == [changed["key"]]
    assert touched_path.stat().st_mtime_ns == touched_mtime_ns  # not downloaded again
    await check_consistent(summary.run_dir, server, expect_jobs=JOBS)
    assert run_status(summary.run_dir).resume.refetch_lost == 0


async def test_resume_of_a_journal_from_before_keys_in_names(tmp_path: Path, emulator_factory, monkeypatch) -> None:
    """A journal written with the old names (no key, no mtime) resumes: files kept where recorded, size-checked."""
    server = await emulator_factory()
    manifest = seeded_manifest(tmp_path, steps=40)
    with monkeypatch.context() as patch:
        patch.setattr("pipeline.run.submit.claim_output_path", lambda spec, claimed: "videos/" + output_name(
            spec.index, spec.prompt, spec.swept, spec.seed))
        summary = await run(manifest, server, tmp_path / "out", max_in_flight_jobs=IN_FLIGHT)
    assert summary.exit_status == 0
    journal = summary.run_dir / JOURNAL_NAME
    events = [{k: v for k, v in e.items() if k != "mtime_ns"} for e in read_events(journal)]
    downloaded = [e for e in events if e["ev"] == "downloaded"]
    assert downloaded and not any("_s11_" in e["path"] or "_s12_" in e["path"] for e in downloaded)
    redo, resized = downloaded[0], downloaded[1]
    events.remove(redo)  # paid, never downloaded: the resume fetches it to the path its intent recorded
    journal.write_text("".join(json.dumps(e) + "\n" for e in events))
    (summary.run_dir / redo["path"]).unlink()
    resized_path = summary.run_dir / resized["path"]
    resized_path.write_bytes(resized_path.read_bytes()[:-1])
    legacy = sorted(p.name for p in (summary.run_dir / "videos").iterdir())

    summary = await run(manifest, server, tmp_path / "out", max_in_flight_jobs=IN_FLIGHT)
    assert summary.exit_status == 0 and server.emulator.stats()["jobs_created"] == JOBS
    assert sorted(p.name for p in (summary.run_dir / "videos").iterdir()) == sorted(
        legacy + [Path(redo["path"]).name])
    assert lost_keys(summary.run_dir) == [resized["key"]]
    await check_consistent(summary.run_dir, server, expect_jobs=JOBS)


KEY_A, KEY_B = "a" * 64, "b" * 64


def spec(key: str = KEY_A, *, index: int = 7, prompt: str = "A fantasy landscape", seed: int = 3,
         swept: dict | None = None) -> JobSpec:
    return JobSpec(index=index, batch="main", key=key, model="model_ltx", params={"prompt": prompt, "seed": seed},
                   inputs=(), swept=swept if swept is not None else {"videoStrength": 0.8})


@pytest.mark.parametrize(("job", "expected"), [
    (spec(), "videos/00007_a-fantasy-landscape_videoStrength=0.8_s3_aaaaaaaaaa.mp4"),
    (spec(KEY_B, swept={}), "videos/00007_a-fantasy-landscape_s3_bbbbbbbbbb.mp4"),
    (spec(prompt="", swept={"aspectRatio": "16:9"}), "videos/00007_x_aspectRatio=16-9_s3_aaaaaaaaaa.mp4"),
    (spec(prompt="x" * 500, seed=4_294_967_295, swept={f"k{i}": "v" * 30 for i in range(20)}), None),
])
def test_output_path_ends_with_the_key(job: JobSpec, expected: str | None) -> None:
    """The name ends with the key's first 10 characters; a long name trims its swept values, never the key."""
    path = output_path(job)
    if expected is not None:
        assert path == expected
    name = path.removeprefix("videos/")
    assert len(name) <= 120 and name.endswith(f"_s{job.seed}_{job.key[:10]}.mp4")
    assert part_path(path, 2).endswith(f"_s{job.seed}_{job.key[:10]}-2.mp4")  # a second output keeps the key


def test_jobs_differing_only_in_a_default_get_different_paths() -> None:
    """Same index, prompt, swept values and seed, another key (a default edited): another path."""
    assert output_path(spec(KEY_A)) != output_path(spec(KEY_B))


OURS = output_path(spec(KEY_A))
FALLBACK = f"videos/00007_{KEY_A}.mp4"


@pytest.mark.parametrize(("claimed", "expected"), [
    ({}, OURS),  # nobody recorded it
    ({OURS: KEY_A}, OURS),  # this job itself (a resubmission): the same path again
    ({"videos/other.mp4": KEY_B}, OURS),
    ({OURS: KEY_B}, FALLBACK),  # another job's: the full key
    ({OURS: KEY_B, FALLBACK: KEY_A}, FALLBACK),  # resubmitted after a fallback: the fallback again
    ({OURS: KEY_B, FALLBACK: "c" * 64}, f"videos/00007_{KEY_A}_2.mp4"),
    ({OURS: KEY_B, FALLBACK: "c" * 64, f"videos/00007_{KEY_A}_2.mp4": "d" * 64}, f"videos/00007_{KEY_A}_3.mp4"),
])
def test_a_path_recorded_for_another_key_is_never_reused(claimed: dict[str, str], expected: str) -> None:
    """claim_output_path keeps the job's own name unless the journal records it for another key."""
    assert claim_output_path(spec(KEY_A), claimed) == expected


def test_the_replay_indexes_each_recorded_path_under_its_first_key() -> None:
    """Intents' `file` and downloads' `path` are claimed by the first key that recorded them, for good."""
    state = LedgerState(keep_specs=False)
    for event in [{"ev": "intent", "key": KEY_A, "file": "videos/a.mp4"},
                  {"ev": "intent", "key": KEY_B, "file": "videos/a.mp4"},  # an older tool's collision
                  {"ev": "downloaded", "key": KEY_A, "asset_id": "x", "path": "videos/a-1.mp4", "bytes": 1,
                   "sha256": "0", "mtime_ns": 5},
                  {"ev": "intent", "key": KEY_A, "file": "videos/a2.mp4"}]:  # resubmitted under a new name
        apply(state, {"t": 1.0, **event})
    assert state.paths == {"videos/a.mp4": KEY_A, "videos/a-1.mp4": KEY_A, "videos/a2.mp4": KEY_A}
