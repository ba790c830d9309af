"""`ltx-batch plan MANIFEST --cost`: what the run would cost, from dry runs, per batch and in total.

One dry run per price class (`costcap.price_class`: jobs that differ only in prompt, negativePrompt and seed
cost the same), or per job with `--cost-each`, within the request budget (`max_requests_per_s`). Input files
are sent as the asset ids the run folder's journal recorded for them, else as a placeholder id (a dry run does
not validate the parameters, api-notes.md): the note printed says which.
"""

from __future__ import annotations

import asyncio
import os
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.cli.session import api_session
from pipeline.config import Credentials, Settings, load_credentials
from pipeline.ledger.costs import amount, cu, price_class
from pipeline.manifest.load import Manifest
from pipeline.run.pricing import plan_asset_ids, price_jobs
from pipeline.spec import InputRef, JobSpec

NOTE_CHARS = 90  # the note is wrapped to this width


@dataclass(frozen=True, slots=True)
class BatchCost:
    """One batch's price: its jobs, their kinds, the cheapest and dearest job, the total."""

    name: str
    jobs: int
    kinds: int
    low_cu: float
    high_cu: float
    total_cu: float


@dataclass(frozen=True, slots=True)
class PlanCost:
    """The manifest's price: by price class (or by job key with `each`), per batch, and how it was found."""

    prices: Mapping[str, float]
    each: bool
    batches: tuple[BatchCost, ...]
    dry_runs: int  # distinct requests priced
    api_requests: int  # requests sent, retries included
    placeholders: tuple[InputRef, ...]  # inputs priced with a placeholder asset id
    recorded_inputs: int  # inputs priced with the asset id the run folder's journal recorded

    def of(self, spec: JobSpec) -> float:
        """One job's price."""
        return self.prices[spec.key if self.each else price_class(spec)]

    @property
    def jobs(self) -> int:
        return sum(b.jobs for b in self.batches)

    @property
    def total_cu(self) -> float:
        return sum(b.total_cu for b in self.batches)

    def note(self) -> str:
        """How the price was found: requests made, what was priced once, which inputs were stood in for."""
        if self.each:
            how = f"{self.dry_runs:,} dry runs, one per job (--cost-each)"
        else:
            how = (f"{self.dry_runs:,} dry run{'' if self.dry_runs == 1 else 's'} for {self.jobs:,} jobs: jobs that "
                   f"differ only in prompt, negativePrompt and seed cost the same, so each kind of job was priced "
                   f"once (--cost-each prices every job)")
        lines = [f"priced with {how}; {self.api_requests:,} API requests, no job created, nothing charged"]
        if self.recorded_inputs:
            lines.append(f"{self.recorded_inputs} input file(s) sent as the asset ids the run folder's journal "
                         "recorded")
        if self.placeholders:
            names = ", ".join(os.path.basename(ref.path or "?") for ref in self.placeholders[:5])
            lines.append(f"{len(self.placeholders)} input file(s) not uploaded yet ({names}) were sent as a "
                         "placeholder asset id (a dry run does not validate parameters); if the price depends on "
                         "the input (e.g. its length, when duration is not set), price again after a first run "
                         "has uploaded them")
        return "\n".join(lines)

    def text(self) -> str:
        """The cost section `plan --cost` prints: the total, a line per batch, and the note."""
        rows = [("batch", "jobs", "kinds", "CU a job", "CU")]
        for b in self.batches:
            each = amount(b.low_cu) if b.low_cu == b.high_cu else f"{amount(b.low_cu)} to {amount(b.high_cu)}"
            rows.append((b.name, f"{b.jobs:,}", f"{b.kinds:,}", each, amount(b.total_cu)))
        if len(self.batches) > 1:
            rows.append(("total", f"{self.jobs:,}", "", "", amount(self.total_cu)))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = [f"cost      {cu(self.total_cu)} for {self.jobs:,} jobs"]
        for row in rows:
            cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].rjust(widths[2]),
                     row[3].ljust(widths[3]), row[4].rjust(widths[4])]
            lines.append(("          " + "  ".join(cells)).rstrip())
        for number, line in enumerate(self.note().splitlines()):
            wrapped = textwrap.wrap(line, width=NOTE_CHARS) or [""]
            lines += [("note      " if number == 0 and i == 0 else "          ") + part
                      for i, part in enumerate(wrapped)]
        return "\n".join(lines)


def price_plan(manifest: Manifest, settings: Settings, *, each: bool, emulator: bool) -> PlanCost:
    """Price the manifest against the API (or the embedded emulator). ConfigError (exit 2) without credentials;
    PricingError naming the job for an answer that cannot be used."""
    credentials = None if emulator else load_credentials()
    return asyncio.run(_price(manifest, settings, credentials, each=each, emulator=emulator))


async def _price(manifest: Manifest, settings: Settings, credentials: Credentials | None, *, each: bool,
                 emulator: bool) -> PlanCost:
    ids, placeholders = plan_asset_ids(manifest.input_files(), manifest.run_dir(settings.output_dir))
    async with api_session(settings, None if emulator else credentials) as api:
        prices = await price_jobs(api, manifest.jobs(), ids, each=each)
        requests = api.requests
    batches = _by_batch(manifest, prices, each=each)
    return PlanCost(prices, each, batches, len(prices), requests, tuple(placeholders),
                    len(ids) - len(placeholders))


def _by_batch(manifest: Manifest, prices: Mapping[str, float], *, each: bool) -> tuple[BatchCost, ...]:
    """One pass over the jobs: each batch's count, kinds, cheapest, dearest and total."""
    figures: dict[str, list[float]] = {}  # batch -> [jobs, low, high, total]
    kinds: dict[str, set[str]] = {}
    for spec in manifest.jobs():
        kind = price_class(spec)
        price = prices[spec.key if each else kind]
        row = figures.setdefault(spec.batch, [0, price, price, 0.0])
        row[0] += 1
        row[1], row[2], row[3] = min(row[1], price), max(row[2], price), row[3] + price
        kinds.setdefault(spec.batch, set()).add(kind)
    return tuple(BatchCost(name, int(row[0]), len(kinds[name]), row[1], row[2], row[3])
                 for name, row in figures.items())
