"""One job's tile on the contact sheet: compact markup (the poster, or the job's state) whose details ride
in data attributes, read by the page's script for the hover line and the details panel. Pure.

Also the page's escaping and link helpers: every piece of user text goes through `e` (attributes are
double-quoted), JSON in an attribute is escaped the same way and only ever parsed (never run), and file
links are percent-encoded relative paths that cannot leave the run folder.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pipeline.ledger.costs import cu
from pipeline.ledger.rundir import safe_relative
from pipeline.report.axes import FileName, FileNames, value_of

KEY_CHARS = 16  # a key prefix: `rerun --keys` takes any unambiguous prefix
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif"})
AUDIO_SUFFIXES = frozenset({".mp3", ".wav", ".m4a", ".ogg", ".flac"})


def media_kind(path: str) -> str:
    """What an output file is, as its extension says: `image`, `audio`, else `video` (pure)."""
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return "image" if suffix in IMAGE_SUFFIXES else "audio" if suffix in AUDIO_SUFFIXES else "video"


@dataclass(frozen=True, slots=True)
class Media:
    """What the page may show of one output file: the link target, its poster if any, and its kind."""

    href: str  # percent-encoded relative URL, e.g. ./videos/00003_a-neon-city_s2.mp4
    poster: str | None
    name: str
    bytes: int | None
    kind: str = "video"  # video | image | audio (media_kind)


def e(value: Any) -> str:
    """Text (or a value) escaped for HTML content and double-quoted attributes."""
    return html.escape(str(value), quote=True)


def href(path: str) -> str | None:
    """A run-folder relative path as a safe relative URL (`./` + percent-encoded), or None if it escapes."""
    safe = safe_relative(path)
    if safe is None:
        return None
    return "./" + quote(safe.lstrip("/"), safe="/")


def shown(name: str | None, value: Any, limit: int | None = None) -> str:
    """A value as the page shows it: input files by base name (an array's joined by ', '), booleans lower-case,
    unset as `unset`."""
    if value is None:
        text = "unset"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (FileName, FileNames)):
        text = value.base
    else:
        text = str(value)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def values_json(pairs: Sequence[tuple[str, Any]]) -> str:
    """(name, value) pairs as a JSON object of shown values, escaped for an attribute ('' when empty)."""
    if not pairs:
        return ""
    return e(json.dumps({n: shown(n, v) for n, v in pairs}, ensure_ascii=False, separators=(",", ":")))


def number(value: Any) -> float | None:
    """A recorded number (a cost), or None for anything else (booleans included)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def tile(job: Mapping[str, Any], files: Sequence[Media], *, prompt_number: int, varying: Sequence[str],
         label: str | None = None) -> str:
    """The job's tile: a link to its video showing the poster (the script puts a player in when it is near
    the screen), to its image showing the image (`data-m="image"`: no player), to its audio (`data-m="audio"`),
    or a box saying its state. `varying`: names whose value the table's headers do not tell."""
    status = str(job.get("status") or "pending")
    data = [f' data-i="{e(_or(job.get("index"), "?"))}" data-p="{prompt_number}" data-s="{e(_or(job.get("seed"), ""))}"']
    if label is not None:
        data.append(f' data-l="{e(label)}"')
    extra = values_json([(n, value_of(job, n)) for n in varying])
    if extra:
        data.append(f' data-x="{extra}"')
    for attr, value in (("k", str(job.get("key") or "")[:KEY_CHARS]), ("j", job.get("job_id")),
                        ("tr", job.get("trace_id")), ("h", job.get("hint"))):
        if value:
            data.append(f' data-{attr}="{e(value)}"')
    cost, earlier = number(job.get("cost_cu")), number(job.get("cost_cu_earlier_attempts"))
    if cost is not None:
        data.append(f' data-c="{e(cu(cost))}"')
    if earlier:
        data.append(f' data-ce="{e(cu(earlier))}"')
    if job.get("error") or job.get("error_kind"):
        kind = f"{job.get('error_kind')}: " if job.get("error_kind") else ""
        data.append(f' data-e="{e(kind)}{e(job.get("error") or "")}"')
    attrs = "".join(data)
    if files:
        first = files[0]
        size = f' data-b="{first.bytes}"' if isinstance(first.bytes, int) else ""
        more = " ".join(f.href for f in files[1:])
        more = f' data-more="{e(more)}"' if more else ""
        picture = first.href if first.kind == "image" else first.poster
        inner = f'<img loading="lazy" src="{e(picture)}" alt="">' if picture else "<i></i>"
        state = f' data-st="{e(status)}"' if status != "downloaded" else ""
        kind = f' data-m="{e(first.kind)}"' if first.kind != "video" else ""
        return f'<a class="t" href="{e(first.href)}"{attrs}{state}{size}{more}{kind}>{inner}</a>'
    what = {"downloaded": "file missing on disk", "succeeded": "rendered, not downloaded yet"}.get(status, status)
    kind = f"<small>{e(job.get('error_kind'))}</small>" if job.get("error_kind") else ""
    return f'<div class="t x x-{e(status)}" tabindex="0" data-st="{e(status)}"{attrs}><span>{e(what)}{kind}</span></div>'


def _or(value: Any, fallback: str) -> Any:
    return fallback if value is None else value
