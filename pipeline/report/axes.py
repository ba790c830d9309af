"""A job's value on a contact-sheet axis, the order an axis's values are shown in, and which names may be one.
Pure.

An axis is a value parameter of the run's models (`videoStrength`, `seed`, `prompt`,
`conditioningAttentionStrength`...), a file input of any name (`video`, `referenceVideos`...: the local path, or
the asset id, as a `FileName`; a `file_array` input's files as a `FileNames` tuple, in order) or the job's `batch`.

Values are shown in the manifest's order (`width: [1280, 768, 1024]` stays 1280, 768, 1024), recovered
from the job records alone: the expansion is a mixed-radix count, so among jobs that agree on every other
swept value (a "context") an axis's values appear in the manifest's order as the job index grows. Each
context gives a chain of such precedences; the chains are merged (a topological order, ties and conflicts
resolved by first appearance in index order). A complete run's first appearance would do; the chains keep
the order right for a partial one too (a journal that only knows some jobs).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pipeline.errors import InputError
from pipeline.manifest.params import FILE_PARAMS, MODEL_ID, PARAMS, suggest

Record = Mapping[str, Any]


class FileName(str):
    """An input file's path (or asset id) as an axis value: equal to the plain string; shown by its base name."""

    __slots__ = ()

    @property
    def base(self) -> str:
        return self.replace("\\", "/").rsplit("/", 1)[-1]


class FileNames(tuple):  # type: ignore[type-arg]
    """The files of a `file_array` input, in order, as one axis value (shown as their base names)."""

    __slots__ = ()

    @property
    def base(self) -> str:
        return ", ".join(FileName(f).base for f in self)


_MISSING = object()


def value_of(record: Record, name: str) -> Any:
    """A job's value on an axis: a parameter's value, its batch, or a file input's path (or asset id; the
    files of a `file_array` input together, in order)."""
    if name == "batch":
        return record.get("batch")
    value = (record.get("params") or {}).get(name, _MISSING)
    if value is not _MISSING:
        return value
    refs = [ref for ref in record.get("inputs") or () if ref.get("param") == name]
    if not refs:
        return None
    if len(refs) == 1 and refs[0].get("index") is None:
        return FileName(refs[0].get("path") or refs[0].get("asset_id") or "")
    refs.sort(key=lambda ref: ref.get("index") or 0)
    return FileNames(FileName(ref.get("path") or ref.get("asset_id") or "") for ref in refs)


LTX_VALUES = tuple(n for n in PARAMS if n not in FILE_PARAMS)
LTX_DEFAULTS = MappingProxyType({n: p.default for n, p in PARAMS.items() if p.kind != "file"})


@dataclass(frozen=True, slots=True)
class Parameters:
    """The value parameters and file inputs of a run's models (`run_parameters`); by default LTX-2 19B's."""

    values: tuple[str, ...] = LTX_VALUES
    files: tuple[str, ...] = FILE_PARAMS
    names: tuple[str, ...] = tuple(PARAMS)  # both, in the order the page lists them
    defaults: Mapping[str, Any] = field(default_factory=lambda: LTX_DEFAULTS)  # model defaults known for every job


def run_parameters(jobs: Iterable[Record], run: Mapping[str, Any] | None = None) -> Parameters:
    """The run's parameters: LTX-2 19B's table for a run of it alone (its defaults known); else those `run`
    names (results.json's `parameters`: the file inputs first, then the values), with LTX-2 19B's table when it
    is one of the models; then any other parameter or input the records carry, in order of first appearance."""
    jobs = list(jobs)
    models = {str(job.get("model") or MODEL_ID) for job in jobs} or {str((run or {}).get("model") or MODEL_ID)}
    named = (run or {}).get("parameters")
    values: dict[str, None] = {}
    files: dict[str, None] = {}
    names: dict[str, None] = {}
    if models == {MODEL_ID} or MODEL_ID in models and not isinstance(named, Mapping):
        values, files, names = dict.fromkeys(LTX_VALUES), dict.fromkeys(FILE_PARAMS), dict.fromkeys(PARAMS)
    if isinstance(named, Mapping):
        for key, into in (("files", files), ("values", values)):
            raw = named.get(key)
            for name in raw if isinstance(raw, list) else ():
                into.setdefault(str(name), None)
                names.setdefault(str(name), None)
    for job in jobs:
        for ref in job.get("inputs") or ():
            files.setdefault(str(ref.get("param")), None)
        for name in job.get("params") or {}:
            values.setdefault(str(name), None)
    names.update(dict.fromkeys(files))
    names.update(dict.fromkeys(values))
    return Parameters(tuple(values), tuple(files), tuple(names), LTX_DEFAULTS if models == {MODEL_ID} else {})


def value_key(value: Any) -> tuple[str, Any]:
    """A hashable identity that keeps `True` apart from `1` but `1` equal to `1.0`."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)
    if value is None or isinstance(value, str):
        return ("s", value)
    return ("j", repr(value))


def manifest_order(name: str, jobs: Iterable[Record]) -> tuple[Any, ...]:
    """The distinct values of one axis in the manifest's order; `jobs` in index order (module docstring)."""
    return manifest_orders([name], jobs)[name]


def manifest_orders(names: Iterable[str], jobs: Iterable[Record]) -> dict[str, tuple[Any, ...]]:
    """`manifest_order` of several axes over the same jobs (the jobs' swept values are read once)."""
    jobs = list(jobs)
    swept = [(job.get("batch"), tuple((job.get("swept") or {}).items())) for job in jobs]
    keyed = [(batch, tuple(k for k, _ in items), tuple(value_key(v) for _, v in items)) for batch, items in swept]
    return {name: _order(name, jobs, keyed) for name in names}


def _order(name: str, jobs: Sequence[Record],
           keyed: Sequence[tuple[Any, tuple[str, ...], tuple[tuple[str, Any], ...]]]) -> tuple[Any, ...]:
    values: dict[tuple[str, Any], Any] = {}
    mine = []
    for job in jobs:
        value = value_of(job, name)
        key = value_key(value)
        values.setdefault(key, value)
        mine.append(key)
    if len(values) < 2 or name == "batch":
        return tuple(values.values())
    partners = _lockstep(name, mine, keyed)
    rank = {key: i for i, key in enumerate(values)}
    after: dict[tuple[str, Any], set[tuple[str, Any]]] = {key: set() for key in values}
    chains: dict[Any, tuple[set[tuple[str, Any]], list[tuple[str, Any] | None]]] = {}
    kept: dict[tuple[str, ...], tuple[int, ...]] = {}  # swept keys -> the positions that make a context
    for key, (batch, names, vks) in zip(mine, keyed):
        where = kept.get(names)
        if where is None:
            where = kept[names] = tuple(i for i, n in enumerate(names) if n != name and n not in partners)
        context = (batch, names, tuple(vks[i] for i in where))
        seen, last = chains.setdefault(context, (set(), [None]))
        if key in seen:
            continue
        seen.add(key)
        if last[0] is not None:
            after[last[0]].add(key)
        last[0] = key
    waiting = {key: 0 for key in values}
    for nexts in after.values():
        for key in nexts:
            waiting[key] += 1
    ready = [(rank[key], key) for key, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[tuple[str, Any]] = []
    while len(order) < len(values):
        if not ready:  # contradicting chains (a cycle): release the earliest-seen value left
            key = min((k for k in values if waiting[k] > 0), key=rank.__getitem__)
            waiting[key] = 0
            heapq.heappush(ready, (rank[key], key))
        _, key = heapq.heappop(ready)
        if waiting[key] < 0:
            continue
        waiting[key] = -1
        order.append(key)
        for following in after[key]:
            if waiting[following] > 0:
                waiting[following] -= 1
                if waiting[following] == 0:
                    heapq.heappush(ready, (rank[following], following))
    return tuple(values[key] for key in order)


def _lockstep(name: str, mine: Sequence[tuple[str, Any]],
              keyed: Sequence[tuple[Any, tuple[str, ...], tuple[tuple[str, Any], ...]]]) -> set[str]:
    """The swept keys that change exactly when `name` does (its zip partners): not part of a context."""
    others = {n for _, names, _ in keyed for n in names if n != name}
    out = set()
    for other in others:
        forward: dict[tuple[str, Any], Any] = {}
        backward: dict[Any, tuple[str, Any]] = {}
        for key, (_, names, vks) in zip(mine, keyed):
            theirs = vks[names.index(other)] if other in names else None
            if forward.setdefault(key, theirs) != theirs or backward.setdefault(theirs, key) != key:
                break
        else:
            out.add(other)
    return out


def axis_names(parameters: Parameters | None = None) -> tuple[str, ...]:
    """Every name that can be an axis of a run of these parameters (by default LTX-2 19B's)."""
    names = (parameters or Parameters()).names
    present = [n for n in ("prompt", "seed") if n in names]
    return tuple(dict.fromkeys(("batch", *(n for n in names if n not in ("prompt", "seed")), *present)))


def check_axis(name: str, *, flag: str, swept: Mapping[str, Sequence[Any]],
               fixed: Mapping[str, Any] | None = None, parameters: Parameters | None = None) -> str:
    """`name` if the run sweeps it, else an InputError that lists the axes it does sweep.

    `swept`: axis -> its values (more than one each); `fixed`: axis -> the one value every job has;
    `parameters`: the run's (`run_parameters`; by default LTX-2 19B's).
    """
    if name in swept:
        return name
    choices = ", ".join(swept) if swept else "none (every job has the same settings)"
    known = axis_names(parameters)
    if name in known:
        value = (fixed or {}).get(name, _MISSING)
        same = "" if value is _MISSING else f": every job has {name} {_shown(value)}"
        raise InputError(f"{flag}: {name!r} is not swept in this run{same}. "
                         f"Axes this run sweeps: {choices}")
    hint = suggest(name, list(swept)) or suggest(name, list(known))
    extra = f" (did you mean {hint!r}?)" if hint else ""
    raise InputError(f"{flag}: unknown parameter {name!r}{extra}. Axes this run sweeps: {choices}")


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, (FileName, FileNames)):
        return value.base
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
