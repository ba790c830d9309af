"""A job's value on a contact-sheet axis, and the order an axis's values are shown in. Pure.

An axis is a value parameter of the table (`videoStrength`, `seed`, `prompt`...), a file input (`video`,
`image`, `conditioningVideo`: the local path, or the asset id) or the job's `batch`. Values order:
booleans (false, true), then numbers ascending, then strings (an enum in the parameter table's order, other
text in order of first appearance), then unset.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


def ordered_values(name: str, values: Iterable[Any]) -> tuple[Any, ...]:
    """The distinct values of one axis in display order (see the module docstring)."""
    first: dict[tuple[str, Any], tuple[int, Any]] = {}
    for value in values:
        first.setdefault(value_key(value), (len(first), value))
    choices = PARAMS[name].choices if name in PARAMS else ()

    def rank(item: tuple[int, Any]) -> tuple[int, float, int]:
        seen, value = item
        if value is None:
            return (5, 0.0, seen)
        if isinstance(value, bool):
            return (0, float(value), seen)
        if isinstance(value, (int, float)):
            return (1, float(value), seen)
        if isinstance(value, str) and value in choices:
            return (2, float(choices.index(value)), seen)
        return (3 if isinstance(value, str) else 4, 0.0, seen)

    return tuple(value for _, value in sorted(first.values(), key=rank))


def axis_names() -> tuple[str, ...]:
    """Every name `--rows`/`--cols` accepts."""
    return tuple(dict.fromkeys(("batch", *(n for n in PARAMS if n not in ("prompt", "seed")), "prompt", "seed")))


def check_axis(name: str, *, flag: str) -> str:
    """`name` if it can be an axis, else an InputError naming the closest one."""
    known = axis_names()
    if name in known:
        return name
    hint = suggest(name, list(known))
    extra = f" (did you mean {hint!r}?)" if hint else f"; choose from {', '.join(known)}"
    raise InputError(f"{flag}: unknown parameter {name!r}{extra}")
