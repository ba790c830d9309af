"""`ltx-batch plan`: output, flags, settings, exit statuses (0 ok, 2 bad input), offline, no tracebacks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from manifest_helpers import write_inputs

from pipeline.cli.main import main
from pipeline.manifest.load import load_manifest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SAMPLE_COUNTS = {"demo.yaml": 12, "seed-study.yaml": 16, "overnight-grid.yaml": 1584}


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """plan must not touch the network: any socket creation fails the test."""
    monkeypatch.delenv("LTX_BATCH_OUTPUT_DIR", raising=False)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("plan opened a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["plan", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def manifest_file(folder: Path, text: str) -> Path:
    write_inputs(folder)
    path = folder / "m.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def table_rows(out: str) -> list[str]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("index"))
    return [line for line in lines[start + 1:] if line.strip() and "more jobs" not in line]


@pytest.mark.parametrize(("sample", "count"), SAMPLE_COUNTS.items())
def test_samples_plan_cleanly(capsys: pytest.CaptureFixture[str], sample: str, count: int) -> None:
    """Every sample manifest plans with exit 0, no warnings, and the documented job count."""
    status, out, err = run(capsys, str(SAMPLES / sample), "--all")
    assert status == 0, err
    assert f"jobs      {count:,}" in out and "warning" not in out + err
    assert len(table_rows(out)) == count
    assert load_manifest(SAMPLES / sample).warnings == ()


def test_sample_clip_is_small_h264(capsys: pytest.CaptureFixture[str]) -> None:
    """The committed sample clip and frame exist and are small (the clip an MP4 with moov up front)."""
    clip = (SAMPLES / "clip.mp4").read_bytes()
    assert len(clip) < 200_000 and clip[4:8] == b"ftyp" and b"moov" in clip[:64] and b"avc1" in clip[:64]
    assert (SAMPLES / "first-frame.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_shows_counts_columns_and_run_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The summary names the run folder (<out>/<name>/), the inputs and counts; rows show key prefix and axes."""
    status, out, _ = run(capsys, str(SAMPLES / "demo.yaml"), "--out", str(tmp_path / "outputs"))
    assert status == 0
    assert f"run       demo  ->  {tmp_path / 'outputs' / 'demo'}{os.sep}" in out
    assert "clip.mp4" in out and "jobs      12  (main: 12)" in out
    header = next(line for line in out.splitlines() if line.startswith("index"))
    assert header.split() == ["index", "key", "prompt", "videoStrength", "modality", "seed"]
    first = table_rows(out)[0]
    job = next(load_manifest(SAMPLES / "demo.yaml").jobs())
    assert first.split()[:2] == ["0", job.key[:12]] and first.endswith(" 42")


@pytest.mark.parametrize(("flags", "rows", "gap"), [([], 16, False), (["--limit", "5"], 5, True),
                                                    (["--limit", "1"], 1, True), (["--all"], 16, False)])
def test_limit_shows_first_and_last_rows(capsys: pytest.CaptureFixture[str], flags: list[str], rows: int,
                                         gap: bool) -> None:
    """--limit N shows the first and last jobs (N in all) with a gap line; --all shows every job."""
    status, out, _ = run(capsys, str(SAMPLES / "seed-study.yaml"), *flags)
    shown = table_rows(out)
    assert status == 0 and len(shown) == rows and ("more jobs" in out) == gap
    if gap and rows > 1:
        assert shown[0].split()[0] == "0" and shown[-1].split()[0] == "15"


def test_settings_layers_pick_the_output_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The run folder follows the settings: --config file < LTX_BATCH_OUTPUT_DIR < --out."""
    config = tmp_path / "c.yaml"
    config.write_text("output_dir: from-config\n")
    demo = str(SAMPLES / "demo.yaml")
    assert f"from-config{os.sep}demo" in run(capsys, demo, "--config", str(config))[1]
    monkeypatch.setenv("LTX_BATCH_OUTPUT_DIR", "from-env")
    assert f"from-env{os.sep}demo" in run(capsys, demo, "--config", str(config))[1]
    assert f"from-flag{os.sep}demo" in run(capsys, demo, "--config", str(config), "--out", "from-flag")[1]


def test_json_streams_every_job(capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints a JSON array of every job (JobSpec.to_json plus the run name), nothing else on stdout."""
    status, out, _ = run(capsys, str(SAMPLES / "overnight-grid.yaml"), "--json")
    assert status == 0
    data = json.loads(out)
    manifest = load_manifest(SAMPLES / "overnight-grid.yaml")
    assert len(data) == manifest.job_count
    assert data[7] == {"name": "overnight-grid", **list(manifest.jobs(7, 8))[0].to_json()}
    assert len({job["key"] for job in data}) == len(data)


def test_warnings_are_shown(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Warnings (e.g. rounding) appear in the table output, and on stderr with --json (stdout stays JSON)."""
    path = manifest_file(tmp_path, "inputs: {video: clip.mp4}\nprompts: [a]\ndefaults: {width: 1000, height: 768}\n")
    status, out, _ = run(capsys, str(path))
    assert status == 0 and "warning" in out and "defaults.width: 1000 is not a multiple of 64" in out
    status, out, err = run(capsys, str(path), "--json")
    assert status == 0 and json.loads(out)[0]["params"]["width"] == 1024 and "rounds it to 1024" in err


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("inputs: {video: clip.mp4}\nprompts: [a]\nsweep: {videoStrenght: [1]}\n", "did you mean 'videoStrength'"),
        ("inputs: {video: nope.mp4}\nprompts: [a]\n", "file not found"),
        ("inputs: {video: clip.mp4\n", "YAML syntax error"),
        ("", "the file is empty"),
    ],
)
def test_bad_manifest_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, words: str) -> None:
    """A bad manifest exits 2 with the located problems on stderr and nothing on stdout."""
    path = manifest_file(tmp_path, text)
    status, out, err = run(capsys, str(path))
    assert status == 2 and out == ""
    assert words in err and f"{path}:" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "flags",
    [["--limit", "0"], ["--limit", "x"], ["--all", "--json"], ["--limit", "3", "--all"], ["--bogus"]],
)
def test_bad_flags_exit_2(capsys: pytest.CaptureFixture[str], flags: list[str]) -> None:
    """Bad or conflicting flags exit 2 with a usage message."""
    with pytest.raises(SystemExit) as caught:
        main(["plan", str(SAMPLES / "demo.yaml"), *flags])
    assert caught.value.code == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "text"), [("missing.yaml", None), ("bad.yaml", "output_dir: 3\n")])
def test_bad_config_or_missing_manifest_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str,
                                                text: str | None) -> None:
    """A missing manifest or a bad --config file exits 2 without a traceback."""
    if text is not None:
        (tmp_path / name).write_text(text)
        argv = [str(SAMPLES / "demo.yaml"), "--config", str(tmp_path / name)]
    else:
        argv = [str(tmp_path / name)]
    status, _, err = run(capsys, *argv)
    assert status == 2 and "Traceback" not in err and "error" in err


def test_python_m_pipeline_subprocess(tmp_path: Path) -> None:
    """`python -m pipeline plan` exits 0 on a sample, 2 on a bad manifest, never with a traceback."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LTX_BATCH_OUTPUT_DIR", None)
    good = subprocess.run([sys.executable, "-m", "pipeline", "plan", str(SAMPLES / "demo.yaml")],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert good.returncode == 0 and "jobs      12" in good.stdout and "Traceback" not in good.stderr
    bad = manifest_file(tmp_path, "inputs: {video: clip.mp4}\nprompts: [a]\nseeds: [1, 1]\n")
    result = subprocess.run([sys.executable, "-m", "pipeline", "plan", str(bad)],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 2 and "seeds[1]: seed 1 is listed twice" in result.stderr
    assert "Traceback" not in result.stderr


def test_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    """`plan --all | head -1`: the reader going away ends plan quietly with status 0."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "pipeline", "plan", str(SAMPLES / "overnight-grid.yaml"),
                                "--all"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, env=env)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()
    process.stdout.close()
    err = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=60) == 0 and "Traceback" not in err and "Exception" not in err
