"""GC pause control: what is frozen, and when the emulator's idle freezer acts."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from pipeline.gcpause import IdleFreezer, freeze_long_lived


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    """Each test starts and ends with nothing frozen (the test process is shared)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_freeze_long_lived_moves_what_is_alive_out_of_collections() -> None:
    """After freeze_long_lived, the objects alive then are in the permanent generation."""
    kept = [object() for _ in range(10)], {"a": [1]}
    frozen = freeze_long_lived()
    assert frozen == gc.get_freeze_count() > 1000
    assert kept  # still alive, still usable


def test_idle_freezer_freezes_only_when_idle_and_after_enough_new_jobs() -> None:
    """No freeze while a request is being handled, nor before `every_jobs` new jobs; then one per stretch."""
    freezer = IdleFreezer(every_jobs=2)
    freezer.started()
    freezer.finished(1)
    assert freezer.freezes == 0 and gc.get_freeze_count() == 0  # only 1 new job
    freezer.started()
    freezer.started()
    freezer.finished(5)
    assert freezer.freezes == 0  # one request still being handled
    freezer.finished(5)
    assert freezer.freezes == 1 and gc.get_freeze_count() > 0
    freezer.started()
    freezer.finished(6)
    assert freezer.freezes == 1  # 1 job since the last freeze
    freezer.started()
    freezer.finished(7)
    assert freezer.freezes == 2 and freezer.handling == 0
