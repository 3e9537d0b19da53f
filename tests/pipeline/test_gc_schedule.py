"""The worker's collector schedule: survivors frozen after each batch, a full pass now and then."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from monitor.pipeline.worker import _GcSchedule


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_batches_freeze_survivors_and_a_full_pass_unfreezes_them() -> None:
    gc.unfreeze()  # other tests (the report's replay) freeze too
    schedule = _GcSchedule(full_every_s=3600)
    schedule.after_batch()
    assert gc.get_freeze_count() == 0  # not enabled: the worker turns it on when it runs
    schedule.enabled = True
    state = [[i] for i in range(1000)]  # long-lived containers, like call state
    schedule.after_batch()
    frozen = gc.get_freeze_count()
    assert frozen >= len(state)

    # A reference cycle that dies while frozen is reclaimed by the next full pass.
    class Node:
        partner: object

    a, b = Node(), Node()
    a.partner, b.partner = b, a
    cycle = weakref.ref(a)
    schedule.after_batch()
    del a, b
    gc.collect()
    assert cycle() is not None  # frozen: out of the collector's sight until the next full pass
    schedule.full_every_s = 0
    schedule.after_batch()  # unfreeze, collect everything, freeze the survivors again
    assert cycle() is None
    assert gc.get_freeze_count() >= len(state)
