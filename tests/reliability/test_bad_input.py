"""Bad input at the command line: generated junk manifests, config files, LTX_BATCH_* variables and flags give
exit 2 with a message (never a traceback, nothing written); hostile prompt text runs for real against the
emulator and lands only inside the run folder, under safe names, escaped in the report."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import re
import socket
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from unittest import mock

import pytest
import yaml
from helpers import (
    API_KEY,
    API_SECRET,
    CREDENTIALS,
    REPO,
    assert_no_secrets,
    assert_no_traceback,
    check_complete,
    cli_env,
    record_figures,
    run_cli,
    scaled,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from manifest_helpers import write_inputs
from test_manifest_fuzz import SCALARS, SHAPED, TOP, VALUES

from pipeline.cli.main import main
from pipeline.config import Settings
from pipeline.ledger.replay import JOURNAL_NAME
from pipeline.report.page import write_report
from run_helpers import CLIP, audit_creations, run

DEMO = REPO / "samples" / "demo.yaml"
SETTING_NAMES = list(Settings.__dataclass_fields__)
CHECKS = settings(max_examples=scaled(25, 300), deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ENV_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=20)
SAFE_NAME = re.compile(r"[A-Za-z0-9._=-]{1,120}")


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def cli_environment(**extra: str) -> Iterator[None]:
    """The distinctive credentials, an API URL that refuses connections, no retries, no inherited LTX_BATCH_*."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LTX_BATCH_", "SCENARIO_"))}
    base.update({"SCENARIO_API_KEY": API_KEY, "SCENARIO_API_SECRET": API_SECRET,
                 "SCENARIO_API_URL": f"http://127.0.0.1:{closed_port()}", "LTX_BATCH_MAX_RETRIES": "0",
                 "LTX_BATCH_CONNECT_TIMEOUT_S": "2", **extra})
    with mock.patch.dict(os.environ, base, clear=True):
        yield


def cli(*argv: str) -> tuple[int, str]:
    """`ltx-batch ARGV` in-process: its exit status and everything it printed (an exception fails the test)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(argv))
        except SystemExit as exc:  # argparse
            status = int(exc.code or 0)
    printed = out.getvalue() + err.getvalue()
    assert_no_traceback(printed, f"ltx-batch {' '.join(argv[:1])}")
    assert_no_secrets(texts={"output": printed})
    return status, printed


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def check_junk_manifest(text: str) -> None:
    """plan says 0 or 2 (with a message); a bad manifest is refused by run too, before anything is written;
    a small good one runs against a refused connection and ends cleanly."""
    with tempfile.TemporaryDirectory() as folder, cli_environment():
        root = Path(folder)
        write_inputs(root)
        manifest = root / "m.yaml"
        manifest.write_text(text, encoding="utf-8", errors="surrogatepass")
        out = root / "out"
        before = files_under(root)
        status, printed = cli("plan", str(manifest), "--out", str(out))
        assert status in (0, 2), printed[-2000:]
        if status == 2:
            assert "ltx-batch plan: error:" in printed and len(printed.strip().splitlines()) >= 2
            status, printed = cli("run", str(manifest), "--out", str(out))
            assert status == 2 and "ltx-batch run: error:" in printed, printed[-2000:]
            assert not out.exists()
            return
        if "jobs      " in printed and int(printed.split("jobs      ")[1].split()[0].replace(",", "")) <= 6:
            status, printed = cli("run", str(manifest), "--out", str(out), "--no-report")
            assert status == 1, printed[-2000:]  # nothing answers: a clear error, never a crash
        assert all(p.is_relative_to(out) for p in files_under(root) - before)
        if out.exists():
            assert_no_secrets(trees=[out])


@CHECKS
@given(text=st.one_of(st.text(max_size=300), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_cli_on_random_text_manifests(text: str) -> None:
    """Arbitrary text as a manifest: plan and run exit 2 with a message, never a traceback, nothing written."""
    check_junk_manifest(text)


@CHECKS
@given(doc=st.one_of(TOP, SHAPED, VALUES))
def test_cli_on_generated_manifests(doc: object) -> None:
    """Manifests built from the manifest's own vocabulary: a clean plan/run or exit 2 with located problems."""
    check_junk_manifest(yaml.safe_dump(doc, allow_unicode=True))


CONFIG_VALUES = st.one_of(SCALARS, VALUES, st.sampled_from(["", " ", "1e999", "-0", "nan", "http://", "ftp://x",
                                                            "https://127.0.0.1:1", "json-base64", "10s"]))


@CHECKS
@given(doc=st.one_of(st.dictionaries(st.sampled_from([*SETTING_NAMES, "rate", "max_retry", ""]), CONFIG_VALUES,
                                     max_size=5), VALUES, st.text(max_size=100)))
def test_cli_on_generated_config_files(doc: object) -> None:
    """--config with junk: exit 2 naming the file, or a valid config; never a traceback."""
    with tempfile.TemporaryDirectory() as folder, cli_environment():
        config = Path(folder) / "settings.yaml"
        config.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        status, printed = cli("plan", str(DEMO), "--config", str(config), "--out", str(Path(folder) / "out"))
        assert status in (0, 2), printed[-2000:]
        if status == 2:
            assert str(config) in printed or "poll_min_interval_s" in printed, printed
            status, printed = cli("run", str(DEMO), "--config", str(config), "--out", str(Path(folder) / "out"))
            assert status == 2, printed[-2000:]
            assert not (Path(folder) / "out").exists()


@CHECKS
@given(env=st.dictionaries(st.sampled_from(SETTING_NAMES), st.one_of(ENV_TEXT, st.sampled_from(
    ["nan", "inf", "-1", "0", "1e309", "0x10", "１２", "5 ", "http://", "https://h:99999"])), min_size=1, max_size=4))
def test_cli_on_junk_environment_variables(env: Mapping[str, str]) -> None:
    """LTX_BATCH_* variables with junk: exit 2 naming the environment, or valid settings; never a traceback."""
    variables = {f"LTX_BATCH_{name.upper()}": value for name, value in env.items()}
    with tempfile.TemporaryDirectory() as folder, cli_environment(**variables):
        out = Path(folder) / "out"
        status, printed = cli("plan", str(DEMO), "--out", str(out))
        assert status in (0, 2), printed[-2000:]
        if status == 2:
            assert "environment" in printed or "poll_min_interval_s" in printed, printed  # the latter: two sources
            status, printed = cli("run", str(DEMO), "--out", str(out))
            assert status == 2 and not out.exists(), printed[-2000:]


@pytest.mark.parametrize("flags", [
    ["--rate", "nan"], ["--rate", "-1"], ["--rate", "0"], ["--rate", "inf"], ["--rate", "1e309"], ["--rate", "x"],
    ["--max-in-flight", "0"], ["--max-in-flight", "1.5"], ["--downloaders", "-3"], ["--api-url", "ftp://x"],
    ["--api-url", "127.0.0.1:8765"], ["--out", ""], ["--config", "/nonexistent/settings.yaml"],
    ["--unknown-flag"],
], ids=lambda f: " ".join(f))
def test_cli_on_junk_flags(tmp_path: Path, flags: list[str]) -> None:
    """Junk flags to run: exit 2 with a message before anything is sent or written."""
    with cli_environment():
        status, printed = cli("run", str(DEMO), *(["--out", str(tmp_path / "out")] if "--out" not in flags else []),
                              *flags)
    assert status == 2 and "error" in printed, printed[-2000:]
    assert not (tmp_path / "out").exists()


SUBPROCESS_CASES: list[tuple[str, list[str], dict[str, str], bytes | None]] = [
    ("binary manifest", ["plan", "{m}"], {}, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xff\xfe"),
    ("NUL in YAML", ["run", "{m}", "--out", "{o}"], {}, b"name: x\0y\nprompts: [a]\n"),
    ("manifest is a folder", ["run", "{d}", "--out", "{o}"], {}, None),
    ("missing manifest", ["run", "{d}/missing.yaml", "--out", "{o}"], {}, None),
    ("junk config", ["run", "{m}", "--config", "{c}", "--out", "{o}"], {}, None),
    ("junk env", ["run", "{m}", "--out", "{o}"], {"LTX_BATCH_MAX_RETRIES": "many"}, None),
    ("NaN rate from env", ["run", "{m}", "--out", "{o}"], {"LTX_BATCH_MAX_REQUESTS_PER_S": "NaN"}, None),
    ("no credentials", ["run", "{m}", "--out", "{o}"], {"SCENARIO_API_KEY": ""}, None),
    ("bad API URL", ["run", "{m}", "--out", "{o}"], {"SCENARIO_API_URL": "file:///etc"}, None),
    ("status of no run", ["status", "{d}"], {}, None),
    ("report of no run", ["report", "{d}"], {}, None),
]


@pytest.mark.timeout(60)
async def test_real_cli_on_bad_input_exits_2_without_traceback(tmp_path: Path) -> None:
    """The real `python -m pipeline` on bad files, flags and variables: exit 2, one message, no traceback."""
    async def one(name: str, argv: list[str], env_extra: dict[str, str], data: bytes | None) -> str:
        folder = tmp_path / re.sub(r"\W+", "-", name)
        folder.mkdir()
        manifest = folder / "m.yaml"
        manifest.write_bytes(data if data is not None else f"inputs: {{video: {CLIP}}}\nprompts: [a]\n".encode())
        (folder / "c.yaml").write_text("max_requests_per_s: [1, 2]\nnope: 3\n")
        args = [a.format(m=manifest, o=folder / "out", d=folder, c=folder / "c.yaml") for a in argv]
        env = {**cli_env(f"http://127.0.0.1:{closed_port()}"), **env_extra}
        result = await run_cli(*args, env=env, cwd=folder, timeout_s=30)
        printed = result.stdout + result.stderr
        assert_no_traceback(printed, name)
        assert result.returncode == 2 and "error" in printed, f"{name}: {result.returncode}\n{printed[-2000:]}"
        assert not (folder / "out").exists(), name
        assert_no_secrets(texts={name: printed})
        return printed.strip().splitlines()[-1]

    lines = await asyncio.gather(*(one(*case) for case in SUBPROCESS_CASES))
    record_figures("bad input (real CLI)", messages=dict(zip((c[0] for c in SUBPROCESS_CASES), lines, strict=True)))


HOSTILE_PROMPTS = [
    "../../../../../../etc/passwd",
    "a/b\\c/../../d/..",
    "..",
    "\U0001F600" * 2500,  # 10 kB of emoji
    "<script>alert('x')</script></script><img src=x onerror=alert(1)>",
    "\u202egnp.exe\u202c CON NUL COM1: %s %n {0} ${HOME} $(rm -rf /) `id`",
    "line one\nline two\r\n\ttabbed\x1b[31mred\x1b[0m",
    "'; DROP TABLE jobs; -- \" ' `",
]


@pytest.mark.timeout(60)
async def test_hostile_prompts_run_for_real(tmp_path: Path, emulator_factory, caplog) -> None:
    """Prompts with path separators, '..', 10 kB of emoji and HTML run: files only in videos/, safe names, escaped."""
    caplog.set_level("DEBUG")
    server = await emulator_factory(api_key=API_KEY, api_secret=API_SECRET)
    doc = {"name": "hostile-prompts", "inputs": {"video": str(CLIP)}, "prompts": HOSTILE_PROMPTS,
           "sweep": {"negativePrompt": ["../up", "<b>x</b>/y", "\\\\server\\share"]}, "seeds": [1]}
    manifest = tmp_path / "hostile.yaml"
    manifest.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    jobs = len(HOSTILE_PROMPTS) * 3
    before = files_under(tmp_path)
    summary = await asyncio.wait_for(run(manifest, server, tmp_path / "out", credentials=CREDENTIALS), 40)
    assert summary.exit_status == 0, summary.counts
    run_dir = summary.run_dir
    report = write_report(run_dir, posters=False)

    results = await check_complete(run_dir, server, expect_jobs=jobs)
    assert audit_creations(run_dir / JOURNAL_NAME, await server.emulator.job_records())["paid_twice"] == 0
    assert {j["prompt"] for j in results["jobs"]} == set(HOSTILE_PROMPTS)  # sent and recorded exactly
    served = {r["body"]["prompt"] for r in await server.emulator.job_records()}
    assert served == set(HOSTILE_PROMPTS)
    assert all(p.is_relative_to(run_dir) for p in files_under(tmp_path) - before - {manifest})
    for job in results["jobs"]:
        path = run_dir / job["files"][0]["path"]
        assert path.parent == run_dir / "videos" and SAFE_NAME.fullmatch(path.name), path.name
    with (run_dir / "results.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == jobs and {r["prompt"] for r in rows} == set(HOSTILE_PROMPTS)
    html = report.path.read_text(encoding="utf-8")
    for raw in ("<script>alert", "<img src=x", "</script><img", "<b>x</b>"):
        assert raw not in html, f"report.html holds unescaped {raw!r}"
    assert "&lt;script&gt;alert" in html or "\\u003cscript\\u003ealert" in html
    json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    assert_no_secrets(trees=[tmp_path / "out"], texts={"log": caplog.text})
    names = sorted(p.name for p in (run_dir / "videos").iterdir())
    record_figures("bad input hostile prompts", jobs=jobs, exit_status=summary.exit_status,
                   longest_name=max(map(len, names)), example_names=names[:3])


async def test_nul_in_a_prompt_is_refused_at_plan_time(tmp_path: Path) -> None:
    """A NUL character in a prompt is a located manifest error (exit 2), not something sent."""
    manifest = tmp_path / "nul.yaml"
    manifest.write_text(yaml.safe_dump({"inputs": {"video": str(CLIP)}, "prompts": ["nul\0byte"]}))
    with cli_environment():
        status, printed = await asyncio.to_thread(cli, "plan", str(manifest))
    assert status == 2 and "NUL" in printed, printed
