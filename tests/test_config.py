"""Settings precedence (default file < --config FILE < environment < CLI flags) and located setting errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.config import DEFAULT_CONFIG, load_credentials, load_settings
from pipeline.errors import ConfigError
from pipeline.yamlpos import MAX_FILE_BYTES

DEFAULTS = yaml.safe_load(DEFAULT_CONFIG.read_text())


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("file_text", "environ", "overrides", "expected"),
    [
        (None, {}, {}, DEFAULTS["max_requests_per_s"]),
        ("max_requests_per_s: 2\n", {}, {}, 2.0),
        ("max_requests_per_s: 2\n", {"LTX_BATCH_MAX_REQUESTS_PER_S": "3"}, {}, 3.0),
        ("max_requests_per_s: 2\n", {"LTX_BATCH_MAX_REQUESTS_PER_S": "3"}, {"max_requests_per_s": 4}, 4.0),
        (None, {"LTX_BATCH_MAX_REQUESTS_PER_S": "3"}, {}, 3.0),
        (None, {}, {"max_requests_per_s": 4}, 4.0),
        ("max_requests_per_s: 2\n", {"LTX_BATCH_MAX_REQUESTS_PER_S": ""}, {}, 2.0),
        ("max_requests_per_s: 2\n", {}, {"max_requests_per_s": None}, 2.0),
        ("", {}, {}, DEFAULTS["max_requests_per_s"]),
    ],
    ids=["default", "file", "env over file", "cli over env", "env", "cli", "empty env ignored", "unset flag ignored",
         "empty file"],
)
def test_precedence(tmp_path: Path, file_text: str | None, environ: dict[str, str], overrides: dict[str, Any],
                    expected: float) -> None:
    """Each layer overrides the ones before it; empty environment values and unset flags do not count."""
    path = None if file_text is None else config_file(tmp_path, file_text)
    settings = load_settings(config_file=path, overrides=overrides, environ=environ)
    assert settings.max_requests_per_s == expected


def test_every_setting_has_a_default_and_output_dir_layers(tmp_path: Path) -> None:
    """The default file sets every field; output_dir follows the same precedence (as `plan --out` uses it)."""
    settings = load_settings(environ={})
    assert settings.output_dir == DEFAULTS["output_dir"]
    path = config_file(tmp_path, "output_dir: from-file\n")
    assert load_settings(config_file=path, environ={}).output_dir == "from-file"
    assert load_settings(config_file=path, environ={"LTX_BATCH_OUTPUT_DIR": "env"}).output_dir == "env"
    assert load_settings(config_file=path, environ={"LTX_BATCH_OUTPUT_DIR": "env"},
                         overrides={"output_dir": "cli"}).output_dir == "cli"


def test_api_url_from_environment_and_trailing_slash() -> None:
    """SCENARIO_API_URL sets the base URL; a trailing slash is removed."""
    settings = load_settings(environ={"SCENARIO_API_URL": "http://127.0.0.1:8080/"})
    assert settings.api_base_url == "http://127.0.0.1:8080"


def test_types_are_coerced() -> None:
    """Environment text becomes the field's type (int or float)."""
    settings = load_settings(environ={"LTX_BATCH_MAX_IN_FLIGHT_JOBS": "7", "LTX_BATCH_POLL_MAX_INTERVAL_S": "12.5"})
    assert settings.max_in_flight_jobs == 7 and type(settings.max_in_flight_jobs) is int
    assert settings.poll_max_interval_s == 12.5


@pytest.mark.parametrize(
    ("file_text", "environ", "overrides", "where", "source", "words"),
    [
        ("max_requests_per_s: fast\n", {}, {}, "max_requests_per_s", "file", "must be a number"),
        ("max_request_per_s: 3\n", {}, {}, "max_request_per_s", "file", "did you mean 'max_requests_per_s'"),
        ("max_in_flight_jobs: 2.5\n", {}, {}, "max_in_flight_jobs", "file", "whole number"),
        ("download_workers: true\n", {}, {}, "download_workers", "file", "must be a number"),
        ("max_retries: -1\n", {}, {}, "max_retries", "file", "must not be negative"),
        ("download_workers: 0\n", {}, {}, "download_workers", "file", "greater than 0"),
        ("output_dir: ''\n", {}, {}, "output_dir", "file", "non-empty string"),
        (None, {"LTX_BATCH_MAX_REQUESTS_PER_S": "lots"}, {}, "environment variable LTX_BATCH_MAX_REQUESTS_PER_S",
         None, "must be a number"),
        (None, {"LTX_BATCH_MAX_REQUESTS_PER_S": "nan"}, {}, "environment variable LTX_BATCH_MAX_REQUESTS_PER_S",
         None, "must be a number"),
        (None, {}, {"download_workers": -2}, "download_workers", "command line", "greater than 0"),
        (None, {"SCENARIO_API_URL": "ftp://x"}, {}, "environment variable SCENARIO_API_URL", None,
         "http:// or https://"),
        (None, {"LTX_BATCH_POLL_MAX_INTERVAL_S": "0.01"}, {}, "poll_min_interval_s", "default", "must not exceed"),
        ("poll_min_interval_s: 50\npoll_max_interval_s: 10\n", {}, {}, "poll_min_interval_s", "file",
         "must not exceed"),
        ("upload_mode: json-base64\n", {}, {}, "upload_mode", "file", "unknown setting"),  # removed setting
    ],
)
def test_bad_values_are_located(tmp_path: Path, file_text: str | None, environ: dict[str, str],
                                overrides: dict[str, Any], where: str, source: str | None, words: str) -> None:
    """A bad setting names the setting, where it came from (file, environment, command line) and why."""
    path = None if file_text is None else config_file(tmp_path, file_text)
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=path, overrides=overrides, environ=environ)
    problem = caught.value.problems[0]
    assert problem.where == where and words in problem.message
    assert problem.source == {"file": str(path), "default": str(DEFAULT_CONFIG), None: None}.get(source, source)
    assert caught.value.exit_status == 2


def test_every_bad_setting_in_a_file_is_listed(tmp_path: Path) -> None:
    """All bad settings of one file are reported together."""
    path = config_file(tmp_path, "max_requests_per_s: x\ndownload_workers: 0\nbogus: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=path, environ={})
    assert sorted(p.where for p in caught.value.problems) == ["bogus", "download_workers", "max_requests_per_s"]


@pytest.mark.parametrize(
    ("text", "words", "line"),
    [("a: [1\n", "not valid YAML", 2), ("- 1\n- 2\n", "must be a mapping", None)],
)
def test_bad_config_file(tmp_path: Path, text: str, words: str, line: int | None) -> None:
    """A config file that is not YAML, or not a mapping, is a located ConfigError."""
    path = config_file(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=path, environ={})
    assert words in caught.value.problems[0].message and caught.value.problems[0].line == line


def test_missing_config_file(tmp_path: Path) -> None:
    """A --config file that does not exist is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(config_file=tmp_path / "nope.yaml", environ={})


@pytest.mark.parametrize(("data", "words"), [
    (b"max_retries: 3\n# caf\xe9\n", "not UTF-8"),
    (b"#" * (MAX_FILE_BYTES + 1), "over 8 MiB"),
])
def test_config_file_not_utf8_or_too_large(tmp_path: Path, data: bytes, words: str) -> None:
    """A config file that is not UTF-8, or is huge (a video given by mistake), is a ConfigError naming it."""
    path = tmp_path / "c.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=words) as caught:
        load_settings(config_file=path, environ={})
    assert caught.value.problems[0].source == str(path)


def test_config_from_dev_zero_stops_at_the_cap() -> None:
    """A character device that never ends (/dev/zero) is refused after the cap, not read for ever."""
    with pytest.raises(ConfigError, match="too large"):
        load_settings(config_file=Path("/dev/zero"), environ={})


@pytest.mark.parametrize(
    ("environ", "missing"),
    [({}, "SCENARIO_API_KEY and SCENARIO_API_SECRET"), ({"SCENARIO_API_KEY": "k"}, "SCENARIO_API_SECRET")],
)
def test_credentials_missing(environ: dict[str, str], missing: str) -> None:
    """Missing credentials name the variables to set."""
    with pytest.raises(ConfigError, match=missing):
        load_credentials(environ)


def test_credentials_never_shown() -> None:
    """The key and secret do not appear in repr()."""
    credentials = load_credentials({"SCENARIO_API_KEY": "key-123", "SCENARIO_API_SECRET": "secret-456"})
    assert "key-123" not in repr(credentials) and "secret-456" not in repr(credentials)
    assert credentials.secrets == ("key-123", "secret-456")


@pytest.mark.parametrize(("environ", "overrides", "text"), [
    ({}, {"max_requests_per_s": 0.0}, "--rate: must be greater than 0, not 0.0"),
    ({}, {"api_base_url": "ftp://x"}, "--api-url: must start with http:// or https://"),
    ({"LTX_BATCH_MAX_REQUESTS_PER_S": "0"}, {}, "environment variable LTX_BATCH_MAX_REQUESTS_PER_S: must be greater"),
    ({"LTX_BATCH_DOWNLOAD_WORKERS": "2"}, {"download_workers": 0}, "--downloaders: must be greater than 0"),
])
def test_problems_name_the_flag_or_variable_the_user_typed(environ: dict[str, str], overrides: dict[str, Any],
                                                           text: str) -> None:
    """A bad value from a flag names the flag (`--rate`), from the environment the variable, not the setting."""
    flags = {"max_requests_per_s": "--rate", "api_base_url": "--api-url", "download_workers": "--downloaders"}
    with pytest.raises(ConfigError) as caught:
        load_settings(overrides=overrides, environ=environ, flags=flags)
    assert str(caught.value).startswith(text), str(caught.value)
    assert "max_requests_per_s" not in str(caught.value) and "environment:" not in str(caught.value)


def test_poll_mode_takes_one_of_its_words() -> None:
    """poll_mode is auto (the default), feed or per-job; another word is a located error with a suggestion."""
    assert load_settings(environ={}).poll_mode == "auto"
    assert load_settings(environ={"LTX_BATCH_POLL_MODE": "per-job"}).poll_mode == "per-job"
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"LTX_BATCH_POLL_MODE": "perjob"})
    assert "LTX_BATCH_POLL_MODE" in str(caught.value) and "auto, feed, per-job" in str(caught.value)
    assert "did you mean 'per-job'" in str(caught.value) and "environment" in str(caught.value)
