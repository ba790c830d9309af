"""One job's parameters checked against a model's schema (pure): every problem at once, not the first.

Types, ranges, steps, allowed values (sentinels such as Seedance's -1 included: a listed value is valid
whatever the range), array item counts (`minLength`/`maxLength` of an array), every form of `required`,
unknown names with a did-you-mean. The rules follow the official Blender plugin's validator
(`scenario/core/schema/params.py`: a blank string, null or an empty list is "not set"; `ifNotDefined`
names an either/or group); the built-in model is checked by them too (`schema.builtin_schema`).

A value off its `step` is an error for a whole step (a fraction where `step: 1`); for a larger step it is
rounded with a warning, as LTX-2 rounds `width`/`height` to a multiple of 64 ("Rounded to multiple of 64",
docs.scenario.com, Lightricks models). A file's kind, size and length are known only once the file is
(`check_file`: the emulator holds it against the asset, the manifest against the local file).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from pipeline.manifest.params import Checked, describe_value, suggest, unknown_message
from pipeline.manifest.schema import Condition, ModelInput, ModelSchema

ASSET_PREFIX = "asset_"
RUN_MIN = 3  # consecutive whole numbers shown as a range ("4..15") from this many on


def defined(value: Any) -> bool:
    """Whether a value counts as given: not null, not a blank string, not an empty list (false and 0 are)."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, (list, tuple)):
        return len(value) > 0
    return True


def check_params(schema: ModelSchema, params: Mapping[str, Any], *, require: bool = True,
                 present: Collection[str] = (), asset_ids: bool = True) -> Checked:
    """Check a parameter set (a request body, or part of one) against `schema`.

    `require=False` skips the `required` rules (a partial layer such as a manifest's defaults); `present` names
    inputs given elsewhere (files given as paths), which count as set for those rules; `asset_ids=False`
    accepts any non-empty string as a file (a path) instead of an asset id. Errors and warnings are keyed by
    input name, an array's item as `name[i]`."""
    result = Checked()
    for name, value in params.items():
        item = schema.get(name) if isinstance(name, str) else None
        if item is None:
            result.errors.append((str(name), unknown_message(str(name), list(schema.names))))
            continue
        if value is None:
            continue  # null: not set (left to the server, or reported below when required)
        if not defined(value) and require and item.required.always:
            result.errors.append((name, "must not be empty"))
            continue
        normal, errors, warnings = check_value(item, value, asset_ids=asset_ids)
        result.errors.extend(errors)
        result.warnings.extend(warnings)
        if not errors:
            result.values[name] = normal
    if require:
        supplied = {name for name, value in params.items() if defined(value)} | set(present)
        valid = {name for name in supplied if name in result.values or name in present}
        reported = {key for key, _ in result.errors}
        for item in schema.inputs:
            if item.name in supplied or item.name in reported:
                continue
            message = missing_message(item, valid, result.values)
            if message is not None:
                result.errors.append((item.name, message))
    return result


def missing_message(item: ModelInput, given: Collection[str], params: Mapping[str, Any]) -> str | None:
    """Why `item`, not given, is required here (the schema's own message when it has one), or None.

    `given`: the inputs set (with valid values); `params`: their values, for `conditional` rules."""
    rule = item.required
    if rule.always:
        return "is required"
    for other, message in rule.if_defined:
        if other in given:
            return message or f"is required when {other!r} is set"
    if rule.if_not_defined and not any(other in given for other, _ in rule.if_not_defined):
        names = [other for other, _ in rule.if_not_defined]
        first = next((m for _, m in rule.if_not_defined if m), None)
        return first or ("is required when " + " or ".join(repr(n) for n in names) + " is not set"
                         if len(names) == 1 else "is required unless one of " + ", ".join(map(repr, names)) + " is set")
    for condition in rule.conditions:
        if matches(condition, params):
            return condition.message or f"is required when {describe_condition(condition)}"
    return None


def matches(condition: Condition, params: Mapping[str, Any]) -> bool:
    """Whether the other inputs hold the listed values (all of them for `and`, any for `or`)."""
    hits = [name in params and _member(params[name], values) for name, values in condition.values]
    return all(hits) if condition.operator == "and" else any(hits)


def describe_condition(condition: Condition) -> str:
    parts = [f"{name} is " + " or ".join(_show(v) for v in values) for name, values in condition.values]
    return f" {condition.operator} ".join(parts)


def check_value(item: ModelInput, value: Any, *, asset_ids: bool = True
                ) -> tuple[Any, list[tuple[str, str]], list[tuple[str, str]]]:
    """One given value against its input: (normalised value, errors, warnings), keyed `name` or `name[i]`."""
    if not item.is_array:
        normal, error, warning = _scalar(item, item.type, value, asset_ids=asset_ids)
        return normal, [(item.name, error)] if error else [], [(item.name, warning)] if warning else []
    if not isinstance(value, (list, tuple)):
        return value, [(item.name, f"must be a list, not {describe_value(value)}")], []
    errors: list[tuple[str, str]] = []
    warnings: list[tuple[str, str]] = []
    count = len(value)
    if item.max_length is not None and count > item.max_length:
        errors.append((item.name, f"must have at most {_items(item.max_length)}, not {count}"))
    if item.min_length is not None and count < item.min_length:
        errors.append((item.name, f"must have at least {_items(item.min_length)}, not {count}"))
    normal = []
    for i, element in enumerate(value):
        checked, error, warning = _scalar(item, item.item_type, element, asset_ids=asset_ids)
        if error:
            errors.append((f"{item.name}[{i}]", error))
        if warning:
            warnings.append((f"{item.name}[{i}]", warning))
        normal.append(checked)
    return normal, errors, warnings


def _scalar(item: ModelInput, kind: str, value: Any, *, asset_ids: bool) -> tuple[Any, str | None, str | None]:
    if kind == "boolean":
        return value, None if isinstance(value, bool) else f"must be true or false, not {describe_value(value)}", None
    if kind in ("string", "file", "model"):
        if not isinstance(value, str):
            return value, f"must be a string, not {describe_value(value)}", None
        if "\x00" in value:
            return value, "must not contain NUL characters", None
        if kind == "file":
            if asset_ids and not value.startswith(ASSET_PREFIX):
                return value, f"must be an asset id (asset_...), not {value[:40]!r}", None
            return value, None, None
        if item.allowed_values:
            if value not in item.allowed_values:
                hint = suggest(value, [str(v) for v in item.allowed_values])
                extra = f" (did you mean {hint!r}?)" if hint else ""
                return value, f"{value[:40]!r} is not one of {describe_allowed(item)}{extra}", None
            return value, None, None
        if not item.is_array:
            if item.max_length is not None and len(value) > item.max_length:
                return value, f"must be at most {item.max_length} characters, not {len(value)}", None
            if item.min_length is not None and len(value) < item.min_length:
                return value, f"must be at least {item.min_length} characters, not {len(value)}", None
        return value, None, None
    if kind == "number":
        return _number(item, value)
    return value, None, None  # inputs_array and kinds this tool does not know: the server checks them


def _number(item: ModelInput, value: Any) -> tuple[Any, str | None, str | None]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value, f"must be a number, not {describe_value(value)}", None
    if not math.isfinite(value):
        return value, f"must be a finite number, not {value}", None
    if item.allowed_values:
        for allowed in item.allowed_values:
            if not isinstance(allowed, bool) and isinstance(allowed, (int, float)) and allowed == value:
                return allowed, None, None
        return value, f"{_fmt(value)} is not one of {describe_allowed(item)}", None
    warning = None
    if item.step is not None:
        if item.step == 1 and not float(value).is_integer():
            return value, f"must be a whole number, not {value}", None
        steps = value / item.step
        if abs(steps - round(steps)) > 1e-9 * max(1.0, abs(steps)):
            rounded = _tidy(round(steps) * item.step)
            if item.minimum is not None and rounded < item.minimum:
                rounded = item.minimum
            if item.maximum is not None and rounded > item.maximum:
                rounded = item.maximum
            warning = f"{_fmt(value)} is not a multiple of {_fmt(item.step)}; the API rounds it to {_fmt(rounded)}"
            if _in_range(item, value):
                value = rounded
        if item.whole and isinstance(value, float):
            value = int(value)
    if not _in_range(item, value):
        return value, f"{_fmt(value)} is {describe_range(item, out_of=True)}", None
    return value, None, warning


def _in_range(item: ModelInput, value: float) -> bool:
    return not (item.minimum is not None and value < item.minimum or item.maximum is not None and value > item.maximum)


def check_file(item: ModelInput, *, kind: str | None, size_bytes: int | None = None,
               duration_s: float | None = None) -> list[str]:
    """A file against its input's `kind`, `maxSize` and `minDuration`/`maxDuration` (what is not known: None)."""
    problems = []
    if item.kind is not None and kind is not None and kind != item.kind:
        problems.append(f"is {_article(kind)} {kind}, not {_article(item.kind)} {item.kind}")
    if item.max_size_bytes is not None and size_bytes is not None and size_bytes > item.max_size_bytes:
        problems.append(f"is {size_bytes:,} bytes, more than the {item.max_size_bytes:,} allowed")
    if duration_s is not None:
        if item.max_duration_s is not None and duration_s > item.max_duration_s:
            problems.append(f"lasts {_fmt(duration_s)} s, more than the {_fmt(item.max_duration_s)} s allowed")
        if item.min_duration_s is not None and duration_s < item.min_duration_s:
            problems.append(f"lasts {_fmt(duration_s)} s, less than the {_fmt(item.min_duration_s)} s required")
    return problems


# -- words -----------------------------------------------------------------------------------------


def describe_allowed(item: ModelInput) -> str:
    """The allowed values, labelled where the UI labels them and whole-number runs shortened
    (Seedance's duration: "-1 (Auto), 4..15")."""
    shown: list[str] = []
    run: list[int] = []

    def flush() -> None:
        if len(run) >= RUN_MIN:
            shown.append(f"{run[0]}..{run[-1]}")
        else:
            shown.extend(str(n) for n in run)
        run.clear()

    for value in item.allowed_values:
        label = item.label_of(value)
        if label and str(value) in label:
            label = None  # "4s" says nothing "4" does not
        whole = not isinstance(value, bool) and isinstance(value, int)
        if whole and not label and (not run or value == run[-1] + 1):
            run.append(value)
            continue
        flush()
        if whole and not label:
            run.append(value)
            continue
        text = _show(value) if isinstance(value, str) else _fmt(value) if isinstance(value, (int, float)) else str(value)
        shown.append(f"{text} ({label})" if label else text)
    flush()
    return ", ".join(shown)


def describe_range(item: ModelInput, *, out_of: bool = False) -> str:
    """`min..max` (or one bound), with the step when there is one; `out_of` words it for an error."""
    low, high = item.minimum, item.maximum
    if out_of:
        if low is not None and high is not None:
            return f"out of range {_fmt(low)}..{_fmt(high)}"
        return f"below the minimum {_fmt(low)}" if low is not None else f"above the maximum {_fmt(high)}"
    text = (f"{_fmt(low)}..{_fmt(high)}" if low is not None and high is not None
            else f">= {_fmt(low)}" if low is not None else f"<= {_fmt(high)}" if high is not None else "")
    if item.step is not None and item.step != 1:
        text += f" step {_fmt(item.step)}"
    elif item.step == 1:
        text += " whole" if text else "whole"
    return text.strip()


def _member(value: Any, values: Iterable[Any]) -> bool:
    return any(v == value and isinstance(v, bool) == isinstance(value, bool) for v in values)


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else _fmt(value) if isinstance(value, (int, float)) else str(value)


def _fmt(x: Any) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _tidy(x: float) -> float:
    """A rounded grid value without float noise (0.30000000000000004 -> 0.3), whole numbers as int."""
    x = round(x, 9)
    return int(x) if float(x).is_integer() else x


def _items(n: int) -> str:
    return f"{n} item" + ("" if n == 1 else "s")


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
