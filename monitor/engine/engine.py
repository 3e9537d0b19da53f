"""The compliance engine: valid events in any order, with duplicates -> daily CMS figures.

Two modes share every rule:

* **incremental** (stream workers): after each event the daily counts are current. When a late
  event changes a call's facts, the call's old contribution is retracted from its old day and the
  new one added, so the counts after any prefix equal a batch computation over that prefix.
* **deferred** (``monitor report`` replays): events only update per-call state; daily counts are
  computed once, when rows are read. Same results, a fraction of the work per event.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from monitor.engine.aggregates import (
    CLOCK_SKEW,
    N_COUNTS,
    DailyFigures,
    DayKey,
    add_into,
)
from monitor.engine.calendars import LocalDates
from monitor.engine.calls import NEVER, CallFacts, CallState
from monitor.engine.events import CallEvent
from monitor.engine.registry import ContractRegistry
from monitor.engine.validation import Rejection, RejectReason
from monitor.engine.windows import (
    HOLD_LIMIT_MS,
    MINUTE_MS,
    N_WINDOW_COUNTS,
    W_ANSWERED,
    W_ANSWERED_IN_HOLD_LIMIT,
    W_DISCONNECTED,
    W_QUEUED,
    W_RECEIVED,
    W_RECEIVED_DISCONNECTED,
    W_REQUESTED,
    SeriesKey,
)

CallKey = tuple[str, str]  # (contract_id, call_id)


@dataclass(slots=True)
class EngineStats:
    """What the engine saw besides the figures; exported as pipeline-health metrics."""

    accepted: int = 0  # valid, first-seen events (status events included)
    duplicates: int = 0
    status_events: int = 0
    rejected: Counter[RejectReason] = field(default_factory=Counter)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


class ComplianceEngine:
    """Per-call state plus per-(contract, line, local date) counts."""

    def __init__(self, registry: ContractRegistry | None = None, *, incremental: bool = True):
        self.registry = registry if registry is not None else ContractRegistry()
        self.incremental = incremental
        self.stats = EngineStats()
        self._calls: dict[CallKey, CallState] = {}
        self._days: dict[DayKey, list[int]] = {}
        self._seen_ids: set[str] = set()
        self._dates = LocalDates()
        self._zones: dict[str, ZoneInfo] = {}
        # Deferred mode: the number of accepted events the cached day counts reflect.
        self._days_version = -1
        self.latest_ms = -1  # newest event time accepted (a replay's watermark)
        self.status_log: list[CallEvent] = []  # service_down/up events, for outage replays

    # -- input -------------------------------------------------------------------------------

    def offer(self, item: CallEvent | Rejection) -> bool:
        """Take a validated event or a rejection; return whether it changed anything."""
        if type(item) is Rejection:
            self.stats.rejected[item.reason] += 1
            return False
        return self.apply(item)  # type: ignore[arg-type]

    def reject(self, reason: RejectReason) -> None:
        self.stats.rejected[reason] += 1

    def apply(self, event: CallEvent) -> bool:
        """Fold in one valid event; a repeated ``event_id`` is a duplicate and is ignored."""
        seen = self._seen_ids
        if event.event_id in seen:
            self.stats.duplicates += 1
            return False
        seen.add(event.event_id)
        if event.ts_ms > self.latest_ms:  # noqa: PLR1730 (max() costs a call per event)
            self.latest_ms = event.ts_ms
        if event.call_id is None:
            # Status events (service_down/up) carry no call figures; outages consume them.
            self.stats.status_events += 1
            self._on_status(event)
            return True
        key = (event.contract_id, event.call_id)
        state = self._calls.get(key)
        if not self.incremental:
            if state is None:
                state = self._calls[key] = CallState()
            state.observe(event.type, event.ts_ms, event.line)
            return True
        if state is None:
            state = self._calls[key] = self._new_state()
            before = None
        else:
            before = self._snapshot(state)
        if self._observe(state, event):
            self._on_change(key, state, before)
        return True

    # -- incremental hooks (the stream engine extends these) ----------------------------------

    def _on_status(self, event: CallEvent) -> None:
        self.status_log.append(event)

    def _new_state(self) -> CallState:
        return CallState()

    def _observe(self, state: CallState, event: CallEvent) -> bool:
        return state.observe(event.type, event.ts_ms, event.line)

    def _snapshot(self, state: CallState) -> Any:
        """What ``_on_change`` needs to retract the call's old contribution."""
        return state.facts()

    def _on_change(self, key: CallKey, state: CallState, before: Any) -> None:
        """The call's state changed: retract its old contribution and add the new one."""
        self._move_facts(key, before, state.facts())

    def _move_facts(self, key: CallKey, before: CallFacts | None, after: CallFacts) -> None:
        if after != before:
            if before is not None:
                self._add(key[0], before, -1)
            self._add(key[0], after, 1)

    # -- aggregation ---------------------------------------------------------------------------

    def local_date(self, contract_id: str, ts_ms: int) -> str:
        """ISO date of an instant in the contract's time zone."""
        zone = self._zones.get(contract_id)
        if zone is None:
            zone = self._zones[contract_id] = self.registry.zone(contract_id)
        return self._dates.date_of(zone, ts_ms)

    def day_key(self, contract_id: str, facts: CallFacts) -> DayKey:
        return (contract_id, facts.line, self.local_date(contract_id, facts.arrival_ms))

    def _add(self, contract_id: str, facts: CallFacts, sign: int) -> DayKey:
        key = self.day_key(contract_id, facts)
        counts = self._days.get(key)
        if counts is None:
            counts = self._days[key] = [0] * N_COUNTS
        add_into(counts, facts, sign)
        if counts[0] == 0:
            # A day left with no calls (its only call moved to another day) has no row.
            del self._days[key]
        return key

    def day_counts(self) -> dict[DayKey, list[int]]:
        """Current counts per day; in deferred mode computed now from the per-call state."""
        if self.incremental:
            return self._days
        # Every change to a call comes with a new event id, so the id count dates the cache.
        if self._days_version == len(self._seen_ids):
            return self._days
        days: dict[DayKey, list[int]] = {}
        for (contract_id, _call_id), state in self._calls.items():
            key = self.day_key(contract_id, facts := state.facts())
            counts = days.get(key)
            if counts is None:
                counts = days[key] = [0] * N_COUNTS
            add_into(counts, facts)
        self._days, self._days_version = days, len(self._seen_ids)
        return days

    def rows(self) -> list[DailyFigures]:
        """Daily figures sorted by contract, line and date."""
        registry = self.registry
        return [
            DailyFigures.from_counts(key, registry.parent_org(key[0]), counts)
            for key, counts in sorted(self.day_counts().items())
        ]

    # -- introspection -------------------------------------------------------------------------

    def sync_stats(self) -> EngineStats:
        """Stats with derived counters brought up to date (kept off the per-event path)."""
        self.stats.accepted = len(self._seen_ids)
        return self.stats

    @property
    def calls_tracked(self) -> int:
        return len(self._calls)

    @property
    def clock_skew_calls(self) -> int:
        """Calls answered before their hold started (negative hold, clamped to 0)."""
        return sum(counts[CLOCK_SKEW] for counts in self.day_counts().values())

    def call_state(self, contract_id: str, call_id: str) -> CallState | None:
        return self._calls.get((contract_id, call_id))

    def minute_buckets(self) -> dict[SeriesKey, dict[int, list[int]]]:
        """Per-minute counts of every (contract, line) that outage detection reads (received,
        requested, queue outcome, answered, answered within the hold limit, disconnected, and
        disconnected by arrival), attributed as the stream's rolling windows attribute them,
        without their 24-hour horizon. Spelled out from the call state: this runs once per
        call in every replay."""
        out: dict[SeriesKey, dict[int, list[int]]] = {}
        width = N_WINDOW_COUNTS
        for (contract_id, _call_id), state in self._calls.items():
            received, queued, answered, abandoned, disconnected, ended = state.earliest[:6]
            if received != NEVER:
                arrival, line = received, state.received_line
            else:
                arrival, line = state.any_ms, state.any_line
            series = out.get((contract_id, line))
            if series is None:
                series = out[(contract_id, line)] = {}
            minute = arrival // MINUTE_MS
            bucket = series.get(minute)
            if bucket is None:
                bucket = series[minute] = [0] * width
            bucket[W_RECEIVED] += 1
            if disconnected != NEVER:
                bucket[W_RECEIVED_DISCONNECTED] += 1
                minute = disconnected // MINUTE_MS
                bucket = series.get(minute)
                if bucket is None:
                    bucket = series[minute] = [0] * width
                bucket[W_DISCONNECTED] += 1
            requested = queued if queued != NEVER else answered
            if requested == NEVER:
                continue
            minute = requested // MINUTE_MS
            bucket = series.get(minute)
            if bucket is None:
                bucket = series[minute] = [0] * width
            bucket[W_REQUESTED] += 1
            if answered != NEVER:
                minute = answered // MINUTE_MS
                bucket = series.get(minute)
                if bucket is None:
                    bucket = series[minute] = [0] * width
                bucket[W_QUEUED] += 1
                bucket[W_ANSWERED] += 1
                hold_start = queued if queued != NEVER else arrival
                if answered - hold_start <= HOLD_LIMIT_MS:  # a negative hold counts as 0
                    bucket[W_ANSWERED_IN_HOLD_LIMIT] += 1
            else:
                outcome = min(abandoned, disconnected, ended)
                if outcome != NEVER:
                    minute = outcome // MINUTE_MS
                    bucket = series.get(minute)
                    if bucket is None:
                        bucket = series[minute] = [0] * width
                    bucket[W_QUEUED] += 1
        return out
