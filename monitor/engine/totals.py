"""Cumulative totals of one (contract, line): the day counts summed over all days, plus a
hold-time histogram, the source of the Prometheus counters."""

from __future__ import annotations

from bisect import bisect_left

from monitor.engine.aggregates import N_COUNTS, add_into
from monitor.engine.calls import CallFacts

# Upper bounds (seconds) of the hold-time histogram: exactly at the 30 s and 120 s limits.
HOLD_BUCKETS_S: tuple[float, ...] = (5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200)
_HOLD_BUCKETS_MS = tuple(int(b * 1000) for b in HOLD_BUCKETS_S)
# Layout: the N_COUNTS day counts, then one count per hold bucket (+Inf last).
TOTALS_LENGTH = N_COUNTS + len(_HOLD_BUCKETS_MS) + 1


def new_totals() -> list[int]:
    return [0] * TOTALS_LENGTH


def add_totals(totals: list[int], facts: CallFacts, sign: int = 1) -> None:
    """Add (or with ``sign`` -1 retract) one call."""
    add_into(totals, facts, sign)
    if facts.answered:
        # One count in the hold's own bucket; the scrape makes the histogram cumulative.
        totals[N_COUNTS + bisect_left(_HOLD_BUCKETS_MS, facts.hold_ms)] += sign
