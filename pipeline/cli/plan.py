"""`ltx-batch plan MANIFEST`: validate a manifest and show its jobs, offline (no network at all);
with `--cost`, price them with dry runs (`plan_cost`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pipeline.cli.run import SETTING_FLAGS, default_of
from pipeline.config import load_settings
from pipeline.ledger.replay import JOURNAL_NAME, LedgerState, apply, read_events
from pipeline.ledger.standing import standing, standing_text
from pipeline.manifest.load import Manifest, load_manifest
from pipeline.manifest.params import MAX_SEED
from pipeline.spec import JobSpec

if TYPE_CHECKING:
    from pipeline.cli.plan_cost import PlanCost

HELP = "check a manifest and list the jobs it expands to (offline; --cost prices them with dry runs)"
EXIT_STATUSES = (
    (0, "the manifest is valid (and, with --cost, priced)"),
    (1, "--cost: an answer that cannot be used, or API errors that outlived the retries"),
    (2, "bad manifest, config file, environment variable or flag; --cost without credentials"),
    (3, "--cost: the API refused the credentials or the account is out of credits"),
)
DEFAULT_LIMIT = 50
KEY_CHARS = 12
PROMPT_CHARS = 40


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", metavar="MANIFEST", help="the YAML manifest")
    parser.add_argument("--config", metavar="FILE", help="a YAML file of settings (for output_dir)")
    parser.add_argument("--out", metavar="DIR", help="output folder; the run folder is DIR/<manifest name>/ "
                                                     f"(default: {default_of('output_dir')})")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--limit", type=_positive, default=DEFAULT_LIMIT, metavar="N",
                       help=f"show at most N jobs: the first and the last ones (default {DEFAULT_LIMIT})")
    shown.add_argument("--all", action="store_true", help="show every job")
    shown.add_argument("--json", action="store_true",
                       help="print every job as a JSON array (JobSpec fields plus the run 'name')")
    parser.add_argument("--wide", action="store_true",
                        help="show every prompt whole, in the last column (default: cut to fit)")
    cost = parser.add_argument_group("cost (needs credentials and the network, or --emulator)")
    cost.add_argument("--cost", action="store_true",
                      help="price the run with dry runs (no job, no charge): per batch and in total")
    cost.add_argument("--cost-each", action="store_true",
                      help="with --cost: price every job (default: one dry run per kind of job, as jobs that "
                           "differ only in prompt, negativePrompt and seed cost the same)")
    cost.add_argument("--api-url", metavar="URL", help="API base URL (also SCENARIO_API_URL; default: "
                                                       f"{default_of('api_base_url')})")
    cost.add_argument("--project-id", metavar="ID", help="Scenario project id, sent as projectId (default: none)")
    cost.add_argument("--emulator", action="store_true",
                      help="price against the built-in emulator on a free loopback port (no credentials)")


def execute(args: argparse.Namespace) -> int:
    manifest = load_manifest(args.manifest)
    settings = load_settings(config_file=args.config, overrides={"output_dir": args.out,
                                                                  "api_base_url": args.api_url,
                                                                  "project_id": args.project_id},
                             flags=SETTING_FLAGS)
    out = sys.stdout
    costs = None
    if args.cost or args.cost_each:
        from pipeline.cli.plan_cost import price_plan

        costs = price_plan(manifest, settings, each=args.cost_each, emulator=args.emulator)
    try:
        if args.json:
            for problem in manifest.warnings:
                print(f"warning: {problem}", file=sys.stderr)
            write_json(manifest, out, costs=costs)
            if costs is not None:
                print(costs.note(), file=sys.stderr)
        else:
            write_table(manifest, out, output_dir=settings.output_dir, limit=None if args.all else args.limit,
                        wide=args.wide)
            if costs is not None:
                print(file=out)
                print(costs.text(), file=out)
        out.flush()
    except BrokenPipeError:  # `ltx-batch plan ... | head`: the reader has gone, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    return 0


def write_json(manifest: Manifest, out: TextIO, *, costs: PlanCost | None = None) -> None:
    """Stream a JSON array of every job, one element per line: bounded memory at any job count.

    With `costs` (--cost), each job also carries its dry-run price as `cost_cu`."""
    out.write("[")
    for job in manifest.jobs():
        out.write("\n" if job.index == 0 else ",\n")
        extra = {"cost_cu": costs.of(job)} if costs is not None else {}
        out.write(json.dumps({"name": manifest.name, **job.to_json(), **extra}))
    out.write("\n]\n" if manifest.job_count else "]\n")


def write_table(manifest: Manifest, out: TextIO, *, output_dir: str, limit: int | None, wide: bool = False) -> None:
    """The summary (run folder and what it holds, inputs, counts, warnings) and a table of the jobs."""
    run_dir = manifest.run_dir(output_dir)
    exists = _folder_note(manifest, run_dir)
    counts = ", ".join(f"{name}: {count:,}" for name, count in manifest.batch_counts().items())
    print(f"manifest  {manifest.path}", file=out)
    print(f"run       {manifest.name}  ->  {run_dir}{os.sep}{exists}", file=out)
    models = sorted({batch.model for batch in manifest.batches})
    print(f"model     {', '.join(models)}", file=out)
    for ref in manifest.input_files():
        print(f"input     {ref.path}  ({ref.size_bytes:,} bytes, sha256 {(ref.sha256 or '')[:KEY_CHARS]})", file=out)
    print(f"jobs      {manifest.job_count:,}  ({counts})", file=out)
    for problem in manifest.warnings:
        print(f"warning   {problem}", file=out)
    print(file=out)
    table = _Table(manifest, wide=wide)
    print(table.header(), file=out)
    count = manifest.job_count
    if limit is None or count <= limit:
        _rows(table, manifest.jobs(), out)
        return
    head, tail = limit - limit // 2, limit // 2
    _rows(table, manifest.jobs(0, head), out)
    print(f"{'':>{table.widths[0]}}  ... {count - head - tail:,} more jobs (--all shows every job) ...", file=out)
    _rows(table, manifest.jobs(count - tail, count), out)


def _folder_note(manifest: Manifest, run_dir: Path) -> str:
    """What the run folder already holds for this manifest, from its journal (read only):
    `  (exists: 36 downloaded, 2 failed; 18 new (paid); 3 no longer in the manifest; a run there resumes)`."""
    if not run_dir.is_dir():
        return ""
    journal = run_dir / JOURNAL_NAME
    if not journal.is_file():
        return "  (exists, no journal yet: a run there starts afresh)"
    state = LedgerState(keep_specs=False)
    for event in read_events(journal, warn_torn=False):  # a run may be writing it now: a torn tail is normal
        apply(state, event)
    return f"  (exists: {standing_text(standing(manifest.jobs(), state))}; a run there resumes)"


def _rows(table: _Table, jobs: Iterable[JobSpec], out: TextIO) -> None:
    for job in jobs:
        print(table.row(job), file=out)


class _Table:
    """Fixed column widths computed from the manifest (not from the rows), so rows can stream."""

    def __init__(self, manifest: Manifest, *, wide: bool = False) -> None:
        self.batches = len(manifest.batches) > 1
        self.wide = wide  # prompts whole, in the last column (the others stay aligned)
        self.axes = [a for a in manifest.axes if a not in ("prompt", "seed")]
        self.titles = ["index", "key", *(["batch"] if self.batches else []), *([] if wide else ["prompt"]),
                       *self.axes, "seed", *(["prompt"] if wide else [])]
        widest: dict[str, int] = {
            "index": len(str(max(manifest.job_count - 1, 0))),
            "key": KEY_CHARS,
            "batch": max(len(b.name) for b in manifest.batches),
            "prompt": 0 if wide else max(len(_excerpt(p.text)) for b in manifest.batches for p in b.prompts),
            "seed": max((len(str(s)) for b in manifest.batches for s in (b.seeds or [MAX_SEED])), default=1),
        }
        for batch in manifest.batches:
            widest["video"] = max([widest.get("video", 0), *(len(v.label) for v in batch.videos)])
            for axis in (*batch.sweep, *batch.zip):
                widest[axis.name] = max([widest.get(axis.name, 0), *(len(show(v)) for v in axis.values)])
        self.widths = [max(len(t), widest.get(t, 0)) for t in self.titles]

    def header(self) -> str:
        return self._line(self.titles)

    def row(self, job: JobSpec) -> str:
        prompt = " ".join(job.prompt.split()) if self.wide else _excerpt(job.prompt)
        cells = [str(job.index), job.key[:KEY_CHARS], *([job.batch] if self.batches else []),
                 *([] if self.wide else [prompt])]
        cells += ["" if a not in job.swept else show(job.swept[a]) for a in self.axes]
        return self._line([*cells, str(job.seed), *([prompt] if self.wide else [])])

    def _line(self, cells: list[str]) -> str:
        parts = [cell.rjust(width) if title in ("index", "seed") else cell.ljust(width)
                 for cell, width, title in zip(cells, self.widths, self.titles)]
        return "  ".join(parts).rstrip()


def show(value: Any) -> str:
    """A swept value as shown in the table: null as '-', booleans lower-case."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PROMPT_CHARS else flat[: PROMPT_CHARS - 3] + "..."
