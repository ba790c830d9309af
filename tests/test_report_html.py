"""The HTML contact sheet: escaping of hostile text, safe links, self-containment, scale, posters, sources."""

from __future__ import annotations

import base64
import hashlib
import html
import os
import re
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from runfolder import job, make_clip, write_run

from pipeline.cli import run as cli_run
from pipeline.cli.main import main
from pipeline.ledger.journal import Journal
from pipeline.ledger.replay import JOURNAL_NAME, STATES
from pipeline.report.page import write_report
from pipeline.ledger.results import RESULTS_NAME
from pipeline.run.runner import RunSummary
from pipeline.report.sheet import EAGER_VIDEOS, href

FFMPEG = shutil.which("ffmpeg")


class Page(HTMLParser):
    """Every start tag with its attributes, and the text inside <script>."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def report(run_dir: Path, **options: Any) -> tuple[str, Page]:
    result = write_report(run_dir, **{"posters": False, **options})
    text = result.path.read_bytes().decode("utf-8")
    return text, Page(text)


HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "</video><script>alert(document.cookie)</script><video>",
    "' onmouseover='alert(1)' x='",
    "&lt;already escaped&gt; & ampersands &amp;",
    "🎬" * 2500 + " long",  # 10 kB of emoji
    "../../etc/passwd \\ C:\\Windows\\x / videos/../../y",
    "line\nbreak\r\nand\ttab \u2028 \x0b",
    "</textarea></style></title><!-- --!> <![CDATA[ ]]>",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_escaped_everywhere(tmp_path: Path, text: str) -> None:
    """Prompts, parameters, errors and names come out as text: no new tags, attributes or scripts."""
    clip = make_clip(tmp_path / "clip.mp4")
    ok = job(0, prompt=text, params={"negativePrompt": text}, swept={"videoStrength": 0.5})
    bad = job(1, prompt=text, swept={"videoStrength": 0.9}, status="failed", error=text, error_kind="rejected")
    run_dir = write_run(tmp_path / "run", [ok, bad], name="sweep", videos=clip)
    page_text, page = report(run_dir)
    assert [name for name, _ in page.tags].count("script") == 1
    assert len(page.all("video")) == 1 and not page.all("img")
    assert all(not k.startswith("on") for _, attrs in page.tags for k in attrs)
    assert all(text not in script for script in page.scripts)
    if any(c in text for c in "<>\"'&"):
        assert text not in page_text
    assert html.escape(text, quote=True) in page_text


@pytest.mark.parametrize(("path", "expected"), [
    ("videos/00001_a-city_s1.mp4", "./videos/00001_a-city_s1.mp4"),
    ("videos/a b#c?d%.mp4", "./videos/a%20b%23c%3Fd%25.mp4"),
    ("videos/é✓.mp4", "./videos/%C3%A9%E2%9C%93.mp4"),
    ("videos/a\\b.mp4", "./videos/a%5Cb.mp4"),
    ("videos/javascript:alert(1).mp4", "./videos/javascript%3Aalert%281%29.mp4"),
    ("javascript:alert(1)", None),
    ("../outside.mp4", None),
    ("videos/../../outside.mp4", None),
    ("/etc/passwd", None),
    ("//evil.example/x.mp4", None),
    ("C:/x.mp4", None),
    ("", None),
])
def test_links_are_percent_encoded_relative_paths_inside_the_run(path: str, expected: str | None) -> None:
    """A file link is ./ plus the percent-encoded relative path; anything leaving the run folder has none."""
    assert href(path) == expected


def test_file_names_with_odd_characters_play_and_link(tmp_path: Path) -> None:
    """An output named with spaces, '#' and '?' gets a working percent-encoded src, href and poster."""
    clip = make_clip(tmp_path / "clip.mp4")
    record = job(0, files=["videos/a b#c?.mp4"])
    run_dir = write_run(tmp_path / "run", [record], videos=clip)
    _, page = report(run_dir)
    (video,) = page.all("video")
    assert video["src"] == "./videos/a%20b%23c%3F.mp4"
    assert "./videos/a%20b%23c%3F.mp4" in [a.get("href") for a in page.all("a")]


def test_page_is_self_contained(tmp_path: Path) -> None:
    """No network: inline style and script only, a CSP pinning their hashes, no absolute URL anywhere."""
    clip = make_clip(tmp_path / "clip.mp4")
    run_dir = write_run(tmp_path / "run", [job(i, swept={"videoStrength": v}) for i, v in enumerate((0.2, 0.6))],
                        videos=clip)
    page_text, page = report(run_dir)
    assert not re.search(r"(?i)\b(?:src|href|poster)\s*=\s*\"(?:https?:|//|file:)", page_text)
    assert not page.all("link") or all(a.get("href", "").startswith("data:") for a in page.all("link"))
    assert all("src" not in attrs for name, attrs in page.tags if name == "script")
    (csp,) = [m["content"] for m in page.all("meta") if m.get("http-equiv") == "Content-Security-Policy"]
    (script,) = page.scripts
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp


def test_failed_unknown_and_pending_jobs_show_status_and_error_in_place(tmp_path: Path) -> None:
    """Jobs without a video show their state and error where the video would be; downloaded ones play."""
    clip = make_clip(tmp_path / "clip.mp4")
    jobs = [job(0, swept={"videoStrength": 0.2}),
            job(1, swept={"videoStrength": 0.4}, status="failed", error="GPU out of memory", error_kind="job-failed"),
            job(2, swept={"videoStrength": 0.6}, status="unknown", error_kind="unknown-post"),
            job(3, swept={"videoStrength": 0.8}, status="pending")]
    run_dir = write_run(tmp_path / "run", jobs, videos=clip)
    page_text, page = report(run_dir)
    assert len(page.all("video")) == 1
    classes = [a["class"] for a in page.all("article")]
    assert classes == ["card c-downloaded", "card c-failed", "card c-unknown", "card c-pending"]
    assert "job-failed: GPU out of memory" in page_text
    assert '<div class="empty">unknown</div>' in page_text and '<div class="empty">pending</div>' in page_text


def test_missing_output_file_is_said_not_shown_broken(tmp_path: Path) -> None:
    """A downloaded job whose file is gone from disk gets no <video> (no broken player), and says so."""
    record = job(0)
    run_dir = write_run(tmp_path / "run", [record])
    page_text, page = report(run_dir)
    assert not page.all("video") and "file missing on disk" in page_text


def test_thousand_jobs_stay_light(tmp_path: Path) -> None:
    """1,000 jobs: the page builds in well under seconds, stays a few MB, and only the first videos get a src."""
    clip = make_clip(tmp_path / "clip.mp4")
    jobs = []
    for strength in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
        for modality in ("none", "canny", "depth", "pose", "detailer"):
            for seed in range(20):
                jobs.append(job(len(jobs), prompt="a neon city, rain, cinematic", seed=seed,
                                swept={"videoStrength": strength, "modality": modality, "seed": seed}))
    run_dir = write_run(tmp_path / "run", jobs, videos=clip)
    started = time.monotonic()
    result = write_report(run_dir, posters=False)
    build_s = time.monotonic() - started
    page = Page(result.path.read_text(encoding="utf-8"))
    videos = page.all("video")
    assert len(videos) == 1000 and result.jobs == 1000
    assert sum(1 for v in videos if "src" in v) == EAGER_VIDEOS
    assert all(v["preload"] == "none" and v["data-src"] for v in videos if "src" not in v)
    assert result.bytes < 2_500_000, result.bytes
    assert build_s < 5.0, build_s


@pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed")
def test_posters_are_extracted_once_and_reused(tmp_path: Path) -> None:
    """With ffmpeg each video gets a JPEG poster in posters/, made once and reused by the next report."""
    clip = make_clip(tmp_path / "clip.mp4")
    run_dir = write_run(tmp_path / "run", [job(i, swept={"videoStrength": v}) for i, v in enumerate((0.2, 0.6))],
                        videos=clip)
    result = write_report(run_dir)
    posters = sorted((run_dir / "posters").glob("*.jpg"))
    assert result.posters == 2 and len(posters) == 2
    assert all(p.read_bytes()[:3] == b"\xff\xd8\xff" for p in posters)
    page = Page(result.path.read_text(encoding="utf-8"))
    assert sorted(v["poster"] for v in page.all("video")) == sorted(href(f"posters/{p.name}") for p in posters)
    stamps = [p.stat().st_mtime_ns for p in posters]
    write_report(run_dir)
    assert [p.stat().st_mtime_ns for p in posters] == stamps
    assert not [p for p in (run_dir / "posters").iterdir() if p.suffix != ".jpg" or p.name.startswith(".")]


def test_without_ffmpeg_there_is_no_poster_attribute(tmp_path: Path) -> None:
    """No usable ffmpeg: videos have no poster attribute and the page has no image at all."""
    clip = make_clip(tmp_path / "clip.mp4")
    run_dir = write_run(tmp_path / "run", [job(0)], videos=clip)
    result = write_report(run_dir, ffmpeg=str(tmp_path / "no-such-ffmpeg"))
    page = Page(result.path.read_text(encoding="utf-8"))
    assert result.posters == 0 and "poster" not in page.all("video")[0] and not page.all("img")


def test_report_rebuilds_from_the_journal_without_results_json(tmp_path: Path) -> None:
    """With results.json missing, the report shows the jobs the journal knows, from their recorded specs."""
    clip = make_clip(tmp_path / "clip.mp4")
    records = [job(0, swept={"videoStrength": 0.3}), job(1, swept={"videoStrength": 0.7}, status="failed",
                                                          error="bad", error_kind="rejected")]
    run_dir = tmp_path / "run"
    journal = Journal(run_dir / JOURNAL_NAME, fsync=False)
    journal.write_now("run", name="from-journal", job_count=3, pid=1)
    for record in records:
        spec = {k: record[k] for k in ("index", "batch", "key", "model", "params", "inputs", "swept")}
        journal.write_now("intent", key=record["key"], spec=spec, attempt=1)
        journal.write_now("submitted", key=record["key"], job_id=f"job_{record['index']}")
    journal.write_now("succeeded", key=records[0]["key"], asset_ids=["asset_o"])
    (run_dir / "videos").mkdir()
    shutil.copyfile(clip, run_dir / "videos" / "a.mp4")
    journal.write_now("downloaded", key=records[0]["key"], asset_id="asset_o", path="videos/a.mp4",
                      bytes=clip.stat().st_size, sha256="0" * 64)
    journal.write_now("failed", key=records[1]["key"], reason="rejected", error="bad")
    journal.close()
    assert not (run_dir / RESULTS_NAME).exists()
    page_text, page = report(run_dir)
    assert "<h1>from-journal</h1>" in page_text
    assert [a["class"] for a in page.all("article")] == ["card c-downloaded", "card c-failed"]
    assert page.all("video")[0]["src"] == "./videos/a.mp4"
    assert (run_dir / "results.csv").is_file()


def test_report_follows_a_journal_newer_than_results_json(tmp_path: Path) -> None:
    """A run in progress: results.json is from the last session, the journal's newer states win."""
    records = [job(0, seed=1, status="pending"), job(1, seed=2, status="pending")]
    run_dir = write_run(tmp_path / "run", records)
    old = time.time() - 60
    os.utime(run_dir / RESULTS_NAME, (old, old))
    journal = Journal(run_dir / JOURNAL_NAME, fsync=False)
    spec = {k: records[1][k] for k in ("index", "batch", "key", "model", "params", "inputs", "swept")}
    journal.write_now("intent", key=records[1]["key"], spec=spec, attempt=1)
    journal.write_now("failed", key=records[1]["key"], reason="rejected", error="videoStrength too high")
    journal.close()
    page_text, page = report(run_dir)
    assert [a["class"] for a in page.all("article")] == ["card c-pending", "card c-failed"]
    assert "videoStrength too high" in page_text


def test_report_command_exit_statuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ltx-batch report`: 0 and the page's path; 2 without traceback for a bad folder or --rows."""
    run_dir = write_run(tmp_path / "run", [job(0, swept={"videoStrength": 0.4}), job(1, swept={"videoStrength": 0.8})])
    assert main(["report", str(run_dir), "--no-posters", "-q"]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / "report.html")
    assert main(["report", str(run_dir), "--rows", "videoStrenght"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'videoStrength'?" in err and "Traceback" not in err
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "no ledger.jsonl" in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "writes_report"), [([], True), (["--no-report"], False)])
def test_run_writes_the_report_at_its_end_unless_told_not_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             flags: list[str], writes_report: bool) -> None:
    """`run` hands the runner a finish hook that writes report.html; `--no-report` hands it none."""
    seen: list[Any] = []

    async def spy_run_manifest(manifest: Any, settings: Any, credentials: Any, run_dir: Path,
                               options: Any) -> RunSummary:
        seen.append(options.on_finish)
        write_run(run_dir, [job(0, swept={"videoStrength": 0.5}), job(1, swept={"videoStrength": 0.9})])
        if options.on_finish is not None:
            options.on_finish(run_dir)
        return RunSummary(run_dir, 0, dict.fromkeys(STATES, 0) | {"downloaded": 2}, 2, 0.1, 4, 0, None, None)

    monkeypatch.setattr(cli_run, "run_manifest", spy_run_manifest)
    monkeypatch.setenv("SCENARIO_API_KEY", "k")
    monkeypatch.setenv("SCENARIO_API_SECRET", "s")
    manifest = Path(__file__).resolve().parent.parent / "samples" / "demo.yaml"
    assert main(["run", str(manifest), "--out", str(tmp_path), "-q", *flags]) == 0
    assert (seen[0] is not None) == writes_report
    assert (tmp_path / "demo" / "report.html").is_file() == writes_report
