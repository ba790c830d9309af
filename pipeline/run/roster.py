"""The run's one walk over its manifest's jobs, and what it leaves behind: every job's key, 32 bytes a job.

A run expands its manifest (builds each `JobSpec`, hashes its key) once: `Roster.walk()` hands the jobs
out and notes each key as it goes (the run opens with it, counting how its jobs stand). A manifest that was
checked when loaded knows every key already (`Manifest.keys`): the roster starts with them, and `keyed()` hands
out each job's index and key without building the job at all. Afterwards the
roster serves what the run needs of its jobs without expanding again: their keys by index (the producer
looks each up in the journal, the tally counts them), and the jobs themselves where a consumer needs them
whole (`jobs`, `spec`, `specs_of`: decoded again from their index, keys taken from here, not hashed): the
jobs to POST, the records of results.json, the lost POSTs sent again.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import NamedTuple, overload

from pipeline.run.context import RunnableManifest
from pipeline.spec import KEY_BYTES, JobSpec

DIGEST_BYTES = KEY_BYTES  # a job key is the hex of a sha256


class Keyed(NamedTuple):
    """A job's index and key, without the job (what `standing` reads of each)."""

    index: int
    key: str


class Roster(Sequence[str]):
    """The manifest's job keys by index, as far as the run's walk has gone (`len`)."""

    def __init__(self, manifest: RunnableManifest) -> None:
        self._manifest = manifest
        known = manifest.keys
        self._known = bool(known) and len(known) == manifest.job_count * DIGEST_BYTES
        self._digests: bytes | bytearray = known if self._known else bytearray()
        self._unwalked = manifest.jobs(keys=self) if self._known else manifest.jobs()

    def walk(self) -> Iterator[JobSpec]:
        """The jobs not walked yet, in order, each noted as it is handed out (pulled, not yet used); with the
        manifest's keys, built from them (not hashed)."""
        for spec in self._unwalked:
            if not self._known:
                self._digests += bytes.fromhex(spec.key)  # type: ignore[operator]
            yield spec

    def keyed(self) -> Iterator[JobSpec | Keyed]:
        """Each job's index and key, in order, for a consumer that reads nothing else (`standing`): taken from
        the manifest's keys when it has them (no job built), else walked (`walk`)."""
        if not self._known:
            yield from self.walk()
            return
        self._unwalked = iter(())  # nothing left to walk: every key is here
        for index, key in enumerate(self):
            yield Keyed(index, key)

    def complete(self) -> None:
        """Walk the jobs nobody pulled: afterwards the roster holds every job of the manifest."""
        for _ in self.walk():
            pass

    def jobs(self, start: int = 0, stop: int | None = None) -> Iterator[JobSpec]:
        """The walked jobs with index in [start, stop), in order: decoded again from the manifest by index,
        their keys from here (no hashing)."""
        stop = len(self) if stop is None else min(stop, len(self))
        return self._manifest.jobs(start, stop, keys=self)

    def spec(self, index: int) -> JobSpec:
        """The job of this index (decoded as `jobs`)."""
        return next(self.jobs(index, index + 1))

    def specs_of(self, keys: Collection[str]) -> Iterator[JobSpec]:
        """The walked jobs whose key is one of `keys`, in index order (decoded as `jobs`)."""
        for index, key in enumerate(self):
            if key in keys:
                yield self.spec(index)

    def __len__(self) -> int:
        return len(self._digests) // DIGEST_BYTES

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("roster index out of range")
        return self._digests[index * DIGEST_BYTES:(index + 1) * DIGEST_BYTES].hex()

    def __iter__(self) -> Iterator[str]:
        digests = self._digests
        for start in range(0, len(digests), DIGEST_BYTES):
            yield digests[start:start + DIGEST_BYTES].hex()
