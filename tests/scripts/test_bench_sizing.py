"""The sizing benchmark's own logic: the least-squares fit and the calls it leaves open."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def bench() -> ModuleType:
    if "bench_sizing" in sys.modules:
        return sys.modules["bench_sizing"]
    spec = importlib.util.spec_from_file_location(
        "bench_sizing", ROOT / "scripts" / "bench_sizing.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_sizing"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_fit_line_recovers_an_exact_line() -> None:
    slope, intercept = bench().fit_line([25, 50, 100, 200], [3 * x + 7 for x in (25, 50, 100, 200)])
    assert slope == pytest.approx(3)
    assert intercept == pytest.approx(7)


def test_fit_line_is_least_squares() -> None:
    # By hand: mean x 1, mean y 1; sxx 2, sxy 1 -> slope 0.5, intercept 1 - 0.5 = 0.5.
    slope, intercept = bench().fit_line([0, 1, 2], [0, 2, 1])
    assert slope == pytest.approx(0.5)
    assert intercept == pytest.approx(0.5)


def test_fit_line_needs_two_distinct_x() -> None:
    fit_line = bench().fit_line
    with pytest.raises(ValueError, match="two distinct"):
        fit_line([5, 5], [1, 2])
    with pytest.raises(ValueError, match="two distinct"):
        fit_line([1, 2], [1])


def test_open_calls_stay_in_state_and_half_wait_in_the_queue() -> None:
    module = bench()
    config = module.simulation(2, 10.0)
    state = module.State.empty(module.ContractRegistry(config.contracts))
    for batch in module.message_batches(config):
        state.feed(batch)
    held, received = state.calls(), state.calls_received
    assert received > 0 and held > 0

    def waiting() -> int:
        engines = state.partitions.engines.values()
        return sum(len(queue) for engine in engines for queue in engine.queue.values())

    before = waiting()
    state.open_calls(10)
    state.open_calls(4)
    # Every call is new (ids continue across calls), none ended or expired; the unanswered
    # half waits in the live queue.
    assert state.calls() == held + 14
    assert waiting() == before + 7
    assert state.opened == 14
    # The state table holds their records: a restored engine finds the same calls.
    restored = module.State.empty(module.ContractRegistry(config.contracts))
    restored.partitions.engines.clear()
    restored.partitions.sync(set(state.partitions.engines), state.table)
    assert restored.calls() == state.calls()
