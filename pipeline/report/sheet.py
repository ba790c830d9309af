"""The contact sheet as HTML text: one self-contained page (inline CSS and JS from pipeline/report/assets, no network) from a `Layout`.

Pure: records, layout and the poster/existence facts in, a string out. Every piece of user text goes
through `html.escape` (attributes double-quoted); file links are percent-encoded relative paths that
cannot leave the run folder; no user text is ever placed inside the <script>. A Content-Security-Policy
with hashes of our own style and script keeps anything injected from running or reaching the network.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pipeline.report.axes import value_key, value_of
from pipeline.ledger.costs import cu
from pipeline.report.grid import POSITION, SETTING, Grid, Layout, Section
from pipeline.manifest.params import FILE_PARAMS, PARAMS
from pipeline.ledger.rundir import safe_relative

ASSETS = Path(__file__).with_name("assets")
EAGER_VIDEOS = 12  # the first videos get a src in the markup (play without JS); the rest when scrolled near
PROMPT_HEADER_CHARS = 160


@dataclass(frozen=True, slots=True)
class Media:
    """What the page may show of one output file: the link target and its poster, if any."""

    href: str  # percent-encoded relative URL, e.g. ./videos/00003_a-neon-city_s2.mp4
    poster: str | None
    name: str
    bytes: int | None


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
    """A value as the page shows it: files by base name, booleans lower-case, unset as `unset`."""
    if value is None:
        text = "unset"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif name in FILE_PARAMS and isinstance(value, str):
        text = value.replace("\\", "/").rsplit("/", 1)[-1]
    else:
        text = str(value)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def render(run: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]], sheet: Layout,
           media: Callable[[Mapping[str, Any]], list[Media]], *, command: str = "ltx-batch report RUN_DIR") -> str:
    """The whole page. `media(job)` lists the job's playable files (existing, inside the run folder)."""
    filters = [(name, {value_key(v): i for i, v in enumerate(values)}, values) for name, values in sheet.filters]
    counter = [0]

    def card(position: int) -> str:
        return _card(jobs[position], media(jobs[position]), filters, counter)

    body = [_header(run, jobs, sheet, filters, command)]
    for section in sheet.sections:
        body.append(_section(section, jobs, card))
    style, script = _asset("sheet.css"), _asset("sheet.js")
    csp = ("default-src 'none'; img-src 'self' file: data:; media-src 'self' file:; "
           f"style-src '{_digest(style)}'; script-src '{_digest(script)}'; base-uri 'none'; form-action 'none'")
    name = e(run.get("name") or "run")
    return "\n".join([
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{e(csp)}">',
        '<meta name="referrer" content="no-referrer"><link rel="icon" href="data:,">',
        f"<title>{name} — ltx-batch report</title>", f"<style>{style}</style></head><body>",
        *body, f"<script>{script}</script>", "</body></html>", ""])


@functools.cache
def _asset(name: str) -> str:
    """The page's stylesheet or script (pipeline/report/assets), inlined and allowed by its hash in the CSP."""
    return (ASSETS / name).read_text(encoding="utf-8")


def _digest(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def _header(run: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]], sheet: Layout,
            filters: list[tuple[str, dict[tuple[str, Any], int], tuple[Any, ...]]], command: str) -> str:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[str(job.get("status"))] = counts.get(str(job.get("status")), 0) + 1
    badges = " ".join(f'<span class="badge b-{e(s)}">{e(s)} {n}</span>' for s, n in sorted(counts.items()))
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    selects = "".join(
        f'<label>{e(name)} <select data-f="{i}"><option value="">all</option>'
        + "".join(f'<option value="{j}">{e(shown(name, v, 60))}</option>' for j, v in enumerate(values))
        + "</select></label>" for i, (name, _, values) in enumerate(filters))
    return (f'<header><h1>{e(run.get("name") or "run")}</h1>'
            f'<p class="meta">{len(jobs)} jobs · {badges} · model {e(run.get("model") or "?")} · '
            f'{e(cost_text(jobs))} · made {made}</p>'
            f'<p class="meta">Other axes: <code>{e(command)} --rows NAME --cols NAME</code></p>'
            + (f'<form id="filters">{selects}</form>' if filters else "") + "</header>")


def cost_text(jobs: Sequence[Mapping[str, Any]]) -> str:
    """The jobs' recorded cost (every attempt), and how many sent jobs have none recorded."""
    total, missing = 0.0, 0
    for job in jobs:
        cost, earlier = _number(job.get("cost_cu")), _number(job.get("cost_cu_earlier_attempts"))
        total += (cost or 0.0) + (earlier or 0.0)
        missing += cost is None and bool(job.get("job_id"))
    return f"cost {cu(total)}" + (f" ({missing} sent job{'' if missing == 1 else 's'} without a recorded cost)"
                                  if missing else "")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _section(section: Section, jobs: Sequence[Mapping[str, Any]], card: Callable[[int], str]) -> str:
    if section.kind == "strips":
        axes = "seed study: one row per setting, " + ("seeds along it" if section.cols == "seed" else
                                                       "its jobs along it")
    else:
        axes = f"rows: <b>{e(section.rows or '—')}</b>, columns: <b>{e(section.cols or '—')}</b>"
        if section.groups:
            axes += f"; one table per {e(' × '.join(section.groups))}"
    title = " · ".join(f"{e(n)} {e(shown(n, v, 120))}" for n, v in section.heading)
    out = ['<section class="part">', f"<h2>{title}</h2>" if title else "", f'<p class="meta">{axes}</p>']
    for grid in section.grids:
        out.append(_grid(grid, section, jobs, card))
    out.append("</section>")
    return "".join(out)


def _grid(grid: Grid, section: Section, jobs: Sequence[Mapping[str, Any]], card: Callable[[int], str]) -> str:
    out = ['<div class="group">']
    if grid.heading:
        out.append("<h3>" + " · ".join(f"{e(n)} = {e(shown(n, v, 120))}" for n, v in grid.heading) + "</h3>")
    rows, cols = section.rows, section.cols
    corner = f"{e(rows or '')} \\ {e(cols or '')}" if rows or cols else ""
    heads = "<th></th>"
    if cols:
        firsts = [next((cell[0] for row in grid.cells for cell in (row[c],) if cell), None)
                  for c in range(len(grid.col_values))]
        heads = "".join(f"<th>{_label(section, cols, v, jobs, first)}</th>"
                        for v, first in zip(grid.col_values, firsts))
    out.append(f'<div class="scroll"><table><thead><tr><th class="corner">{corner}</th>{heads}</tr></thead><tbody>')
    for value, row in zip(grid.row_values, grid.cells):
        first = next((cell[0] for cell in row if cell), None)
        label = _label(section, rows, value, jobs, first) if rows else ""
        cells = "".join("<td>" + "".join(card(p) for p in cell) + "</td>" for cell in row)
        out.append(f'<tr><th scope="row">{label}</th>{cells}</tr>')
    out.append("</tbody></table></div></div>")
    return "".join(out)


def _label(section: Section, axis: str | None, value: Any, jobs: Sequence[Mapping[str, Any]],
           first: int | None) -> str:
    if axis == SETTING:
        return f'<span class="long">{e(section.row_labels.get(value, ""))}</span>'
    if axis == POSITION:
        return f"#{e(value)}"
    limit = PROMPT_HEADER_CHARS if axis == "prompt" else 60
    text = f'<span class="long">{e(shown(axis, value, limit))}</span>'
    for name in section.companions.get(axis or "", ()) if first is not None else ():
        text += f'<span class="also">{e(name)} {e(shown(name, value_of(jobs[first], name), 60))}</span>'
    return text


def _card(job: Mapping[str, Any], files: list[Media],
          filters: list[tuple[str, dict[tuple[str, Any], int], tuple[Any, ...]]], counter: list[int]) -> str:
    status = str(job.get("status") or "pending")
    data = "".join(f' data-f{i}="{index.get(value_key(value_of(job, name)), "")}"'
                   for i, (name, index, _) in enumerate(filters))
    out = [f'<article class="card c-{e(status)}"{data}>']
    if files:
        first = files[0]
        counter[0] += 1
        eager = counter[0] <= EAGER_VIDEOS
        poster = f' poster="{e(first.poster)}"' if first.poster else ""
        source = f'preload="metadata" src="{e(first.href)}"' if eager else f'preload="none" data-src="{e(first.href)}"'
        out.append(f'<video controls {source} muted playsinline{poster}></video>')
    else:
        what = {"downloaded": "file missing on disk", "succeeded": "rendered, not downloaded yet"}.get(status, status)
        out.append(f'<div class="empty">{e(what)}</div>')
    out.append(f'<p class="prompt">{e(job.get("prompt") or "")}</p>')
    index = job.get("index")
    cost = _number(job.get("cost_cu"))
    out.append(f'<p class="line"><span class="badge b-{e(status)}">{e(status)}</span> '
               f'#{e(index if index is not None else "?")} · seed {e(_or(job.get("seed"), "?"))}'
               + (f' · <span class="cost">{e(cu(cost))}</span>' if cost is not None else "") + "</p>")
    if job.get("error") or job.get("error_kind"):
        kind = f"{job.get('error_kind')}: " if job.get("error_kind") else ""
        out.append(f'<p class="error">{e(kind)}{e(job.get("error") or "")}</p>')
    if job.get("hint"):
        out.append(f'<p class="hint">hint: {e(job.get("hint"))}</p>')
    for f in files:
        size = f" · {f.bytes / 1e6:.1f} MB" if isinstance(f.bytes, int) else ""
        out.append(f'<p class="file"><a href="{e(f.href)}">{e(f.name)}</a>{size}</p>')
    out.append(_details(job))
    out.append("</article>")
    return "".join(out)


def _or(value: Any, fallback: str) -> Any:
    return fallback if value is None else value


def _details(job: Mapping[str, Any]) -> str:
    params = job.get("params") or {}
    rows = [(name, params[name]) for name in PARAMS if name in params and name != "prompt"]
    rows += [(name, value) for name, value in params.items() if name not in PARAMS]
    for ref in job.get("inputs") or ():
        rows.append((str(ref.get("param")), ref.get("path") or ref.get("asset_id")))
    rows += [("job id", job.get("job_id")), ("key", job.get("key")), ("batch", job.get("batch")),
             ("trace id", job.get("trace_id"))]
    earlier = _number(job.get("cost_cu_earlier_attempts"))
    if earlier:
        rows.append(("earlier attempts", cu(earlier)))
    items = "".join(f"<dt>{e(n)}</dt><dd>{e(shown(None, v))}</dd>" for n, v in rows if v is not None)
    return f"<details><summary>parameters</summary><dl>{items}</dl></details>"
