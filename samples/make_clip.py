"""Make the sample inputs with ffmpeg: `clip.mp4` (3 s, 320x192, H.264 yuv420p + AAC, faststart)
and `first-frame.png` (its first frame), next to this script.

    python samples/make_clip.py [--force]

ffmpeg runs with bit-exact flags and one thread, so re-running it gives the same bytes on the
same ffmpeg build (the committed clip's sha256 is part of every sample job's key).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZE = "320x192"
DURATION_S = 3
FPS = 24
BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1"]


def clip_command(out: Path) -> list[str]:
    return [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate={FPS}:duration={DURATION_S}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={DURATION_S}",
        "-c:v", "libx264", "-preset", "veryslow", "-crf", "32", "-pix_fmt", "yuv420p", "-threads", "1",
        "-c:a", "aac", "-b:a", "48k", "-ac", "1",
        "-movflags", "+faststart", "-shortest", *BITEXACT, str(out),
    ]


def frame_command(clip: Path, out: Path) -> list[str]:
    return ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(clip),
            "-frames:v", "1", *BITEXACT, str(out)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="remake the files even if they exist")
    args = parser.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        print("make_clip: ffmpeg is not installed (apt-get install ffmpeg)", file=sys.stderr)
        return 1
    clip, frame = HERE / "clip.mp4", HERE / "first-frame.png"
    for out, command in ((clip, clip_command(clip)), (frame, frame_command(clip, frame))):
        if out.exists() and not args.force:
            print(f"{out.name}: exists ({out.stat().st_size:,} bytes; --force remakes it)")
            continue
        subprocess.run(command, check=True)
        print(f"{out.name}: {out.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
