"""Outputs that are not MP4 videos (an image model hosted by Scenario): the saved file's extension follows the
CDN's Content-Type, the journal, results.json and a resume know the real path, and the report shows an image as
an image. The LTX path (video/mp4) keeps `.mp4`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from run_helpers import run, write_manifest

from pipeline.ledger.replay import JOURNAL_NAME, read_events
from pipeline.report.page import write_report
from pipeline.report.tiles import href, media_kind
from pipeline.run.storage import media_suffix, with_suffix

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_media_suffix_follows_the_content_type() -> None:
    """Content-Types map to extensions; unknown or missing keep `.mp4`; the intent's stem is kept."""
    assert media_suffix("image/png") == ".png"
    assert media_suffix("IMAGE/JPEG; charset=binary") == ".jpg"
    assert media_suffix("video/webm") == ".webm"
    assert media_suffix("audio/mpeg") == ".mp3"
    assert media_suffix("application/octet-stream") == ".mp4"
    assert media_suffix(None) == ".mp4"
    assert with_suffix("videos/00001_a_s2_k.mp4", ".png") == "videos/00001_a_s2_k.png"
    assert with_suffix("videos/00001_a_s2_k.mp4", ".mp4") == "videos/00001_a_s2_k.mp4"
    assert [media_kind(p) for p in ("a/b.PNG", "a/b.mp4", "a/b.mp3", "a.b/c")] == ["image", "video", "audio", "video"]


async def test_image_outputs_are_saved_journaled_resumed_and_shown_as_png(emulator_factory, tmp_path: Path) -> None:
    """An image model's PNG outputs are saved as `.png`, journaled and in results.json with that path, found by a
    resume (nothing downloaded again, nothing lost), and shown with <img> (no poster, no player) in the report."""
    server = await emulator_factory(output_kind="image")
    manifest = write_manifest(tmp_path, prompts=1, seeds=1)
    summary = await run(manifest, server, tmp_path / "out")
    assert summary.exit_status == 0, summary.message
    run_dir = summary.run_dir
    events = list(read_events(run_dir / JOURNAL_NAME))
    paths = [e["path"] for e in events if e.get("ev") == "downloaded"]
    assert len(paths) == 2 and all(p.endswith(".png") for p in paths)
    intents = {e["file"] for e in events if e.get("ev") == "intent"}
    assert {p.removesuffix(".png") for p in paths} == {f.removesuffix(".mp4") for f in intents}
    for path in paths:
        assert (run_dir / path).read_bytes().startswith(PNG_MAGIC)
    assert not list(run_dir.rglob("*.mp4")) and not list(run_dir.rglob("*.part"))
    results = json.loads((run_dir / "results.json").read_text())
    assert sorted(f["path"] for j in results["jobs"] for f in j["files"]) == sorted(paths)

    again = await run(manifest, server, tmp_path / "out")
    assert again.exit_status == 0, again.message
    later = list(read_events(run_dir / JOURNAL_NAME))[len(events):]
    assert not [e for e in later if e.get("ev") in ("downloaded", "file-lost", "retry-download")]

    write_report(run_dir)
    page = (run_dir / "report.html").read_text()
    for path in paths:
        assert f'href="{href(path)}"' in page and f'src="{href(path)}"' in page
    assert page.count('data-m="image"') == 2
    assert not list(run_dir.glob("posters/*"))  # no ffmpeg frame grab of an image


@pytest.mark.parametrize("kind", ["video"])
async def test_video_outputs_keep_mp4(emulator_factory, tmp_path: Path, kind: str) -> None:
    """The default (LTX) outputs, served as video/mp4, are still saved as `.mp4` and shown as videos."""
    server = await emulator_factory(output_kind=kind)
    summary = await run(write_manifest(tmp_path, prompts=1, seeds=1), server, tmp_path / "out")
    assert summary.exit_status == 0, summary.message
    paths = [e["path"] for e in read_events(summary.run_dir / JOURNAL_NAME) if e.get("ev") == "downloaded"]
    assert len(paths) == 2 and all(p.endswith(".mp4") for p in paths)
    write_report(summary.run_dir, posters=False)
    assert 'data-m=' not in (summary.run_dir / "report.html").read_text()
