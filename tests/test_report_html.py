"""The HTML contact sheet: escaping of hostile text, safe links, self-containment, scale, posters, sources, and
what the page holds (contents, fixed settings, selectors in manifest order)."""

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
from pipeline.report.tiles import href

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

    def tiles(self) -> list[dict[str, str | None]]:
        """Every job's tile (a link to its video, or a box saying its state), in page order."""
        return [attrs for _, attrs in self.tags if "t" in (attrs.get("class") or "").split()]

    def classes(self) -> list[str]:
        return [str(attrs["class"]) for attrs in self.tiles()]


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
    assert not page.all("video") and not page.all("img") and len(page.tiles()) == 2
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
    (tile,) = page.tiles()
    assert tile["href"] == "./videos/a%20b%23c%3F.mp4"


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
    assert page.classes() == ["t", "t x x-failed", "t x x-unknown", "t x x-pending"]
    assert page.tiles()[0]["href"] and not any("href" in tile for tile in page.tiles()[1:])
    assert page.tiles()[1]["data-e"] == "job-failed: GPU out of memory"
    assert "<span>unknown<small>unknown-post</small></span>" in page_text and "<span>pending</span>" in page_text


def test_missing_output_file_is_said_not_shown_broken(tmp_path: Path) -> None:
    """A downloaded job whose file is gone from disk gets no <video> (no broken player), and says so."""
    record = job(0)
    run_dir = write_run(tmp_path / "run", [record])
    page_text, page = report(run_dir)
    assert page.classes() == ["t x x-downloaded"] and "file missing on disk" in page_text


def test_thousand_jobs_stay_light(tmp_path: Path) -> None:
    """1,000 jobs: the page builds in well under seconds, stays small, and holds no <video>: players are made
    by the script for the tiles near the screen only."""
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
    assert len(page.tiles()) == 1000 and result.jobs == 1000 and not page.all("video")
    assert all(tile["href"] for tile in page.tiles())
    assert result.bytes < 800_000, result.bytes
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
    assert sorted(i["src"] for i in page.all("img")) == sorted(href(f"posters/{p.name}") for p in posters)
    assert all(i["loading"] == "lazy" for i in page.all("img"))
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
    assert result.posters == 0 and page.tiles()[0]["href"] and not page.all("img")


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
    assert page.classes() == ["t", "t x x-failed"]
    assert page.tiles()[0]["href"] == "./videos/a.mp4"
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
    assert page.classes() == ["t x x-pending", "t x x-failed"]
    assert "videoStrength too high" in page_text


def test_report_command_exit_statuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ltx-batch report`: 0 and the page's path; 2 without traceback for a bad folder or --rows."""
    run_dir = write_run(tmp_path / "run", [job(0, swept={"videoStrength": 0.4}), job(1, swept={"videoStrength": 0.8})])
    assert main(["report", str(run_dir), "--no-posters", "-q"]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / "report.html")
    assert main(["report", str(run_dir), "--rows", "videoStrenght"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'videoStrength'?" in err and "Traceback" not in err
    assert main(["report", str(run_dir), "--cols", "modality"]) == 2
    err = capsys.readouterr().err
    assert "'modality' is not swept in this run: every job has modality none" in err
    assert "Axes this run sweeps: videoStrength" in err and "Traceback" not in err
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


def two_batches() -> list[dict[str, Any]]:
    """Batch `frames`: 2 prompts x width/height zipped (1280, 768, 1024) x videoStrength (0.8, 0.4) x seeds (9, 3),
    numInferenceSteps 30; batch `camera`: cameraMotion x videoStrength, one prompt and seed."""
    jobs = []
    for p, prompt in enumerate(("a city", "a harbour")):
        for width, height in ((1280, 768), (768, 1280), (1024, 1024)):
            for strength in (0.8, 0.4):
                for seed in (9, 3):
                    jobs.append(job(len(jobs), prompt=prompt, seed=seed, batch="frames", params={"numInferenceSteps": 30},
                                    swept={"prompt": p, "width": width, "height": height, "videoStrength": strength,
                                           "seed": seed}))
    for motion in ("jib_up", "dolly_in"):
        for strength in (0.8, 0.4):
            jobs.append(job(len(jobs), prompt="a city", seed=9, batch="camera",
                            swept={"cameraMotion": motion, "videoStrength": strength}))
    return jobs


def test_page_has_contents_fixed_settings_and_selectors_in_manifest_order(tmp_path: Path) -> None:
    """A link per batch and table; each table says what it holds fixed; selectors and filters list values in
    the manifest's order; every tile names its prompt and seed for the selectors."""
    run_dir = write_run(tmp_path / "run", two_batches())
    page_text, page = report(run_dir, rows="videoStrength", cols="width")
    links = [a["href"] for a in page.all("a") if (a.get("href") or "").startswith("#")]
    assert links == ["#s1", "#t1", "#s2", "#t2", "#t3", "#toc"]  # camera: one table per cameraMotion
    assert [t["id"] for t in page.all("div") if "tbl" in (t.get("class") or "")] == ["t1", "t2", "t3"]
    selects = {}
    for name, attrs in page.tags:
        if name == "select":
            current = selects.setdefault(str(attrs["name"]), [])
        elif name == "option":
            current.append(attrs["value"])
    assert selects == {"prompt": ["1", "2"], "seed": ["9", "3"], "batch": ["", "frames", "camera"],
                       "cameraMotion": ["", "none", "jib_up", "dolly_in"]}
    fixed = re.search(r'id="t1".*?<div class="fixed">(.*?)</div>', page_text).group(1)
    assert "numInferenceSteps <b>30</b>" in fixed and "video <b>clip.mp4</b>" in fixed
    assert "more at the model default</summary>" in fixed and "guidanceScale 3" in fixed
    assert "prompt" not in fixed and "seed" not in fixed  # they vary: the selectors choose them
    headers = re.findall(r'<thead><tr>(.*?)</tr></thead>', page_text)[0]
    assert [h for h in re.findall(r'<span class="long">(.*?)</span>', headers)] == ["1280", "768", "1024"]
    assert "height 768" in headers
    tables = [t for t in page.all("div") if "tbl" in (t.get("class") or "")]
    assert tables[0]["data-cell"] == "prompt seed" and tables[0]["data-f"] == "batch=frames&cameraMotion=none"
    tiles = page.tiles()
    assert [(t["data-p"], t["data-s"]) for t in tiles[:4]] == [("1", "9"), ("1", "3"), ("2", "9"), ("2", "3")]


def test_report_help_lists_the_axes(capsys: pytest.CaptureFixture[str]) -> None:
    """`report --help` says what --rows/--cols accept: swept parameters, prompt, seed, video, batch."""
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Axes (NAME): anything the run varies" in text
    assert all(name in text for name in ("prompt (several prompts)", "seed (several seeds)", "video", "batch"))
