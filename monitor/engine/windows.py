"""Rolling windows (15 min, 1 h, 24 h) ending at the watermark, from per-minute buckets.

Each call fact is attributed to the minute of the event that determines it:

* received: the call's arrival;
* queued outcome and within-30-s answer: the queue outcome (answered, or abandoned, disconnected
  or ended while waiting);
* answered and hold: the answer;
* disconnected: the first ``disconnected`` event.

Three more counts feed outage detection (:mod:`monitor.engine.outages`), not the exported
window figures: calls that requested a live person, at the request (the first ``queued``, or
the answer of a call answered without queueing); answers with a hold of at most 120 s, at the
answer; and calls that were disconnected, at their arrival.

A window of N minutes holds the N minute buckets ending with the watermark's own minute (the
current, partial minute included). Windows longer than ``SUM_ON_READ_MINUTES`` keep running
sums that move as the watermark advances: the buckets that leave a window are subtracted, found
through an index of which series have a bucket in which minute, so the cost follows the data,
not the number of series. Shorter windows are summed from their buckets when read.
"""

from __future__ import annotations

import heapq
from operator import sub

from monitor.engine.calls import NEVER, CallFacts, CallState

MINUTE_MS = 60_000
WINDOW_MINUTES: tuple[int, ...] = (15, 60, 1440)
WINDOW_LABELS: tuple[str, ...] = ("15m", "1h", "24h")

# Positions in a window count vector.
W_RECEIVED, W_QUEUED, W_WITHIN_30S, W_ANSWERED, W_HOLD_MS, W_DISCONNECTED = range(6)
W_REQUESTED, W_ANSWERED_IN_HOLD_LIMIT, W_RECEIVED_DISCONNECTED = range(6, 9)
N_WINDOW_COUNTS = 9
HOLD_LIMIT_MS = 120_000

SeriesKey = tuple[str, str]  # (contract_id, line)
_NO_MINUTE = 1 << 62


Item = tuple[int, int, int]  # (minute, count index, amount)


def call_contribution(state: CallState, facts: CallFacts) -> tuple[list[Item], int | None]:
    """What one call adds to its series' buckets, and since when it waits in the live queue
    (None when it does not: not queued, or its queue outcome came). ``facts`` are the call's
    current facts. One pass over the state: this runs once per event."""
    (_received, queued, answered, abandoned, disconnected, ended, *_rest) = state.earliest
    arrival_minute = facts.arrival_ms // MINUTE_MS
    items = [(arrival_minute, W_RECEIVED, 1)]
    waiting: int | None = None
    if facts.requested_live:
        items.append(((queued if queued != NEVER else answered) // MINUTE_MS, W_REQUESTED, 1))
        outcome = answered if answered != NEVER else min(abandoned, disconnected, ended)
        if outcome == NEVER:
            waiting = queued
        else:
            minute = outcome // MINUTE_MS
            items.append((minute, W_QUEUED, 1))
            if facts.answered_within_30s:
                items.append((minute, W_WITHIN_30S, 1))
    if answered != NEVER:
        minute = answered // MINUTE_MS
        items.append((minute, W_ANSWERED, 1))
        items.append((minute, W_HOLD_MS, facts.hold_ms))
        if facts.hold_ms <= HOLD_LIMIT_MS:
            items.append((minute, W_ANSWERED_IN_HOLD_LIMIT, 1))
    if disconnected != NEVER:
        items.append((disconnected // MINUTE_MS, W_DISCONNECTED, 1))
        items.append((arrival_minute, W_RECEIVED_DISCONNECTED, 1))
    return items, waiting


# Windows up to this long are summed from their buckets when read (at most this many lookups);
# longer ones keep running sums. Moving a running sum costs work at every minute of event time
# for every series, which a catch-up replay crosses thousands of times per scrape.
SUM_ON_READ_MINUTES = 60


class RollingWindows:
    """Minute buckets per (contract, line); running sums for the long windows, sums computed
    on reading for the short ones."""

    def __init__(self, sizes: tuple[int, ...] = WINDOW_MINUTES) -> None:
        self.sizes = sizes
        self._kept = [(p, size) for p, size in enumerate(sizes) if size > SUM_ON_READ_MINUTES]
        self._on_read = [(p, size) for p, size in enumerate(sizes) if size <= SUM_ON_READ_MINUTES]
        self.buckets: dict[SeriesKey, dict[int, list[int]]] = {}
        self.sums: dict[SeriesKey, list[list[int]]] = {}
        self._index: dict[int, set[SeriesKey]] = {}  # minute -> series with a bucket there
        self._minute_heap: list[int] = []  # the minutes of _index, oldest first
        self.watermark_minute: int | None = None

    def _index_bucket(self, series: SeriesKey, minute: int) -> None:
        members = self._index.get(minute)
        if members is None:
            members = self._index[minute] = set()
            heapq.heappush(self._minute_heap, minute)
        members.add(series)

    def add_many(self, series: SeriesKey, items: list[Item], sign: int) -> int:
        """Add (sign=1) or retract (sign=-1) one call's (minute, index, amount) contributions;
        return the earliest minute among them (the caller's outage bookkeeping needs it)."""
        buckets = self.buckets.get(series)
        if buckets is None:
            buckets = self.buckets[series] = {}
            self.sums[series] = [[0] * N_WINDOW_COUNTS for _ in self.sizes]
        sums = self.sums[series]
        wm = self.watermark_minute
        earliest = _NO_MINUTE
        for minute, index, amount in items:
            if minute < earliest:  # noqa: PLR1730 (a call per item otherwise)
                earliest = minute
            bucket = buckets.get(minute)
            if bucket is None:
                if sign < 0:
                    continue  # retracting from a bucket already dropped: outside every window
                bucket = buckets[minute] = [0] * N_WINDOW_COUNTS
                self._index_bucket(series, minute)
            delta = sign * amount
            bucket[index] += delta
            if wm is not None and minute <= wm:
                for position, size in self._kept:
                    if wm - size < minute:
                        sums[position][index] += delta
        return earliest

    def advance(self, watermark_minute: int) -> None:
        """Move the windows' end to a later minute, dropping what falls out of them."""
        old = self.watermark_minute
        if old is not None and watermark_minute <= old:
            return
        self.watermark_minute = watermark_minute
        if old is None:
            self._recompute()
            return
        all_buckets, all_sums = self.buckets, self.sums
        for position, size in self._kept:
            for minute in self._minutes_between(old - size, watermark_minute - size):
                for series in self._index.get(minute, ()):
                    bucket = all_buckets[series][minute]
                    sums = all_sums[series]
                    sums[position] = list(map(sub, sums[position], bucket))
            # Buckets entering the window from ahead cannot exist: nothing is newer than the
            # watermark. Buckets inside it already count.
        self._drop_before(watermark_minute - max(self.sizes))

    def _minutes_between(self, low: int, high: int) -> list[int]:
        """Minutes m with low < m <= high that have buckets, cheaply for huge jumps."""
        if high - low <= len(self._index):
            return [m for m in range(low + 1, high + 1) if m in self._index]
        return sorted(m for m in self._index if low < m <= high)

    def _drop_before(self, cutoff_minute: int) -> None:
        """Forget buckets no window can reach any more (minute <= cutoff)."""
        heap = self._minute_heap
        while heap and heap[0] <= cutoff_minute:
            minute = heapq.heappop(heap)
            for series in self._index.pop(minute, ()):
                buckets = self.buckets[series]
                del buckets[minute]
                if not buckets:
                    del self.buckets[series]
                    del self.sums[series]

    def _recompute(self) -> None:
        wm = self.watermark_minute
        for series, buckets in self.buckets.items():
            sums = self.sums[series] = [[0] * N_WINDOW_COUNTS for _ in self.sizes]
            if wm is None:
                continue
            for minute, bucket in buckets.items():
                for position, size in self._kept:
                    if wm - size < minute <= wm:
                        target = sums[position]
                        for i in range(N_WINDOW_COUNTS):
                            target[i] += bucket[i]

    def load_bucket(self, series: SeriesKey, minute: int, counts: list[int]) -> None:
        """Restore one persisted bucket (call ``finish_load`` when all are in)."""
        self.buckets.setdefault(series, {})[minute] = list(counts)
        self._index_bucket(series, minute)
        self.sums.setdefault(series, [[0] * N_WINDOW_COUNTS for _ in self.sizes])

    def finish_load(self, watermark_minute: int | None) -> None:
        self.watermark_minute = watermark_minute
        if watermark_minute is not None:
            self._drop_before(watermark_minute - max(self.sizes))
        self._recompute()

    def window_counts(self, series: SeriesKey) -> list[list[int]]:
        """The counts of each window (in ``sizes`` order) ending at the watermark."""
        sums = self.sums.get(series)
        if sums is None:
            return [[0] * N_WINDOW_COUNTS for _ in self.sizes]
        out = [list(row) for row in sums]
        buckets, wm = self.buckets.get(series), self.watermark_minute
        if buckets and wm is not None:
            get = buckets.get
            for position, size in self._on_read:
                row = out[position]
                for minute in range(wm - size + 1, wm + 1):
                    bucket = get(minute)
                    if bucket is not None:
                        for i, count in enumerate(bucket):
                            row[i] += count
        return out
