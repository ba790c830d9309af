"""The run's one walk over its manifest's jobs, and what it leaves behind: every job's key, 32 bytes a job.

A run expands its manifest (builds each `JobSpec`, hashes its key) once. The producer pulls the jobs from
`Roster.walk()`, which notes each key as it hands the job out; `complete()` walks the jobs the producer did
not reach (it stops early when submitting stops). What comes after reads the roster instead of expanding
again: the tally (each job's index and key), the records of results.json (`specs()`: each job decoded
again from its index, its key taken from here, not hashed) and the lost POSTs sent again (`specs_of`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import overload

from pipeline.run.context import RunnableManifest
from pipeline.spec import JobSpec

DIGEST_BYTES = 32  # a job key is the hex of a sha256


class Roster(Sequence[str]):
    """The manifest's job keys by index, as far as the run's walk has gone (`len`)."""

    def __init__(self, manifest: RunnableManifest) -> None:
        self._manifest = manifest
        self._unwalked = manifest.jobs()
        self._digests = bytearray()

    def walk(self) -> Iterator[JobSpec]:
        """The jobs not walked yet, in order, each noted as it is handed out (pulled, not yet used)."""
        for spec in self._unwalked:
            self._digests += bytes.fromhex(spec.key)
            yield spec

    def complete(self) -> None:
        """Walk the jobs nobody pulled: afterwards the roster holds every job of the manifest."""
        for _ in self.walk():
            pass

    def specs(self) -> Iterator[JobSpec]:
        """Every walked job again, in order: decoded from its index, its key from here (no hashing)."""
        return self._manifest.jobs(0, len(self), keys=self)

    def specs_of(self, keys: Collection[str]) -> Iterator[JobSpec]:
        """The walked jobs whose key is one of `keys`, in index order (decoded as `specs`)."""
        for index, key in enumerate(self):
            if key in keys:
                yield from self._manifest.jobs(index, index + 1, keys=self)

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
