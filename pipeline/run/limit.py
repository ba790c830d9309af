"""Which jobs a limited run sends (`run --limit N`, with `--spread` a sample across the manifest): pure.

A limited run sends only the jobs it picks; everything else the run folder holds is resumed as usual (polled,
downloaded), and the same command without --limit later sends the rest: the journal knows what was sent, so
nothing is paid twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.spec import JobSpec

GOLDEN_FRACTION = 0.6180339887498949  # steps through a stretch without lining up with any axis's period


class SlicedJobs(Protocol):
    def jobs(self, start: int = 0, stop: int | None = None) -> Iterator[JobSpec]: ...


@dataclass(frozen=True, slots=True)
class Limit:
    """The jobs a limited run picks: the first `count` of the expansion, or `count` spread across it."""

    count: int  # --limit N
    spread: bool  # --spread
    total: int  # the manifest's jobs
    indices: tuple[int, ...]  # the picked indices, ascending
    picked: frozenset[int] = field(default=frozenset(), repr=False, compare=False)  # the same, to look up

    @classmethod
    def of(cls, count: int, total: int, *, spread: bool = False) -> Limit:
        indices = spread_indices(count, total) if spread else tuple(range(min(count, total)))
        return cls(count, spread, total, indices, frozenset(indices) if spread else frozenset())

    def __call__(self, index: int) -> bool:
        """Whether the job of this index is picked."""
        return index in self.picked if self.spread else index < self.count

    def jobs(self, manifest: SlicedJobs) -> Iterator[JobSpec]:
        """The picked jobs, in index order (each built from its index alone)."""
        if not self.spread:
            yield from manifest.jobs(0, len(self.indices))
            return
        for index in self.indices:
            yield from manifest.jobs(index, index + 1)

    def describe(self) -> str:
        """`--limit 5: the first 5 of 54 jobs` / `--limit 5 --spread: 5 of 54 jobs, spread across the manifest`."""
        picked = len(self.indices)
        if self.spread:
            return f"--limit {self.count} --spread: {picked:,} of {self.total:,} jobs, spread across the manifest"
        return f"--limit {self.count}: the first {picked:,} of {self.total:,} jobs"

    def to_json(self) -> dict[str, Any]:
        return {"limit": self.count, "spread": self.spread, "chosen": len(self.indices), "of": self.total}


def spread_indices(count: int, total: int) -> tuple[int, ...]:
    """`count` indices across range(total), deterministic: one from each of `count` equal stretches, at a
    place in it that moves by the golden ratio from stretch to stretch, so that a fast axis of the expansion
    (the seed, the last swept parameter) does not sit at the same value in every pick."""
    if count >= total:
        return tuple(range(total))
    picked = []
    for i in range(count):
        low, high = i * total // count, (i + 1) * total // count
        picked.append(low + int(((i * GOLDEN_FRACTION) % 1.0) * (high - low)))
    return tuple(picked)
