"""Rerun manifests: `rerun_manifest` writes a manifest (YAML) that reproduces chosen jobs exactly: one
batch per job with the same inputs, parameters and seed, so `load_manifest` gives back jobs with the same keys (unless an input file is gone and its uploaded asset
id stands in for it; the key then names the asset instead of the file's hash).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from pipeline.errors import InputError, Problem
from pipeline.manifest.params import MODEL_ID

RERUN_SUFFIX = "-rerun"
CHUNK_BYTES = 1 << 20


def select_jobs(jobs: Sequence[Mapping[str, Any]], *, keys: Sequence[str] = (),
                failed: bool = False) -> list[Mapping[str, Any]]:
    """The jobs named by key prefixes (each must match exactly one job) and/or every failed job, in run order."""
    problems = []
    wanted: set[str] = set()
    for prefix in keys:
        found = [str(j.get("key")) for j in jobs if str(j.get("key") or "").startswith(prefix.lower())]
        if not found:
            problems.append(Problem(f"--keys {prefix}", "matches no job of this run"))
        elif len(set(found)) > 1:
            shown = ", ".join(k[:12] for k in sorted(set(found))[:3]) + (", ..." if len(set(found)) > 3 else "")
            problems.append(Problem(f"--keys {prefix}", f"is ambiguous: {len(set(found))} jobs match ({shown}); "
                                                        "give more characters"))
        else:
            wanted.add(found[0])
    if problems:
        raise InputError(problems)
    chosen = [j for j in jobs if j.get("key") in wanted or (failed and j.get("status") == "failed")]
    if not chosen and not failed:
        raise InputError("nothing to rerun: no jobs chosen")
    return chosen  # empty for --failed alone when nothing failed: not an error (the caller says so)


@dataclass(frozen=True, slots=True)
class Rerun:
    """A rerun manifest: its YAML text, how many jobs it holds, and notes (e.g. inputs replaced by asset ids)."""

    text: str
    jobs: int
    notes: tuple[str, ...]


def rerun_manifest(run_name: str, jobs: Sequence[Mapping[str, Any]]) -> Rerun:
    """A manifest reproducing exactly these jobs: one batch per job (same inputs, parameters and seed)."""
    hashes: dict[str, str | None] = {}
    notes: list[str] = []
    problems: list[Problem] = []
    models = [str(j.get("model") or MODEL_ID) for j in jobs]
    top_model = max(set(models), key=models.count)
    batches, used = [], set()
    for job, model in zip(jobs, models):
        where = f"job {job.get('index')} ({str(job.get('key'))[:12]})"
        inputs = {}
        for ref in job.get("inputs") or ():
            chosen, note = _input_of(ref, hashes)
            if chosen is None:
                problems.append(Problem(where, note or "an input cannot be found"))
            else:
                inputs[str(ref.get("param"))] = chosen
                if note:
                    notes.append(f"{where}: {note}")
        params = dict(job.get("params") or {})
        batch: dict[str, Any] = {"name": _batch_name(job, used)}
        if model != top_model:
            batch["model"] = model
        batch["inputs"] = inputs
        batch["defaults"] = {k: v for k, v in params.items() if k not in ("prompt", "seed")}
        batch["prompts"] = [params.get("prompt")]
        batch["seeds"] = [params.get("seed")]
        batches.append(batch)
    if problems:
        raise InputError(problems)
    name = str(run_name or "run")[: 100 - len(RERUN_SUFFIX)] + RERUN_SUFFIX
    document = {"name": name, "model": top_model, "batches": batches}
    head = f"# ltx-batch rerun: {len(batches)} job(s) of run {ascii(run_name)}, one batch per job (same inputs, " \
           "parameters and seed)\n"
    head += "".join(f"# note: {_comment(n)}\n" for n in notes)
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    return Rerun(head + body, len(batches), tuple(notes))


def _comment(text: str) -> str:
    """Text safe inside a one-line YAML comment: ASCII, no control characters."""
    ascii_text = text.encode("ascii", "backslashreplace").decode()
    return "".join(c if c.isprintable() else " " for c in ascii_text)


def _batch_name(job: Mapping[str, Any], used: set[str]) -> str:
    index = job.get("index")
    base = f"job-{index:05d}" if isinstance(index, int) else "job"
    name = base if base not in used else f"{base}-{str(job.get('key'))[:12]}"
    used.add(name)
    return name


def _input_of(ref: Mapping[str, Any], hashes: dict[str, str | None]) -> tuple[str | None, str | None]:
    """(what to write under inputs, a note): the file if it still has the same content, else its asset id."""
    if ref.get("kind") == "asset":
        return ref.get("asset_id"), None
    path, sha256, asset_id = ref.get("path"), ref.get("sha256"), ref.get("asset_id")
    if path and sha256 and _sha256(str(path), hashes) == sha256:
        return str(path), None
    why = "is gone" if not path or not os.path.isfile(str(path)) else "has changed"
    if asset_id:
        return str(asset_id), (f"input {ref.get('param')} {ascii(str(path))} {why}; using its uploaded asset "
                               f"{asset_id} (the rerun job's key will differ)")
    return None, f"input {ref.get('param')} {ascii(str(path))} {why} and was never uploaded"


def _sha256(path: str, cache: dict[str, str | None]) -> str | None:
    if path not in cache:
        try:
            digest = hashlib.sha256()
            with open(path, "rb") as stream:
                while chunk := stream.read(CHUNK_BYTES):
                    digest.update(chunk)
            cache[path] = digest.hexdigest()
        except OSError:
            cache[path] = None
    return cache[path]
