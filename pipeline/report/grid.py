"""The contact sheet's layout: which parameter runs along the rows, which along the columns, and which jobs
go in each cell. Pure: job records (results.json's `jobs`) in, frozen dataclasses out; no I/O, no HTML.

Rules (the README repeats them):
- The axes are the keys of the jobs' `swept` that take more than one value (plus `batch` when there are
  several batches); `--rows`/`--cols` naming anything else is an InputError listing them. Any parameter or
  input of the run's models can be one (`axes.run_parameters`). By default the rows are the parameter with the
  most distinct values and the columns the next one (ties: first appearance); `prompt` and the input axis
  (`video`, or whatever the leading file input is called) only when fewer than two parameters are swept. `seed` is never a
  default grid axis, except:
- a seed study (the only swept axis is `seed`, or every job shares all parameters but the seed) lays out as
  strips: one row per setting, its seeds along the row; with exactly one other axis, the rows are that
  axis and the columns the seeds.
- Every other axis becomes a group (one grid per combination, under a heading, with a filter), except
  `seed` and `prompt`: those are the cell's axes (`Section.cell`): a cell holds one job per prompt and
  seed, and the page shows the one its selectors choose (or lays them side by side).
- Values are in the manifest's order (`axes.manifest_order`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pipeline.errors import InputError
from pipeline.report.axes import (FileName, FileNames, Parameters, Record, check_axis, manifest_order,
                                   manifest_orders, run_parameters, value_key, value_of)

STACKED = ("prompt", "seed")  # never a heading of its own: a cell's axes, chosen by selectors
META_AXES = ("batch", "prompt")  # axis names that are not value parameters, with the file inputs ("seed" is one)
SETTING = "setting"  # the row axis of seed strips
POSITION = "#"  # the column axis of seed strips whose seeds differ from strip to strip


@dataclass(frozen=True, slots=True)
class Grid:
    """One table: `cells[r][c]` are the positions (in the job list) of the jobs at row r, column c."""

    heading: tuple[tuple[str, Any], ...]  # the group's (axis, value) pairs; () when there are no groups
    row_values: tuple[Any, ...]
    col_values: tuple[Any, ...]
    cells: tuple[tuple[tuple[int, ...], ...], ...]

    @property
    def job_count(self) -> int:
        """How many jobs the table holds."""
        return sum(len(cell) for row in self.cells for cell in row)

    @property
    def positions(self) -> tuple[int, ...]:
        """Every job of the table, row by row."""
        return tuple(p for row in self.cells for cell in row for p in cell)


@dataclass(frozen=True, slots=True)
class Section:
    """The jobs of one batch (or all of them), laid out on their own axes: one `Grid` per group."""

    kind: Literal["grid", "strips"]
    heading: tuple[tuple[str, Any], ...]  # (("batch", name),) when each batch has its section
    rows: str | None  # None: a single row
    cols: str | None  # None: a single column
    groups: tuple[str, ...]
    companions: Mapping[str, tuple[str, ...]]  # rows/cols axis -> axes it determines (zip partners)
    grids: tuple[Grid, ...]
    row_labels: Mapping[Any, str]  # strips only: setting -> its description
    cell: tuple[str, ...] = ()  # the cell's own axes (`prompt`, `seed`): one job of each value per cell


@dataclass(frozen=True, slots=True)
class Layout:
    """The whole sheet: one section per batch (or one), the cell selectors and the table filters."""

    sections: tuple[Section, ...]
    filters: tuple[tuple[str, tuple[Any, ...]], ...]  # (axis, values): tables shown (groups, batch)
    choices: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # (axis, values): the job a cell shows
    swept: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # every axis of the run
    parameters: Parameters = field(default_factory=Parameters)  # the run's models' parameters and inputs

    @property
    def kind(self) -> str:
        """`grid` or `strips` when every section agrees, else `mixed`."""
        kinds = {s.kind for s in self.sections}
        return kinds.pop() if len(kinds) == 1 else "mixed"

    @property
    def grids(self) -> tuple[Grid, ...]:
        """Every table of every section, in page order."""
        return tuple(grid for section in self.sections for grid in section.grids)


def swept_axes(jobs: Sequence[Record]) -> dict[str, tuple[Any, ...]]:
    """Every axis that takes more than one value, in order of first appearance, with its values in the
    manifest's order."""
    ordered = [jobs[p] for p in sorted(range(len(jobs)), key=lambda p: _index(jobs[p], p))]
    names: dict[str, None] = {}
    for job in ordered:
        names.update(dict.fromkeys(job.get("swept") or ()))
    if len({value_key(job.get("batch")) for job in jobs}) > 1:
        names = {"batch": None, **names}
    varying = [n for n in names if len({value_key(value_of(job, n)) for job in ordered}) > 1]
    return manifest_orders(varying, ordered)


def constant(jobs: Sequence[Record], positions: Sequence[int], name: str) -> tuple[bool, Any]:
    """(True, value) when every one of these jobs has the same value on `name`, else (False, None)."""
    values = {value_key(value_of(jobs[p], name)): value_of(jobs[p], name) for p in positions}
    return (True, next(iter(values.values()))) if len(values) == 1 else (False, None)


def fixed_settings(jobs: Sequence[Record], positions: Sequence[int],
                   parameters: Parameters | None = None) -> tuple[tuple[str, Any], ...]:
    """Every parameter and input these jobs all share (in the run's parameters' order, then the others)."""
    names = dict.fromkeys((parameters or Parameters()).names)
    for p in positions:
        names.update(dict.fromkeys(jobs[p].get("params") or {}))
    out = []
    for name in names:
        same, value = constant(jobs, positions, name)
        if same and value is not None:
            out.append((name, value))
    return tuple(out)


def setting_of(record: Record) -> str:
    """Everything that makes a job's output differ but its seed, as one comparable string."""
    params = {k: v for k, v in (record.get("params") or {}).items() if k != "seed"}
    inputs = sorted((ref.get("param"), ref.get("sha256") or ref.get("asset_id") or ref.get("path"))
                    for ref in record.get("inputs") or ())
    return repr((record.get("model"), sorted(params.items(), key=lambda kv: kv[0]), inputs))


def is_seed_study(jobs: Sequence[Record], axes: Mapping[str, tuple[Any, ...]]) -> bool:
    """One or more settings, many seeds each: `seed` is the only swept axis, or only the seed differs."""
    if "seed" in axes and not (axes.keys() - {"seed", "batch"}):
        return True
    return len(jobs) > 1 and len({setting_of(j) for j in jobs}) == 1


def determines(jobs: Sequence[Record], positions: Sequence[int], axis: str, other: str) -> bool:
    """Whether `axis`'s value fixes `other`'s among these jobs (zipped partners, per-prompt settings)."""
    seen: dict[tuple[str, Any], tuple[str, Any]] = {}
    for p in positions:
        key, value = value_key(value_of(jobs[p], axis)), value_key(value_of(jobs[p], other))
        if seen.setdefault(key, value) != value:
            return False
    return True


def layout(jobs: Sequence[Record], *, rows: str | None = None, cols: str | None = None,
           run: Mapping[str, Any] | None = None) -> Layout:
    """Lay the jobs out: the given axes, or the defaults of the module docstring. `run`: results.json's `run`
    (the parameters of its models)."""
    if rows is not None and cols is not None and rows == cols:
        raise InputError(f"--rows and --cols are both {rows!r}: choose two different parameters")
    axes = swept_axes(jobs)
    parameters = run_parameters(jobs, run)
    for flag, name in (("--rows", rows), ("--cols", cols)):
        if name is not None and name not in axes:
            same, value = constant(jobs, range(len(jobs)), name)
            check_axis(name, flag=flag, swept=axes, fixed={name: value} if same else None, parameters=parameters)
    order = sorted(range(len(jobs)), key=lambda p: _index(jobs[p], p))
    batches: dict[Any, list[int]] = {}
    for p in order:
        batches.setdefault(value_key(jobs[p].get("batch")), []).append(p)
    if len(batches) > 1 and "batch" not in (rows, cols):
        parts = [((("batch", jobs[ps[0]].get("batch")),), ps) for ps in batches.values()]
    else:
        parts = [((), order)]
    sections = tuple(_section(jobs, ps, heading, rows, cols, axes, parameters) for heading, ps in parts)
    tables = {n for s in sections for n in s.groups} | ({"batch"} if len(sections) > 1 else set())
    everyone = range(len(jobs))
    filters: list[str] = []
    for name in (n for n in axes if n in tables):  # a zip partner moves with its axis: one filter for both
        if not any(determines(jobs, everyone, f, name) and determines(jobs, everyone, name, f) for f in filters):
            filters.append(name)
    cell = {n for s in sections for n in s.cell}
    return Layout(sections, tuple((n, axes[n]) for n in filters),
                  tuple((n, axes[n]) for n in STACKED if n in cell), axes, parameters)


def _section(jobs: Sequence[Record], positions: list[int], heading: tuple[tuple[str, Any], ...],
             rows: str | None, cols: str | None, every: Mapping[str, tuple[Any, ...]],
             parameters: Parameters) -> Section:
    members = [jobs[p] for p in positions]
    varying = [n for n in every if len({value_key(value_of(job, n)) for job in members}) > 1]
    axes = {n: every[n] for n in varying} if len(positions) == len(jobs) else manifest_orders(varying, members)
    if rows is None and cols is None and is_seed_study([jobs[p] for p in positions], axes):
        return _strips(jobs, positions, heading, parameters)
    candidates = _candidates(axes, parameters)
    if rows is None and cols is None and "seed" in axes and len(candidates) == 1:
        rows, cols = candidates[0], "seed"
    elif rows is None and cols is None:
        rows = candidates[0] if candidates else None
        cols = _partner(jobs, positions, rows, candidates, axes)
        if cols is None:  # a single axis runs along the columns: one strip
            rows, cols = None, rows
    elif rows is None:
        rows = _partner(jobs, positions, cols, candidates, axes)
    elif cols is None:
        cols = _partner(jobs, positions, rows, candidates, axes)
    companions = {axis: tuple(n for n in axes if n not in (rows, cols) and n not in STACKED
                              and determines(jobs, positions, axis, n)) for axis in (rows, cols) if axis}
    taken = {n for names in companions.values() for n in names} | {rows, cols}
    groups = tuple(n for n in axes if n not in taken and n not in STACKED)
    cell = tuple(n for n in STACKED if n in axes and n not in (rows, cols))
    return Section("grid", heading, rows, cols, groups, companions,
                   _grids(jobs, positions, rows, cols, groups, axes), {}, cell)


def _partner(jobs: Sequence[Record], positions: Sequence[int], axis: str | None, candidates: list[str],
             varying: Mapping[str, Any]) -> str | None:
    """The best other axis to pair with `axis`: not one that `axis` fixes or that fixes it (a diagonal)."""
    for name in candidates:
        if name == axis:
            continue
        if axis not in varying or not (determines(jobs, positions, axis, name)
                                       or determines(jobs, positions, name, axis)):
            return name
    return None


def _candidates(axes: Mapping[str, tuple[Any, ...]], parameters: Parameters) -> list[str]:
    """Default grid axes, best first: value parameters (most values first, then first appearance), then
    `prompt`, the file inputs (`video`...) and `batch` (a cell's prompt is better chosen by its selector when it
    can be)."""
    order = list(axes)
    names = [n for n in order if n != "seed"]
    meta = {*META_AXES, *parameters.files}
    return sorted(names, key=lambda n: (n in meta, -len(axes[n]), order.index(n)))


def _values(jobs: Sequence[Record], positions: Sequence[int], name: str | None,
            axes: Mapping[str, tuple[Any, ...]]) -> tuple[Any, ...]:
    if name is None:
        return (None,)
    present = {value_key(value_of(jobs[p], name)) for p in positions}
    every = axes.get(name) or manifest_order(name, (jobs[p] for p in sorted(positions,
                                                                            key=lambda p: _index(jobs[p], p))))
    return tuple(v for v in every if value_key(v) in present)


def _grids(jobs: Sequence[Record], positions: Sequence[int], rows: str | None, cols: str | None,
           groups: tuple[str, ...], axes: Mapping[str, tuple[Any, ...]]) -> tuple[Grid, ...]:
    by_group: dict[tuple[tuple[str, Any], ...], list[int]] = {}
    for p in positions:
        by_group.setdefault(tuple((n, value_key(value_of(jobs[p], n))) for n in groups), []).append(p)
    order = [[value_key(v) for v in axes[name]] for name in groups]

    def group_rank(key: tuple[tuple[str, Any], ...]) -> tuple[int, ...]:
        return tuple(order[i].index(vk) for i, (_, vk) in enumerate(key))

    out = []
    for key in sorted(by_group, key=group_rank):
        members = by_group[key]
        heading = tuple((name, value_of(jobs[members[0]], name)) for name in groups)
        out.append(_grid(jobs, members, heading, rows, cols, axes))
    return tuple(out)


def _grid(jobs: Sequence[Record], positions: Sequence[int], heading: tuple[tuple[str, Any], ...],
          rows: str | None, cols: str | None, axes: Mapping[str, tuple[Any, ...]]) -> Grid:
    row_values = _values(jobs, positions, rows, axes)
    col_values = _values(jobs, positions, cols, axes)
    row_at = {value_key(v): i for i, v in enumerate(row_values)}
    col_at = {value_key(v): i for i, v in enumerate(col_values)}
    cells: list[list[list[int]]] = [[[] for _ in col_values] for _ in row_values]
    for p in sorted(positions, key=lambda p: _index(jobs[p], p)):
        r = row_at[value_key(value_of(jobs[p], rows))] if rows else 0
        c = col_at[value_key(value_of(jobs[p], cols))] if cols else 0
        cells[r][c].append(p)
    return Grid(heading, row_values, col_values, tuple(tuple(tuple(c) for c in row) for row in cells))


def _index(job: Record, position: int) -> tuple[int, int]:
    index = job.get("index")
    return (index if isinstance(index, int) else 1 << 62, position)


def _strips(jobs: Sequence[Record], positions: Sequence[int], heading: tuple[tuple[str, Any], ...],
            parameters: Parameters) -> Section:
    """A seed study: one row per setting (in order of first job), its jobs along the row in index order."""
    strips: dict[str, list[int]] = {}
    for p in positions:
        strips.setdefault(setting_of(jobs[p]), []).append(p)
    labels = _setting_labels(jobs, strips, parameters)
    seed_lists = {tuple(value_key(value_of(jobs[p], "seed")) for p in ps) for ps in strips.values()}
    if len(seed_lists) == 1:  # every strip has the same seeds: columns are the seeds
        col_axis = "seed"
        col_values = tuple(value_of(jobs[p], "seed") for p in next(iter(strips.values())))
        cells = tuple(tuple((p,) for p in ps) for ps in strips.values())
    else:  # columns are positions along the strip
        col_axis = POSITION
        width = max(len(ps) for ps in strips.values())
        col_values = tuple(range(1, width + 1))
        cells = tuple(tuple((ps[i],) if i < len(ps) else () for i in range(width)) for ps in strips.values())
    grid = Grid((), tuple(strips), col_values, cells)
    return Section("strips", heading, SETTING, col_axis, (), {}, (grid,), labels)


def _setting_labels(jobs: Sequence[Record], strips: Mapping[str, list[int]],
                    parameters: Parameters) -> dict[str, str]:
    """Each setting's description: the values that tell it apart from the other settings (else its prompt):
    batch, the leading file input, prompt, the value parameters, the other file inputs."""
    firsts = [jobs[ps[0]] for ps in strips.values()]
    files = [n for n in parameters.names if n in parameters.files]
    names = ["batch", *files[:1], "prompt", *(n for n in parameters.names if n not in ("prompt", "seed", *files)),
             *files[1:]]
    differing = [n for n in names if len({value_key(value_of(j, n)) for j in firsts}) > 1]
    labels = {}
    for setting, job in zip(strips, firsts):
        if differing:
            labels[setting] = " · ".join(f"{n}={_short(_shown(n, value_of(job, n)))}" for n in differing)
        else:
            labels[setting] = _short(value_of(job, "prompt"))
    return labels


def _shown(name: str, value: Any) -> Any:
    """A file input by its base name (an array's files by theirs); anything else as it is."""
    if isinstance(value, (FileName, FileNames)):
        return value.base
    return value


def _short(value: Any, limit: int = 80) -> str:
    text = "unset" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
