"""A job's value on a contact-sheet axis, the order an axis's values are shown in, and which names may be one.
Pure.

An axis is a value parameter of the table (`videoStrength`, `seed`, `prompt`...), a file input (`video`,
`image`, `conditioningVideo`: the local path, or the asset id) or the job's `batch`.

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
from typing import Any

from pipeline.errors import InputError
from pipeline.manifest.params import FILE_PARAMS, PARAMS, suggest

Record = Mapping[str, Any]


def value_of(record: Record, name: str) -> Any:
    """A job's value on an axis: a parameter's value, its batch, or an input's path (or asset id)."""
    if name == "batch":
        return record.get("batch")
    if name in FILE_PARAMS:
        for ref in record.get("inputs") or ():
            if ref.get("param") == name:
                return ref.get("path") or ref.get("asset_id")
        return None
    return (record.get("params") or {}).get(name)


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


def axis_names() -> tuple[str, ...]:
    """Every name that can be an axis of some run."""
    return tuple(dict.fromkeys(("batch", *(n for n in PARAMS if n not in ("prompt", "seed")), "prompt", "seed")))


def check_axis(name: str, *, flag: str, swept: Mapping[str, Sequence[Any]],
               fixed: Mapping[str, Any] | None = None) -> str:
    """`name` if the run sweeps it, else an InputError that lists the axes it does sweep.

    `swept`: axis -> its values (more than one each); `fixed`: axis -> the one value every job has.
    """
    if name in swept:
        return name
    choices = ", ".join(swept) if swept else "none (every job has the same settings)"
    if name in axis_names():
        value = (fixed or {}).get(name, _MISSING)
        same = "" if value is _MISSING else f": every job has {name} {_shown(value)}"
        raise InputError(f"{flag}: {name!r} is not swept in this run{same}. "
                         f"Axes this run sweeps: {choices}")
    hint = suggest(name, list(swept)) or suggest(name, list(axis_names()))
    extra = f" (did you mean {hint!r}?)" if hint else ""
    raise InputError(f"{flag}: unknown parameter {name!r}{extra}. Axes this run sweeps: {choices}")


_MISSING = object()


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
