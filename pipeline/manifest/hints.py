"""Hints for the YAML traps behind a bad value: what the user most likely wrote, and how to write it.

YAML reads unquoted text its own way: a comma ends a value inside `{...}`, a ': ' starts a mapping,
`no`/`off` are booleans, `16:9` is a number in base 60. The checks in `layers` say what is wrong;
these functions add why, in the user's own words where they can be rebuilt. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.manifest.params import Param
from pipeline.yamlpos import quoted


def split_text(mapping: Mapping[Any, Any], key: Any, *, flow: bool) -> str | None:
    """For an unknown key of a flow mapping (`{prompt: A station, neon signs, fps: 3}`) that has no value:
    it is most likely the rest of a text cut at a comma. The hint names the text and shows it quoted."""
    if not flow or not isinstance(key, str) or mapping.get(key, "") is not None:
        return None
    keys = list(mapping)
    start = keys.index(key)
    while start > 0 and mapping[keys[start - 1]] is None:
        start -= 1  # several pieces: `{prompt: a, b, c}`
    head = keys[start - 1] if start > 0 else None
    if head is None or not isinstance(mapping[head], str):
        return "a comma ends a value inside {...}: quote a text that contains commas"
    pieces = [mapping[head]]
    for piece in keys[start:]:
        if mapping[piece] is not None:
            break
        pieces.append(str(piece))
    return f"a comma ends a value inside {{...}}: quote the {head}, e.g. {head}: {quoted(', '.join(pieces))}"


def colon_text(value: Mapping[Any, Any]) -> str | None:
    """A one-pair mapping read back as the text it most likely was (`A station: neon` -> 'A station: neon')."""
    if len(value) != 1:
        return None
    (key, rest), = value.items()
    if not isinstance(key, str) or isinstance(rest, (dict, list)):
        return None
    return key if rest is None else f"{key}: {rest}"


def text_mapping(name: str, value: Mapping[Any, Any]) -> str:
    """The hint for a text parameter that YAML read as a mapping because of a ': ' inside it."""
    text = colon_text(value)
    example = f", e.g. {name}: {quoted(text)}" if text is not None else ""
    return f"a ': ' inside unquoted text makes YAML read a mapping: quote the {name}{example}"


def prompt_mapping(item: Mapping[Any, Any], known: Mapping[str, Any]) -> str | None:
    """For a prompt written as a mapping without a `prompt` key and without any parameter: a text with ': '."""
    if any(key in known for key in item):
        return None
    text = colon_text(item)
    example = f", e.g. - {quoted(text)}" if text is not None else ""
    return f"if this is a prompt with ': ' in it, quote it{example}"


def value_hint(param: Param, value: Any) -> str | None:
    """Why a value that failed its check was probably written that way, and the value meant."""
    if param.kind == "string" and not param.choices and isinstance(value, dict):
        return text_mapping(param.name, value)
    if param.kind in ("string", "file") and isinstance(value, bool):
        return "YAML reads an unquoted yes, no, on, off, true or false as a boolean: quote the text"
    if param.choices and isinstance(value, (int, float)) and not isinstance(value, bool):
        return _choice_for_number(param, value)
    if param.kind in ("number", "integer") and isinstance(value, str) and _is_number(value):
        return "write the number without quotes"
    return None


def _choice_for_number(param: Param, value: float) -> str | None:
    """`720` -> '720p'; `969` -> '16:9' (YAML 1.1 reads an unquoted 16:9 as the base-60 number 16*60+9)."""
    shown = str(int(value)) if float(value).is_integer() else str(value)
    for choice in param.choices:
        if choice.lower() in (shown, f"{shown}p"):
            return f"did you mean {choice!r}?"
    for choice in param.choices:
        hours, colon, minutes = choice.partition(":")
        if colon and hours.isdigit() and minutes.isdigit() and int(hours) * 60 + int(minutes) == value:
            return f"YAML reads an unquoted {choice} as the base-60 number {shown}: quote it, {param.name}: '{choice}'"
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def single_seed(seed: int) -> str:
    """The warning for `seeds: N`: one seed, N, where `{count: N}` may have been meant."""
    return (f"is the one seed {seed}; for {seed} seeds write seeds: {{count: {seed}}} (seeds 0..{seed - 1}) or "
            f"{{count: {seed}, from: 1000}}; write seeds: [{seed}] to keep the one seed without this warning")
