"""What a contract's expired calls contribute to its figures.

A stream engine drops call state once a call has been idle for the lateness horizon, but the
call still counts: in its day, in the cumulative totals and, for up to 24 hours, in the rolling
windows. :class:`ExpiredFigures` holds those contributions for one contract, in the same shape
whether it holds everything expired so far (a restore starts from it) or only what expired since
the last write (a delta record).
"""

from __future__ import annotations

from typing import Any

from monitor.engine.aggregates import N_COUNTS, add_into
from monitor.engine.calls import CallFacts
from monitor.engine.totals import add_totals, new_totals
from monitor.engine.windows import N_WINDOW_COUNTS, Item


class ExpiredFigures:
    """Day counts, totals and window buckets of one contract's expired calls."""

    __slots__ = ("days", "step", "totals", "windows")

    def __init__(self, step: int = 0) -> None:
        self.step = step  # the expiry step (30-minute step of event time) this is complete to
        self.days: dict[tuple[str, str], list[int]] = {}  # (line, local date) -> counts
        self.totals: dict[str, list[int]] = {}  # line -> totals and hold histogram
        self.windows: dict[str, dict[int, list[int]]] = {}  # line -> minute -> bucket

    def fold(self, facts: CallFacts, date: str, items: list[Item]) -> None:
        """Add one call: its facts, counted on its local ``date``, and its window items
        (minute, count index, amount)."""
        line = facts.line
        counts = self.days.get((line, date))
        if counts is None:
            counts = self.days[(line, date)] = [0] * N_COUNTS
        add_into(counts, facts)
        totals = self.totals.get(line)
        if totals is None:
            totals = self.totals[line] = new_totals()
        add_totals(totals, facts)
        buckets = self.windows.get(line)
        if buckets is None:
            buckets = self.windows[line] = {}
        for minute, index, amount in items:
            bucket = buckets.get(minute)
            if bucket is None:
                bucket = buckets[minute] = [0] * N_WINDOW_COUNTS
            bucket[index] += amount

    def merge(self, other: ExpiredFigures) -> None:
        """Add another holder's figures (a delta into the whole)."""
        self.step = max(self.step, other.step)
        _add_vectors(self.days, other.days)
        _add_vectors(self.totals, other.totals)
        for line, buckets in other.windows.items():
            _add_vectors(self.windows.setdefault(line, {}), buckets)

    def prune(self, reach_minute: int) -> None:
        """Drop window minutes no window reaches any more (minute <= ``reach_minute``)."""
        for buckets in self.windows.values():
            for minute in [m for m in buckets if m <= reach_minute]:
                del buckets[minute]

    def record(self, **extra: Any) -> dict[str, Any]:
        """The persisted form, sorted so equal figures give equal bytes."""
        return {
            "step": self.step,
            "days": [[line, date, counts] for (line, date), counts in sorted(self.days.items())],
            "totals": [[line, totals] for line, totals in sorted(self.totals.items())],
            "windows": [
                [line, [[m, b] for m, b in sorted(buckets.items())]]
                for line, buckets in sorted(self.windows.items())
                if buckets
            ],
            **extra,
        }

    @classmethod
    def from_record(cls, value: dict[str, Any]) -> ExpiredFigures:
        figures = cls(value["step"])
        for line, date, counts in value["days"]:
            figures.days[(line, date)] = list(counts)
        for line, totals in value["totals"]:
            figures.totals[line] = list(totals)
        for line, buckets in value["windows"]:
            figures.windows[line] = {m: list(b) for m, b in buckets}
        return figures


def _add_vectors(into: dict[Any, list[int]], source: dict[Any, list[int]]) -> None:
    for key, values in source.items():
        target = into.get(key)
        if target is None:
            into[key] = list(values)
        else:
            for i, value in enumerate(values):
                target[i] += value
