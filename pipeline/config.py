"""Settings: configs/default.yaml < --config FILE < environment < CLI flags; credentials from the environment."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError, Problem, did_you_mean
from pipeline.yamlpos import read_capped

DEFAULT_CONFIG = Path(__file__).with_name("data") / "default.yaml"
ENV_PREFIX = "LTX_BATCH_"
MIN_PART_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    """Every tunable, with its unit in its name."""

    api_base_url: str
    max_requests_per_s: float
    max_in_flight_jobs: int
    poll_first_delay_s: float
    poll_min_interval_s: float
    poll_max_interval_s: float
    poll_mode: str  # how finished jobs are noticed: "feed" (the job listing), "per-job" (each job polled), "auto"
    feed_interval_s: float  # one job listing this often (more often while jobs wait for an in-flight place)
    feed_overlap_s: float  # each listing starts this long before the newest update the last one saw
    job_timeout_s: float
    download_workers: int
    connect_timeout_s: float
    request_timeout_s: float
    download_timeout_s: float
    max_retries: int
    backoff_base_s: float
    backoff_max_s: float
    shutdown_grace_s: float
    output_dir: str
    project_id: str  # sent as `projectId` on every API call; "" = not sent (API keys are bound to a project)
    upload_part_bytes: int  # multipart upload part size (at least 5 MB; raised to keep to 10,000 parts)
    upload_parts_in_flight: int  # parts of one upload sent at once
    max_cost_cu: float  # stop submitting before the run's cost would pass this many Creative Units; 0 = no cap
    reconcile_settle_s: float  # a lost POST this recent may still be making its job: absence proves nothing sooner
    model_schema_max_age_s: float  # a cached model description older than this is fetched again (0: every time)


@dataclass(frozen=True, slots=True)
class Credentials:
    """The API key and secret; `repr` never shows them."""

    api_key: str
    api_secret: str

    def __repr__(self) -> str:
        return "Credentials(***)"

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.api_key, self.api_secret) if s)


_TYPES: dict[str, type] = {f.name: {"str": str, "int": int, "float": float}[str(f.type)] for f in fields(Settings)}
_MAY_BE_ZERO = ("shutdown_grace_s", "max_retries", "poll_first_delay_s", "job_timeout_s", "max_cost_cu",
                "reconcile_settle_s", "model_schema_max_age_s", "feed_overlap_s")
_MAY_BE_EMPTY = ("project_id",)
_CHOICES: dict[str, tuple[str, ...]] = {"poll_mode": ("auto", "feed", "per-job")}


def _coerce(name: str, value: Any, source: str | None, where: str | None = None) -> Any:
    """The value as the setting's type; a ConfigError names `where` (what the user typed: a flag, a variable),
    else the setting."""
    kind = _TYPES[name]
    where = where or name
    if kind is str:
        if name in _MAY_BE_EMPTY and (value is None or value == ""):
            return ""
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(Problem(where, f"must be a non-empty string, not {value!r}", source=source))
        allowed = _CHOICES.get(name)
        if allowed is not None and value.strip() not in allowed:
            hint = did_you_mean(value.strip(), list(allowed))
            raise ConfigError(Problem(where, f"must be one of {', '.join(allowed)}, not {value!r}"
                                      + (f" (did you mean {hint!r}?)" if hint else ""), source=source))
        return value.strip()
    if isinstance(value, bool):
        raise ConfigError(Problem(where, f"must be a number, not {value!r}", source=source))
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or (kind is int and not number.is_integer()):
        whole = "whole " if kind is int else ""
        raise ConfigError(Problem(where, f"must be a {whole}number, not {value!r}", source=source))
    if number < 0 or (number == 0 and name not in _MAY_BE_ZERO):
        bound = "must not be negative" if name in _MAY_BE_ZERO else "must be greater than 0"
        raise ConfigError(Problem(where, f"{bound}, not {value!r}", source=source))
    return kind(number)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = read_capped(path).decode("utf-8")
    except OSError as exc:
        raise ConfigError(Problem("", f"cannot read config file: {exc.strerror}", source=str(path))) from None
    except ValueError as exc:  # too large, or not UTF-8
        reason = "the file is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc)
        raise ConfigError(Problem("", reason, source=str(path))) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise ConfigError(Problem("", f"not valid YAML: {getattr(exc, 'problem', exc)}",
                                  line=None if line is None else line + 1, source=str(path))) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(Problem("", "must be a mapping of setting: value", source=str(path)))
    return data


def _layer(data: Mapping[Any, Any], source: str | None, names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One layer's settings, checked; `names` maps a setting to what the user typed for it (the flag or the
    environment variable), so a problem names that."""
    problems = []
    out: dict[str, Any] = {}
    for name, value in data.items():
        if name not in _TYPES:
            hint = did_you_mean(str(name), list(_TYPES))
            problems.append(Problem(str(name), f"unknown setting {str(name)!r}" + (f" (did you mean {hint!r}?)" if hint else ""),
                                    source=source))
            continue
        try:
            out[name] = _coerce(name, value, source, (names or {}).get(name))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return out


def load_settings(
    *,
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, str] | None = None,
) -> Settings:
    """Merge the layers (default file, user file, environment, CLI overrides) into checked Settings.

    A problem names what the user typed: the key and file, the environment variable, or the flag (`flags` maps
    a setting to the flag of the command line that set it, e.g. max_requests_per_s -> --rate)."""
    env = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    origin: dict[str, tuple[str, str | None]] = {}  # setting -> (as the user typed it, file); for the checks below

    def add(layer: dict[str, Any], source: str | None, names: Mapping[str, str] | None = None) -> None:
        merged.update(layer)
        origin.update({name: ((names or {}).get(name, name), source) for name in layer})

    add(_layer(_read_yaml(DEFAULT_CONFIG), str(DEFAULT_CONFIG)), str(DEFAULT_CONFIG))
    if config_file is not None:
        add(_layer(_read_yaml(Path(config_file)), str(config_file)), str(config_file))
    from_env: dict[str, Any] = {}
    variables: dict[str, str] = {}
    if env.get("SCENARIO_API_URL"):
        from_env["api_base_url"], variables["api_base_url"] = env["SCENARIO_API_URL"], "SCENARIO_API_URL"
    for name in _TYPES:
        if (value := env.get(ENV_PREFIX + name.upper())) not in (None, ""):
            from_env[name], variables[name] = value, ENV_PREFIX + name.upper()
    names = {name: f"environment variable {variable}" for name, variable in variables.items()}
    add(_layer(from_env, None, names), None, names)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    typed = {name: flag for name, flag in (flags or {}).items() if name in given}
    add(_layer({k: v for k, v in given.items() if k in typed}, None, typed), None, typed)
    add(_layer({k: v for k, v in given.items() if k not in typed}, "command line"), "command line")

    def problem(name: str, message: str) -> ConfigError:
        where, source = origin[name]
        return ConfigError(Problem(where, message, source=source))

    if not merged["api_base_url"].startswith(("http://", "https://")):
        raise problem("api_base_url", f"must start with http:// or https://, not {merged['api_base_url']!r}")
    if merged["upload_part_bytes"] < MIN_PART_BYTES:
        raise problem("upload_part_bytes", f"must be at least {MIN_PART_BYTES} (5 MiB: the storage refuses "
                                           f"smaller parts but the last), not {merged['upload_part_bytes']}")
    if merged["poll_min_interval_s"] > merged["poll_max_interval_s"]:
        where, source = origin["poll_max_interval_s"]
        by = "" if origin["poll_min_interval_s"] == (where, source) else \
            f", set by {where}" + (f" in {source}" if source else "")
        raise problem("poll_min_interval_s", f"must not exceed poll_max_interval_s ({merged['poll_max_interval_s']:g}"
                                             f"{by})")
    merged["api_base_url"] = merged["api_base_url"].rstrip("/")
    return Settings(**merged)


@cache
def default_settings() -> Settings:
    """The settings of the default file alone (what `--help` shows as defaults)."""
    return load_settings(environ={})


def load_credentials(environ: Mapping[str, str] | None = None) -> Credentials:
    """The API key and secret from SCENARIO_API_KEY / SCENARIO_API_SECRET, or a clear error."""
    env = os.environ if environ is None else environ
    key, secret = env.get("SCENARIO_API_KEY", ""), env.get("SCENARIO_API_SECRET", "")
    missing = [n for n, v in (("SCENARIO_API_KEY", key), ("SCENARIO_API_SECRET", secret)) if not v]
    if missing:
        raise ConfigError(Problem("", f"set {' and '.join(missing)} in the environment (or use --emulator)"))
    return Credentials(key, secret)
