"""The contact sheet as HTML text: one self-contained page (inline CSS and JS from pipeline/report/assets, no
network) from a `Layout`. Pure: records, layout and the poster/existence facts in, a string out.

The page: a header (counts, cost, the axes the run sweeps), a table of contents (a link per batch and
table), a sticky bar (the prompt and seed a cell shows, or side by side; the table filters; the tile size)
and the tables. Each table's header tells what it holds fixed and carries its play/pause/scrub controls;
each row header those of the row. Tiles are compact (`tiles`); the script (`assets/sheet.js`) keeps the
bar's state in the URL, puts players in the tiles near the screen only, and plays a row or a table on one
clock. Every piece of user text is escaped (see `tiles`); no user text is ever placed inside the <script>.
A Content-Security-Policy with hashes of our own style and script keeps anything injected from running or
reaching the network.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from pipeline.ledger.costs import cu
from pipeline.manifest.params import PARAMS
from pipeline.report.axes import manifest_order, value_key, value_of
from pipeline.report.grid import POSITION, SETTING, Grid, Layout, Section, constant, fixed_settings
from pipeline.report.tiles import Media, e, href, number, shown, tile, values_json

__all__ = ["Media", "render", "href", "shown", "cost_text"]

ASSETS = Path(__file__).with_name("assets")
PROMPT_HEADER_CHARS = 160
TOKEN_CHARS = 40  # longer values are named by their position in the URL
TILE_SIZES = 5  # the size control's steps (assets/sheet.css gives their widths)
CELL_KEYS = {"prompt": "p", "seed": "s"}  # a cell axis -> the tile's data attribute holding its value

Filter = tuple[str, tuple[Any, ...], tuple[str, ...]]  # axis, values, their tokens (URL and <option> values)


def render(run: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]], sheet: Layout,
           media: Callable[[Mapping[str, Any]], list[Media]], *, command: str = "ltx-batch report RUN_DIR") -> str:
    """The whole page. `media(job)` lists the job's playable files (existing, inside the run folder)."""
    ordered = sorted(jobs, key=lambda j: j.get("index") if isinstance(j.get("index"), int) else 1 << 62)
    prompts = sheet.swept.get("prompt") or manifest_order("prompt", ordered)
    numbers = {value_key(text): i + 1 for i, text in enumerate(prompts)}
    filters = [(name, values, _tokens(name, values)) for name, values in sheet.filters]
    page = _Page(jobs, sheet, media, numbers, filters)
    body = [_header(run, jobs, sheet, command), page.toc(), _bar(sheet, filters, numbers, prompts),
            '<ol id="prompts" hidden>' + "".join(f"<li>{e(p)}</li>" for p in prompts) + "</ol>", "<main>",
            *(page.section(s) for s in sheet.sections), "</main>",
            '<div id="tip" role="tooltip" hidden></div><aside id="info" hidden></aside>']
    style, script = _asset("sheet.css"), _asset("sheet.js")
    csp = ("default-src 'none'; img-src 'self' file: data:; media-src 'self' file:; "
           f"style-src '{_digest(style)}'; script-src '{_digest(script)}'; base-uri 'none'; form-action 'none'")
    name = e(run.get("name") or "run")
    return "\n".join([
        "<!doctype html>", f'<html lang="en" data-size="{_default_size(sheet)}"><head><meta charset="utf-8">',
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


def _default_size(sheet: Layout) -> int:
    """The tile size step the page opens with: larger for narrow tables, smaller for seed strips and wide ones."""
    if sheet.kind == "strips":
        return 2
    widest = max((len(g.col_values) for g in sheet.grids), default=1)
    return 4 if widest <= 2 else 3 if widest <= 4 else 2


def _tokens(name: str, values: Sequence[Any]) -> tuple[str, ...]:
    """How the URL and the <select> name each value: as shown when short and distinct, else by position."""
    texts = tuple(shown(name, v) for v in values)
    if len(set(texts)) == len(texts) and all(len(t) <= TOKEN_CHARS for t in texts):
        return texts
    return tuple(str(i + 1) for i in range(len(values)))


def _header(run: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]], sheet: Layout, command: str) -> str:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[str(job.get("status"))] = counts.get(str(job.get("status")), 0) + 1
    badges = " ".join(f'<span class="badge b-{e(s)}">{e(s)} {n}</span>' for s, n in sorted(counts.items()))
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    swept = " · ".join(f"{e(n)} ({len(v)})" for n, v in sheet.swept.items()) or "none"
    return (f'<header><h1>{e(run.get("name") or "run")}</h1>'
            f'<p class="meta">{len(jobs)} jobs · {badges} · model {e(run.get("model") or "?")} · '
            f'{e(cost_text(jobs))} · made {made}</p>'
            f'<p class="meta">Swept: {swept}. Another layout: <code>{e(command)} --rows NAME --cols NAME</code> '
            "with any of these names.</p></header>")


def cost_text(jobs: Sequence[Mapping[str, Any]]) -> str:
    """The jobs' recorded cost (every attempt), and how many sent jobs have none recorded."""
    total, missing = 0.0, 0
    for job in jobs:
        cost, earlier = number(job.get("cost_cu")), number(job.get("cost_cu_earlier_attempts"))
        total += (cost or 0.0) + (earlier or 0.0)
        missing += cost is None and bool(job.get("job_id"))
    return f"cost {cu(total)}" + (f" ({missing} sent job{'' if missing == 1 else 's'} without a recorded cost)"
                                  if missing else "")


def _bar(sheet: Layout, filters: list[Filter], numbers: Mapping[tuple[str, Any], int],
         prompts: Sequence[Any]) -> str:
    """The sticky bar: what a cell shows (one prompt and seed, or side by side), table filters, tile size."""
    out = ['<form id="bar" autocomplete="off">']
    for name, values in sheet.choices:
        if name == "prompt":
            options = [(str(numbers[value_key(v)]), f"{numbers[value_key(v)]}: {shown(name, v, 70)}") for v in values]
        else:
            options = [(shown(name, v), shown(name, v, 40)) for v in values]
        out.append(f'<span class="pick"><label>{e(name)} <select name="{e(name)}" data-d="{e(options[0][0])}">'
                   + "".join(f'<option value="{e(v)}">{e(t)}</option>' for v, t in options) + "</select></label>"
                   f'<label class="side"><input type="checkbox" name="side" value="{e(name)}"> side by side</label>'
                   "</span>")
    for name, values, tokens in filters:
        out.append(f'<label>{e(name)} <select name="{e(name)}" data-d=""><option value="">all</option>'
                   + "".join(f'<option value="{e(t)}">{e(shown(name, v, 60))}</option>'
                             for v, t in zip(values, tokens)) + "</select></label>")
    size = _default_size(sheet)
    out.append(f'<label>tile size <input type="range" name="size" min="1" max="{TILE_SIZES}" value="{size}" '
               f'data-d="{size}"></label>')
    if len(sheet.grids) > 1:
        out.append('<a href="#toc">contents</a>')
    out.append('<span class="keys">click a tile: details · space: play/pause</span></form>')
    return "".join(out)


class _Page:
    """The sections and tables, numbered in page order for the contents' links."""

    def __init__(self, jobs: Sequence[Mapping[str, Any]], sheet: Layout,
                 media: Callable[[Mapping[str, Any]], list[Media]], numbers: Mapping[tuple[str, Any], int],
                 filters: list[Filter]) -> None:
        self.jobs, self.sheet, self.media, self.numbers, self.filters = jobs, sheet, media, numbers, filters

    def toc(self) -> str:
        """A link per batch (section) and per table, with their job counts; nothing for a single table."""
        if len(self.sheet.grids) < 2:
            return ""
        out, table = ['<nav id="toc"><b>Contents</b><ol>'], 0
        for number_, section in enumerate(self.sheet.sections, 1):
            title = _title(section.heading) or "all jobs"
            count = sum(g.job_count for g in section.grids)
            links = []
            for grid in section.grids:
                table += 1
                name = _title(grid.heading) or e(_axes_plain(section))
                links.append(f'<li data-t="t{table}"><a href="#t{table}">{name}</a> '
                             f'<span class="n">{grid.job_count}</span></li>')
            out.append(f'<li><a href="#s{number_}">{title}</a> <span class="n">{count} jobs · '
                       f'{_axes_text(section)}</span><ol class="tables">{"".join(links)}</ol></li>')
        out.append("</ol></nav>")
        return "".join(out)

    def section(self, section: Section) -> str:
        number_ = self.sheet.sections.index(section) + 1
        first_table = sum(len(s.grids) for s in self.sheet.sections[:number_ - 1])
        title = _title(section.heading)
        count = sum(g.job_count for g in section.grids)
        cell = ""
        if section.cell:
            cell = " · each cell: one " + " and one ".join(section.cell) + " (chosen above, or side by side)"
        out = [f'<section class="part" id="s{number_}">', f"<h2>{title}</h2>" if title else "",
               f'<p class="meta">{count} jobs · {_axes_text(section)}{e(cell)}</p>']
        for i, grid in enumerate(section.grids, 1):
            out.append(self.table(section, grid, f"t{first_table + i}"))
        out.append("</section>")
        return "".join(out)

    def table(self, section: Section, grid: Grid, ident: str) -> str:
        jobs, positions = self.jobs, grid.positions
        shown_axes = {section.rows, section.cols, *section.companions.get(section.rows or "", ()),
                      *section.companions.get(section.cols or "", ()), *(n for n, _ in grid.heading)}
        fixed = [(n, v) for n, v in fixed_settings(jobs, positions) if n not in shown_axes]
        fixed_names = {n for n, _ in fixed}
        names = dict.fromkeys(PARAMS)
        for p in positions:
            names.update(dict.fromkeys(jobs[p].get("params") or {}))
        varying = [n for n in names if n not in fixed_names and n not in shown_axes and n not in ("prompt", "seed")
                   and not constant(jobs, positions, n)[0]]
        tokens = []
        for name, values, toks in self.filters:
            same, value = constant(jobs, positions, name)
            if same:
                at = {value_key(v): t for v, t in zip(values, toks)}
                tokens.append((name, at.get(value_key(value), "")))
        attrs = (f' data-f="{e(urlencode(tokens))}"' if tokens else "") + \
            (f' data-cell="{e(" ".join(section.cell))}"' if section.cell else "")
        if grid.heading:
            attrs += f' data-gx="{values_json(grid.heading)}"'
        if fixed:
            attrs += f' data-fx="{values_json(fixed)}"'
        kind = " strips" if section.kind == "strips" else ""
        out = [f'<div class="tbl{kind}" id="{ident}"{attrs}><div class="th">',
               f'<h3>{_title(grid.heading) or e(_axes_plain(section))} <span class="n">{grid.job_count} jobs</span></h3>',
               _fixed_line(fixed), '<p class="now"></p>', _sync("table"), "</div>"]
        if section.kind == "strips":
            out.append(self._strips(section, grid, varying))
        else:
            out.append(self._grid(section, grid, varying))
        out.append("</div>")
        return "".join(out)

    def _tile(self, position: int, varying: Sequence[str], label: str | None = None) -> str:
        job = self.jobs[position]
        number_ = self.numbers.get(value_key(value_of(job, "prompt")), 0)
        return tile(job, self.media(job), prompt_number=number_, varying=varying, label=label)

    def _grid(self, section: Section, grid: Grid, varying: Sequence[str]) -> str:
        jobs, rows, cols = self.jobs, section.rows, section.cols
        corner = f"{e(rows or '')} \\ {e(cols or '')}" if rows or cols else ""
        heads = "<th></th>"
        if cols:
            firsts = [next((cell[0] for row in grid.cells for cell in (row[c],) if cell), None)
                      for c in range(len(grid.col_values))]
            heads = "".join(f'<th data-x="{self._axis_json(section, cols, v, first)}">'
                            f"{_label(section, cols, v, jobs, first)}</th>" for v, first in zip(grid.col_values, firsts))
        out = [f'<div class="scroll"><table><thead><tr><th class="corner">{corner}</th>{heads}</tr></thead><tbody>']
        for value, row in zip(grid.row_values, grid.cells):
            first = next((cell[0] for cell in row if cell), None)
            label = _label(section, rows, value, jobs, first) if rows else ""
            cells = "".join('<td><div class="cell">' + "".join(self._tile(p, varying) for p in cell) + "</div></td>"
                            for cell in row)
            data = f' data-x="{self._axis_json(section, rows, value, first)}"' if rows else ""
            out.append(f'<tr{data}><th scope="row">{label}{_sync("row")}</th>{cells}</tr>')
        out.append("</tbody></table></div>")
        return "".join(out)

    def _strips(self, section: Section, grid: Grid, varying: Sequence[str]) -> str:
        """A seed study: one row per setting, its jobs wrapping along the row (never a scrolling strip)."""
        out = ['<table class="strips"><tbody>']
        for value, row in zip(grid.row_values, grid.cells):
            tiles = []
            for col, cell in zip(grid.col_values, row):
                for p in cell:
                    label = f"#{col}" if section.cols == POSITION else shown("seed", value_of(self.jobs[p], "seed"))
                    tiles.append(self._tile(p, varying, label))
            out.append(f'<tr><th scope="row">{_label(section, SETTING, value, self.jobs, None)}{_sync("row")}</th>'
                       f'<td><div class="wrap">{"".join(tiles)}</div></td></tr>')
        out.append("</tbody></table>")
        return "".join(out)

    def _axis_json(self, section: Section, axis: str | None, value: Any, first: int | None) -> str:
        """An axis header's values (its own and its companions') for the details panel."""
        if axis in (None, "prompt", "seed", SETTING, POSITION):
            return ""
        pairs = [(axis, value)]
        if first is not None:
            pairs += [(n, value_of(self.jobs[first], n)) for n in section.companions.get(axis or "", ())]
        return values_json(pairs)


def _sync(scope: str) -> str:
    """Play/pause and scrub controls for a row or a table (the script wires them)."""
    return (f'<span class="sync"><button type="button" class="play" title="play the {scope} in sync" '
            f'aria-label="play the {scope}">▶</button><input type="range" class="scrub" min="0" max="1000" value="0" '
            f'aria-label="scrub the {scope}"><span class="time"></span></span>')


def _fixed_line(fixed: Sequence[tuple[str, Any]]) -> str:
    """The settings a table holds fixed: the chosen ones in the open, model defaults folded away."""
    if not fixed:
        return ""
    chosen = [(n, v) for n, v in fixed if not (n in PARAMS and PARAMS[n].default == v and PARAMS[n].kind != "file")]
    defaults = [(n, v) for n, v in fixed if (n, v) not in chosen]
    items = " · ".join(f'{e(n)} <b>{e(shown(n, v, PROMPT_HEADER_CHARS))}</b>' for n, v in chosen)
    folded = ""
    if defaults:
        folded = (f'<details><summary>{len(defaults)} more at the model default</summary>'
                  + " · ".join(f"{e(n)} {e(shown(n, v, 60))}" for n, v in defaults) + "</details>")
    return f'<div class="fixed"><span class="k">fixed:</span> {items or "—"}{folded}</div>'


def _title(heading: Sequence[tuple[str, Any]]) -> str:
    return " · ".join(f"{e(n)} {e(shown(n, v, 120))}" for n, v in heading)


def _axes_plain(section: Section) -> str:
    if section.kind == "strips":
        return "seed study"
    return f"{section.rows or '—'} × {section.cols or '—'}"


def _axes_text(section: Section) -> str:
    if section.kind == "strips":
        return "seed study: one row per setting, " + ("its seeds along it" if section.cols == "seed" else
                                                      "its jobs along it")
    text = f"rows: <b>{e(section.rows or '—')}</b>, columns: <b>{e(section.cols or '—')}</b>"
    if section.groups:
        text += f"; one table per {e(' × '.join(section.groups))}"
    return text


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
