"""The run's one walk over its manifest (`run.roster`): every key kept in 32 bytes, the jobs decoded again
by index without hashing, and a resume that expands its manifest once."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from manifest_helpers import load_text
from run_helpers import CREDENTIALS, run, settings_for, write_manifest

from pipeline.manifest import expand as expansion
from pipeline.manifest.load import Manifest, load_manifest
from pipeline.run.roster import DIGEST_BYTES, Roster
from pipeline.run.runner import RunOptions, run_manifest
from pipeline.spec import JobSpec

MANIFESTS = [
    """
    inputs: {video: clip.mp4}
    prompts: [a dog, a cat]
    sweep: {videoStrength: [0.2, 0.4]}
    seeds: [1, 2, 3]
    """,
    """
    inputs: {video: clip.mp4}
    batches:
      - {prompts: [a, b], sweep: {fps: [12, 24]}}
      - {name: other, inputs: {video: other.mp4}, prompts: [c], zip: {width: [1280, 768], height: [768, 1280]}}
    """,  # seedless: each job's seed is derived from its key
]


@pytest.mark.parametrize("text", MANIFESTS)
def test_roster_notes_every_key_once_walked(tmp_path: Path, text: str) -> None:
    """A partial walk notes the jobs handed out; complete() walks the rest; the keys are the manifest's, in order
    (a manifest whose keys were not kept at load)."""
    manifest = dataclasses.replace(load_text(tmp_path, text), keys=b"")
    keys = [spec.key for spec in manifest.jobs()]
    roster = Roster(manifest)
    walk = roster.walk()
    first = [next(walk).key, next(walk).key]
    assert list(roster) == keys[:2] == first  # a job is noted as soon as it is pulled
    roster.complete()
    assert list(roster) == keys and len(roster) == manifest.job_count
    assert [roster[i] for i in range(len(roster))] == keys and roster[-1] == keys[-1] and roster[1:3] == keys[1:3]
    assert len(roster._digests) == DIGEST_BYTES * manifest.job_count
    with pytest.raises(IndexError):
        roster[len(roster)]


@pytest.mark.parametrize("text", MANIFESTS)
def test_a_loaded_manifests_keys_fill_the_roster_without_walking(tmp_path: Path, text: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A manifest keeps every key its check hashed: the roster starts with all of them, keyed() hands out each
    (index, key) building no job, and a walk builds the jobs without hashing their keys."""
    manifest = load_text(tmp_path, text)
    jobs = list(manifest.jobs())
    keys = [spec.key for spec in jobs]
    assert manifest.keys == b"".join(bytes.fromhex(key) for key in keys)
    hashed = count_hashing(monkeypatch)
    roster = Roster(manifest)
    assert list(roster) == keys and len(roster) == manifest.job_count
    assert [(pair.index, pair.key) for pair in roster.keyed()] == list(enumerate(keys))
    roster.complete()
    assert list(Roster(manifest).walk()) == jobs
    assert hashed.count == (manifest.job_count if text is MANIFESTS[1] else 0)  # derived seeds only


@pytest.mark.parametrize("text", MANIFESTS)
def test_roster_decodes_the_same_jobs_without_hashing_them(tmp_path: Path, text: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """roster.jobs() gives the jobs expansion gives, equal field by field, hashing only derived seeds (not keys)."""
    manifest = load_text(tmp_path, text)
    roster = Roster(manifest)
    roster.complete()
    hashed = count_hashing(monkeypatch)
    decoded = list(roster.jobs())
    assert hashed.count == (manifest.job_count if text is MANIFESTS[1] else 0)  # the seedless derive their seeds
    assert decoded == list(manifest.jobs()) and len(decoded) == manifest.job_count


def test_specs_of_finds_jobs_by_key_in_index_order(tmp_path: Path) -> None:
    """specs_of(keys) decodes just the jobs with those keys, in index order; unknown keys are skipped."""
    manifest = load_text(tmp_path, MANIFESTS[0])
    jobs = list(manifest.jobs())
    roster = Roster(manifest)
    roster.complete()
    wanted = {jobs[7].key, jobs[2].key, "0" * 64, "not a key"}
    assert list(roster.specs_of(wanted)) == [jobs[2], jobs[7]]


@dataclasses.dataclass
class Hashing:
    count: int = 0


def count_hashing(monkeypatch: pytest.MonkeyPatch) -> Hashing:
    """Count the job keys expansion hashes from now on (a spy around `spec.job_key`, as expansion calls it)."""
    hashing = Hashing()
    real = expansion.job_key

    def spy(*args, **kwargs) -> str:  # noqa: ANN002, ANN003
        hashing.count += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(expansion, "job_key", spy)
    return hashing


class SpyManifest(Manifest):
    """A Manifest that notes every walk over its jobs: whether it hashes the keys, how many jobs it builds."""

    def jobs(self, start: int = 0, stop: int | None = None, *,
             keys: Sequence[str] | None = None) -> Iterator[JobSpec]:
        walk = {"hashing": keys is None, "built": 0}
        self.walks.append(walk)  # type: ignore[attr-defined]
        for spec in super().jobs(start, stop, keys=keys):
            walk["built"] += 1
            yield spec


@pytest.mark.parametrize("keys_kept", [True, False])
async def test_a_no_op_resume_expands_the_manifest_once(tmp_path: Path, emulator_factory,
                                                        monkeypatch: pytest.MonkeyPatch, keys_kept: bool) -> None:
    """Resuming a finished run hashes each job's key once (one walk), however many consumers read the jobs; with
    the keys its load kept, it hashes none and builds no job (results.json's jobs are kept as they are)."""
    server = await emulator_factory()
    path = write_manifest(tmp_path)
    first = await run(path, server, tmp_path / "out")
    assert first.exit_status == 0
    loaded = load_manifest(path)
    fields = {f.name: getattr(loaded, f.name) for f in dataclasses.fields(Manifest)}
    manifest = SpyManifest(**{**fields, "keys": fields["keys"] if keys_kept else b""})
    object.__setattr__(manifest, "walks", [])  # Manifest is frozen
    hashed = count_hashing(monkeypatch)
    before = json.loads((first.run_dir / "results.json").read_text())["jobs"]
    summary = await run_manifest(manifest, settings_for(server, tmp_path / "out"), CREDENTIALS, first.run_dir,
                                 RunOptions(progress="off"))
    assert summary.exit_status == 0 and summary.counts["downloaded"] == manifest.job_count == 8
    walks = manifest.walks  # type: ignore[attr-defined]
    if keys_kept:
        assert hashed.count == 0 and sum(walk["built"] for walk in walks) == 0
    else:
        assert hashed.count == manifest.job_count
        assert [walk for walk in walks if walk["hashing"]] == [{"hashing": True, "built": manifest.job_count}]
    assert json.loads((first.run_dir / "results.json").read_text())["jobs"] == before
