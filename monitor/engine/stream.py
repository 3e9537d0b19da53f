"""The stream engine: the incremental engine plus what a live feed needs.

One instance per Kafka partition (a contract's calls all live on one partition). On top of the
daily figures it keeps, all in event time:

* the **watermark** (the newest event time seen) and the **lateness horizon**: an event older
  than ``watermark - lateness`` is refused as ``too_late`` (replay it with ``monitor report``);
* rolling windows (:mod:`monitor.engine.windows`) and the **live queue** (calls waiting now);
* cumulative totals and a hold-time histogram per (contract, line), for Prometheus counters;
* expiry: call state idle for the lateness horizon is dropped, event ids are remembered for the
  de-duplication horizon;
* outages and their 72-hour clock (:mod:`monitor.engine.outages`), evaluated minute by minute
  from the rolling windows' buckets as the watermark advances;
* change tracking, so a worker can persist exactly what a batch changed, and a loader that
  rebuilds the whole state from those records after a restart or a rebalance.

Nothing here reads the wall clock except the guard against timestamps absurdly far in the
future, which would otherwise drag the watermark ahead and make every real event "late".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any

import msgspec

from monitor.engine.aggregates import DayKey, add_into
from monitor.engine.calls import CallFacts, CallState
from monitor.engine.engine import CallKey, ComplianceEngine
from monitor.engine.events import CallEvent
from monitor.engine.expired import ExpiredFigures
from monitor.engine.outages import OutageRules, OutageTracker
from monitor.engine.registry import ContractRegistry
from monitor.engine.totals import add_totals, new_totals
from monitor.engine.windows import (
    MINUTE_MS,
    WINDOW_MINUTES,
    Item,
    RollingWindows,
    SeriesKey,
    call_contribution,
)

HOUR_MS = 3_600_000
DEFAULT_LATENESS_MS = 6 * HOUR_MS
DEFAULT_DEDUP_HORIZON_MS = 24 * HOUR_MS
DEFAULT_MAX_FUTURE_MS = 24 * HOUR_MS

_NO_MINUTE = 1 << 62  # later than any minute
_EXPIRY_EVERY_MS = 30 * MINUTE_MS  # state lives up to 30 min past the horizon
DELTAS_PER_BASE = 48  # a contract's expired figures are rewritten whole once a day at most


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    TOO_LATE = "too_late"
    FUTURE = "future_timestamp"


class StreamCallState(CallState):
    """Call state plus what streaming needs: last activity (expiry) and the call's event ids
    (persisted with the call, they rebuild the de-duplication index after a restart)."""

    __slots__ = ("day", "event_ids", "generation", "items", "latest_ms", "shown", "slot", "waiting")

    def __init__(self) -> None:
        super().__init__()
        self.latest_ms = 0
        self.event_ids: list[str] = []
        self.slot = 0  # the 30-minute slot of the call's first event
        self.generation = 0  # the generation record holding its live copy (0: none yet)
        # What the call contributes now (None until it first does): its facts, the day they
        # count in, its window items and since when it waits in the live queue. Kept so that
        # an event computes only the call's new contribution, not the old one a second time.
        self.shown: CallFacts | None = None
        self.day: DayKey | None = None
        self.items: list[Item] = []
        self.waiting: int | None = None

    def encode(self) -> list[Any]:
        return [self.earliest, self.received_line, self.any_ms, self.any_line, self.latest_ms,
                self.event_ids]  # fmt: skip

    @classmethod
    def decode(cls, record: list[Any]) -> StreamCallState:
        state = cls()
        earliest, state.received_line, state.any_ms, state.any_line, state.latest_ms, ids = record
        state.earliest = list(earliest)
        state.event_ids = list(ids)
        return state


SlotKey = tuple[str, int]  # (contract_id, slot number)
SLOT_MS = 30 * MINUTE_MS  # the expiry step: one slot record per contract changes per step
_GEN_CHUNK = 2_000  # calls per generation record: ~200 KiB, well under Kafka's 1 MiB
META_KEY = "#meta"  # the partition's own record (watermark, counters)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()


def _encode(value: Any) -> bytes:
    return _encoder.encode(value)


def _decode(raw: bytes) -> Any:
    return _decoder.decode(raw)


class _Slot:
    """The calls first seen in one 30-minute slot, and ids of expired calls and status events
    kept for de-duplication until the slot passes the de-duplication horizon."""

    __slots__ = ("calls", "retired")

    def __init__(self) -> None:
        self.calls: set[str] = set()
        self.retired: list[str] = []


class StreamEngine(ComplianceEngine):
    """Per-partition streaming state; see the module documentation."""

    def __init__(
        self,
        registry: ContractRegistry | None = None,
        *,
        lateness_ms: int = DEFAULT_LATENESS_MS,
        dedup_horizon_ms: int = DEFAULT_DEDUP_HORIZON_MS,
        max_future_ms: int | None = DEFAULT_MAX_FUTURE_MS,
        wall_clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        outage_rules: OutageRules | None = None,
        deltas_per_base: int = DELTAS_PER_BASE,
    ) -> None:
        super().__init__(registry, incremental=True)
        self.deltas_per_base = max(1, deltas_per_base)
        self.outages = OutageTracker(self.registry, outage_rules)
        self._outage_through = -1
        self._outage_due_ms = -(1 << 62)  # evaluate at the first event
        self.lateness_ms = lateness_ms
        self.dedup_horizon_ms = max(dedup_horizon_ms, lateness_ms)
        self.max_future_ms = max_future_ms
        self._wall_clock_ms = wall_clock_ms
        self._future_limit_ms = -(1 << 62)  # the last wall-clock limit read
        self.watermark_ms: int | None = None
        self.windows = RollingWindows()
        # Live queue: (contract, line) -> {call key: waiting since}.
        self.queue: dict[SeriesKey, dict[CallKey, int]] = {}
        # Cumulative day counts per (contract, line) and hold histogram (+ sum in ms, count).
        self.totals: dict[SeriesKey, list[int]] = {}
        self.late_events = 0
        self.future_events = 0
        # Expiry runs when the watermark enters a new 30-minute step, with cut-offs taken from
        # the step: the same events give the same expiries, across restarts and replays.
        self._expired_step = 0
        # Calls are grouped into 30-minute slots by the time they were first seen; a slot keeps
        # the ids of its expired calls for de-duplication until it passes the horizon.
        self._slots: dict[SlotKey, _Slot] = {}
        self._dirty_slots: set[SlotKey] = set()
        # Call states are persisted in generation records, log-structured: each drain writes
        # one record per partition (in chunks) holding only the calls changed since the last
        # drain, so the bytes written follow the changes, not the size of the state (and a
        # table write costs ~65 µs, so records are few). A call's latest copy
        # wins; a generation whose live calls fall under half of its copies is compacted (its
        # live calls move to the new generation and the old record is deleted).
        self._dirty_calls: set[CallKey] = set()
        self._generation = 0
        self._gen_live: dict[int, set[CallKey]] = {}  # generation -> calls whose copy is live
        self._gen_copies: dict[int, int] = {}  # call copies the record holds
        self._gens_shrunk: set[int] = set()
        # Calls that changed and then expired before a drain: their last state is written
        # once more (as a dead copy), so a crash before the expired figures land still finds it.
        self._final_copies: dict[CallKey, list[Any]] = {}
        # The figures are not persisted as such: a restore derives them from the live calls
        # plus, per contract, what its expired calls had contributed. A call's record is thus
        # the only place its contribution is kept, and a crash between two records cannot
        # count a call twice or lose it: the live calls are authoritative.
        # The expired contributions are written as one delta record per contract and drain
        # (what expired since the last one, a few dozen minutes of buckets), and every
        # ``deltas_per_base`` deltas as one base record holding them all; the deltas a base
        # holds are deleted after it. Rewriting everything at each expiry would write a day of
        # window buckets per contract every 30 minutes of event time.
        self._expired: dict[str, ExpiredFigures] = {}  # contract -> all expired so far
        self._expired_new: dict[str, ExpiredFigures] = {}  # contract -> since the last drain
        self._delta_seqs: dict[str, list[int]] = {}  # contract -> its deltas since its base
        self._stale_deltas: list[str] = []  # delta records found inside a base on restore

    # -- input -------------------------------------------------------------------------------

    def process(self, event: CallEvent) -> Outcome:
        """Apply one valid event in event time; say what became of it."""
        ts = event.ts_ms
        if ts > self._future_limit_ms and self.max_future_ms is not None:
            # The wall clock only moves on: an event under an earlier limit is under today's
            # too, so it is read again only for an event past the last limit read.
            self._future_limit_ms = self._wall_clock_ms() + self.max_future_ms
            if ts > self._future_limit_ms:
                self.future_events += 1
                return Outcome.FUTURE
        if event.event_id in self._seen_ids:
            self.stats.duplicates += 1
            return Outcome.DUPLICATE
        wm = self.watermark_ms
        if wm is not None and ts < wm - self.lateness_ms:
            self.late_events += 1
            return Outcome.TOO_LATE
        advanced = wm is None or ts > wm
        if advanced:
            self.watermark_ms = ts
            windows_minute = self.windows.watermark_minute
            if windows_minute is None or ts // MINUTE_MS > windows_minute:
                self.windows.advance(ts // MINUTE_MS)
        self.apply(event)
        if advanced:
            if ts // _EXPIRY_EVERY_MS > self._expired_step:
                self.expire()
            if ts >= self._outage_due_ms:
                self.advance_outages()
        return Outcome.ACCEPTED

    def advance_outages(self) -> None:
        """Evaluate the outage minutes the watermark has passed by the grace."""
        through = self.outages.through_for(self.watermark_ms)
        if through is not None and through > self._outage_through:
            self._outage_through = through
            self.outages.advance(through, self.windows.buckets)
            # The watermark at which the next minute may be evaluated.
            self._outage_due_ms = (through + 2) * MINUTE_MS + self.outages.rules.grace_ms

    # -- folding -------------------------------------------------------------------------------

    def apply(self, event: CallEvent) -> bool:
        """The base engine's fold for a stream, written out in one piece because it runs once
        per event (the base's hooks would cost a call each): also remembers the call's event
        ids and last activity, files new calls in their slot, and marks the call changed."""
        event_id = event.event_id
        seen = self._seen_ids
        if event_id in seen:
            self.stats.duplicates += 1
            return False
        seen.add(event_id)
        ts = event.ts_ms
        if ts > self.latest_ms:  # noqa: PLR1730 (max() costs a call per event)
            self.latest_ms = ts
        contract_id, call_id = event.contract_id, event.call_id
        if call_id is None:
            # Status events carry no call figures; outages consume them, their ids are kept.
            self.stats.status_events += 1
            self.outages.on_status(event)
            self._slot(contract_id, ts // SLOT_MS).retired.append(event_id)
            return True
        key = (contract_id, call_id)
        state: StreamCallState | None = self._calls.get(key)  # type: ignore[assignment]
        if state is None:
            state = StreamCallState()
            self._calls[key] = state
            slot = state.slot = ts // SLOT_MS
            self._slot(contract_id, slot, dirty=False).calls.add(call_id)
        state.event_ids.append(event_id)
        if ts > state.latest_ms:  # noqa: PLR1730
            state.latest_ms = ts
        self._dirty_calls.add(key)
        if state.observe(event.type, ts, event.line):
            self._on_change(key, state)
        return True

    def _slot(self, contract_id: str, slot: int, *, dirty: bool = True) -> _Slot:
        """The slot's record; ``dirty`` when its retired ids are about to change."""
        key = (contract_id, slot)
        found = self._slots.get(key)
        if found is None:
            found = self._slots[key] = _Slot()
        if dirty:
            self._dirty_slots.add(key)
        return found

    def _on_change(self, key: CallKey, state: CallState, before: Any = None) -> None:
        # Most events change one fact of one call: move only what differs (same day, same
        # minute buckets) instead of retracting and re-adding the call's whole contribution.
        assert isinstance(state, StreamCallState)
        contract_id = key[0]
        old_facts = state.shown
        new_facts = state.facts()
        if new_facts != old_facts:
            if (
                old_facts is not None
                and old_facts.arrival_ms == new_facts.arrival_ms
                and old_facts.line == new_facts.line
            ):
                self._shift(contract_id, state.day, old_facts, new_facts)  # type: ignore[arg-type]
            else:
                if old_facts is not None:
                    self._add(contract_id, old_facts, -1)
                state.day = self._add(contract_id, new_facts, 1)
            state.shown = new_facts
        old_line = None if old_facts is None else old_facts.line
        new_items, new_waiting = call_contribution(state, new_facts)
        old_items, old_waiting = state.items, state.waiting
        line = new_facts.line
        if line == old_line:
            if new_items == old_items and new_waiting == old_waiting:
                return
            series = (contract_id, line)
            removed = [item for item in old_items if item not in new_items]
            added = [item for item in new_items if item not in old_items]
            earliest = self.windows.add_many(series, removed, -1) if removed else _NO_MINUTE
            if added:
                earliest = min(earliest, self.windows.add_many(series, added, 1))
            if old_waiting != new_waiting:
                self._queue_update(series, key, old_waiting, -1)
                self._queue_update(series, key, new_waiting, 1)
        else:
            earliest = _NO_MINUTE
            if old_line is not None:
                earliest = self._add_window(key, old_line, old_items, old_waiting, -1)
            earliest = min(earliest, self._add_window(key, line, new_items, new_waiting, 1))
        state.items, state.waiting = new_items, new_waiting
        if earliest <= self._outage_through:
            # A count of a minute the outage evaluation has passed changed: the contract's
            # outage record must be rewritten (a restore re-evaluates from it; see
            # OutageTracker.dirty).
            self.outages.dirty.add(contract_id)

    def _shift(self, contract_id: str, day: DayKey, old: CallFacts, new: CallFacts) -> None:
        """Same day, same line: swap the call's old counts for its new ones in place."""
        counts = self._days[day]
        add_into(counts, old, -1)
        add_into(counts, new, 1)
        totals = self.totals[(contract_id, new.line)]
        add_totals(totals, old, -1)
        add_totals(totals, new, 1)

    def _add(self, contract_id: str, facts: CallFacts, sign: int) -> DayKey:
        day = super()._add(contract_id, facts, sign)
        series = (contract_id, facts.line)
        totals = self.totals.get(series)
        if totals is None:
            totals = self.totals[series] = new_totals()
        add_totals(totals, facts, sign)
        if sign < 0 and not any(totals):
            # The line's only calls moved to another line: no series, as after a restore.
            del self.totals[series]
        return day

    def _add_window(
        self, key: CallKey, line: str, items: list[Item], waiting: int | None, sign: int
    ) -> int:
        """Add or retract a call's window items and its place in the live queue; return the
        earliest minute of the items."""
        series = (key[0], line)
        self._queue_update(series, key, waiting, sign)
        return self.windows.add_many(series, items, sign)

    def _queue_update(
        self, series: SeriesKey, key: CallKey, waiting_since: int | None, sign: int
    ) -> None:
        if waiting_since is None:
            return
        if sign > 0:
            waiting = self.queue.get(series)
            if waiting is None:
                waiting = self.queue[series] = {}
            waiting[key] = waiting_since
        else:
            self._unqueue(series, key)

    # -- expiry --------------------------------------------------------------------------------

    def expire(self) -> None:
        """Drop call state idle past the lateness horizon and ids past the dedup horizon."""
        if self.watermark_ms is None:
            return
        self._expired_step = self.watermark_ms // _EXPIRY_EVERY_MS
        wm = self._expired_step * _EXPIRY_EVERY_MS
        call_cutoff = wm - self.lateness_ms
        # A call's slot is the time of its first event, no later than its latest: only calls
        # of slots that began before the cut-off can be idle (long calls are looked at again).
        last_slot = (call_cutoff - 1) // SLOT_MS
        calls, dirty = self._calls, self._dirty_calls
        candidates = sorted(k for k, v in self._slots.items() if k[1] <= last_slot and v.calls)
        for slot_key in candidates:
            contract_id, slot_number = slot_key
            slot = self._slots[slot_key]
            idle = sorted(
                call_id
                for call_id in slot.calls
                if calls[(contract_id, call_id)].latest_ms < call_cutoff  # type: ignore[attr-defined]
            )
            if not idle:
                continue
            self._dirty_slots.add(slot_key)
            delta = self._expired_new.get(contract_id)
            if delta is None:
                delta = self._expired_new[contract_id] = ExpiredFigures()
            delta.step = self._expired_step
            for call_id in idle:
                key = (contract_id, call_id)
                state: StreamCallState = calls.pop(key)  # type: ignore[assignment]
                slot.calls.discard(call_id)
                slot.retired.extend(state.event_ids)
                if key in dirty:
                    self._final_copies[key] = [slot_number, state.encode()]
                generation = state.generation
                if generation:
                    self._gen_live[generation].discard(key)
                    self._gens_shrunk.add(generation)
                facts = state.shown
                if facts is not None and state.day is not None:
                    if state.waiting is not None:
                        # A call that never got an outcome leaves the live queue with it.
                        self._unqueue((contract_id, facts.line), key)
                    # Its contribution stays, in the contract's expired figures.
                    delta.fold(facts, state.day[2], state.items)
        id_cutoff_slot = (wm - self.dedup_horizon_ms) // SLOT_MS
        for slot_key in [
            k for k, v in self._slots.items() if k[1] < id_cutoff_slot and not v.calls
        ]:
            self._seen_ids.difference_update(self._slots.pop(slot_key).retired)
            self._dirty_slots.add(slot_key)

    def _unqueue(self, series: SeriesKey, key: CallKey) -> None:
        waiting = self.queue.get(series)
        if waiting is not None:
            waiting.pop(key, None)
            if not waiting:
                del self.queue[series]

    # -- persistence ---------------------------------------------------------------------------

    def drain_changes(self) -> dict[str, bytes | None]:
        """Records changed since the last call (None = delete). Keys start with the contract
        id, so a partitioner can route them.

        The order is what makes a crash in the middle of writing them harmless (each step
        assumes the ones before it landed): changed calls; then the outage state of the contracts
        whose minutes were evaluated (one record each, complete in itself: its evaluated minute,
        open outage, milestones and history); then the expired figures of the contracts whose
        calls expired; then the slots' retired ids (a call's ids may only be
        forgotten as a call once its contribution is safe in the expired figures); then the
        superseded call records; then the partition's own record.
        """
        out: dict[str, bytes | None] = {}
        deleted = self._drain_calls(out)
        for contract_id in self.outages.drain_dirty():
            out[f"{contract_id}|o"] = _encode(self.outages.contract_record(contract_id))
        for contract_id, delta in self._expired_new.items():
            self._write_expired(contract_id, delta, out, deleted)
        self._expired_new.clear()
        deleted += self._stale_deltas
        self._stale_deltas = []
        for contract_id, slot in self._dirty_slots:
            found = self._slots.get((contract_id, slot))
            out[f"{contract_id}|c|{slot}"] = (
                None if found is None else _encode({"retired": found.retired})
            )
        # Superseded call records go last: a worker killed in between leaves an extra copy
        # (the newest wins on load), never a lost call.
        for key in deleted:
            out[key] = None
        out[META_KEY] = _encode({
            "watermark_ms": self.watermark_ms,
            "generation": self._generation,
            "late_events": self.late_events,
            "future_events": self.future_events,
        })  # fmt: skip
        self._dirty_slots.clear()
        return out

    def _drain_calls(self, out: dict[str, bytes | None]) -> list[str]:
        """Write the partition's changed calls as new generation records; compact.

        One record per batch (in chunks of at most ``_GEN_CHUNK`` calls), whatever the number
        of contracts: each record is a changelog message a restart reads back. Returns the keys
        of the generation records to delete, for the caller to write last.
        """
        changed: set[CallKey] = set()
        shrunk, self._gens_shrunk = self._gens_shrunk, set()
        calls = self._calls
        for key in self._dirty_calls:
            state: StreamCallState | None = calls.get(key)  # type: ignore[assignment]
            if state is None:  # expired meanwhile: expiry already left its generation
                continue
            changed.add(key)
            old = state.generation
            if old:
                self._gen_live[old].discard(key)
                shrunk.add(old)
        self._dirty_calls.clear()
        deleted: list[str] = []
        for generation in shrunk:
            live = self._gen_live.get(generation)
            if live is None:
                continue
            if live and len(live) * 2 < self._gen_copies[generation]:
                changed.update(live)  # compaction
                live.clear()
            if not live:
                del self._gen_live[generation], self._gen_copies[generation]
                deleted.append(f"#g|{generation}")
        # Last states of calls that expired unsaved go first, as dead copies (a live copy
        # written after them wins on load), in records the next drain deletes.
        finals = [[key[0], key[1], *copy] for key, copy in self._final_copies.items()]
        self._final_copies.clear()
        for start in range(0, len(finals), _GEN_CHUNK):
            self._generation += 1
            record = finals[start : start + _GEN_CHUNK]
            self._gen_live[self._generation] = set()
            self._gen_copies[self._generation] = len(record)
            self._gens_shrunk.add(self._generation)
            out[f"#g|{self._generation}"] = _encode(record)
        keys = sorted(changed)
        for start in range(0, len(keys), _GEN_CHUNK):
            chunk = keys[start : start + _GEN_CHUNK]
            self._generation += 1
            generation = self._generation
            copies: list[list[Any]] = []
            for key in chunk:
                state = calls[key]  # type: ignore[assignment]
                assert state is not None
                state.generation = generation
                copies.append([key[0], key[1], state.slot, state.encode()])
            self._gen_live[generation] = set(chunk)
            self._gen_copies[generation] = len(chunk)
            out[f"#g|{generation}"] = _encode(copies)
        return deleted

    def _write_expired(
        self,
        contract_id: str,
        delta: ExpiredFigures,
        out: dict[str, bytes | None],
        deleted: list[str],
    ) -> None:
        """The contract's delta record or, every ``deltas_per_base`` deltas, its base record."""
        whole = self._expired.get(contract_id)
        if whole is None:
            whole = self._expired[contract_id] = ExpiredFigures()
        whole.merge(delta)
        seqs = self._delta_seqs.setdefault(contract_id, [])
        # Window minutes no window reaches any more are dropped here, when they are written.
        reach = (
            None
            if self.watermark_ms is None
            else self.watermark_ms // MINUTE_MS - max(WINDOW_MINUTES)
        )
        self._generation += 1  # delta records take their numbers from the generation counter
        if len(seqs) + 1 >= self.deltas_per_base:
            if reach is not None:
                whole.prune(reach)
            out[f"{contract_id}|x"] = _encode(whole.record(through=self._generation))
            deleted.extend(f"{contract_id}|x|{seq}" for seq in seqs)
            seqs.clear()
        else:
            if reach is not None:
                delta.prune(reach)
            out[f"{contract_id}|x|{self._generation}"] = _encode(delta.record())
            seqs.append(self._generation)

    def load_records(self, records: Iterable[tuple[str, bytes]]) -> None:
        """Rebuild state from persisted records (the latest value of each key)."""
        generations: list[tuple[int, list[list[Any]]]] = []
        expired_records: dict[str, list[tuple[int | None, dict[str, Any]]]] = {}
        for key, raw in records:
            value = _decode(raw)
            if key == META_KEY:
                self.watermark_ms = value["watermark_ms"]
                self._generation = value.get("generation", 0)
                self.late_events = value["late_events"]
                self.future_events = value["future_events"]
                continue
            if key.startswith("#g|"):
                generations.append((int(key[3:]), value))
                continue
            contract_id, kind, *rest = key.split("|")
            if kind == "c":
                slot = self._slot(contract_id, int(rest[0]), dirty=False)
                slot.retired = list(value["retired"])
                self._seen_ids.update(slot.retired)
            elif kind == "x":
                expired_records.setdefault(contract_id, []).append(
                    (int(rest[0]) if rest else None, value)
                )
            elif kind == "o":
                self.outages.load_contract(contract_id, value)
        self._expired_step = (self.watermark_ms or 0) // _EXPIRY_EVERY_MS
        for contract_id, found in expired_records.items():
            self._load_expired(contract_id, found)
        self._load_generations(generations)
        # The partition's record is written last: after a crash mid-write the calls may be
        # newer. The watermark is the newest event time seen, and calls carry theirs.
        # Expired figures are complete to a step the watermark had reached.
        candidates = [state.latest_ms for state in self._calls.values()]  # type: ignore[attr-defined]
        candidates += [figures.step * _EXPIRY_EVERY_MS for figures in self._expired.values()]
        if self.watermark_ms is not None:
            candidates.append(self.watermark_ms)
        self.watermark_ms = max(candidates, default=None)
        self._derive_figures()
        if self.watermark_ms is not None and (
            self.watermark_ms // _EXPIRY_EVERY_MS > self._expired_step
        ):
            self.expire()  # the step the lost partition record would have recorded

    def _load_expired(
        self, contract_id: str, found: list[tuple[int | None, dict[str, Any]]]
    ) -> None:
        """A contract's base record (sequence None) and delta records: the base plus the
        deltas written after it (a crash may have left deltas the base already holds)."""
        base = next((value for seq, value in found if seq is None), None)
        through = 0 if base is None else base["through"]
        whole = ExpiredFigures() if base is None else ExpiredFigures.from_record(base)
        deltas = sorted((seq, value) for seq, value in found if seq is not None)
        seqs: list[int] = []
        for seq, value in deltas:
            if seq <= through:
                self._stale_deltas.append(f"{contract_id}|x|{seq}")
            else:
                whole.merge(ExpiredFigures.from_record(value))
                seqs.append(seq)
            self._generation = max(self._generation, seq)
        self._generation = max(self._generation, through)
        self._expired[contract_id] = whole
        self._delta_seqs[contract_id] = seqs

    def _load_generations(self, generations: list[tuple[int, list[list[Any]]]]) -> None:
        """Calls from generation records, oldest first so each call's latest copy wins."""
        generations.sort(key=lambda item: item[0])
        for generation, record in generations:
            self._generation = max(self._generation, generation)
            self._gen_copies[generation] = len(record)
            live = self._gen_live[generation] = set()
            for contract_id, call_id, slot_number, encoded in record:
                key = (contract_id, call_id)
                previous: StreamCallState | None = self._calls.get(key)  # type: ignore[assignment]
                if previous is not None:
                    self._gen_live[previous.generation].discard(key)
                live.add(key)
                copy = self._calls[key] = StreamCallState.decode(encoded)
                copy.generation, copy.slot = generation, slot_number
        for key, state in list(self._calls.items()):
            assert isinstance(state, StreamCallState)
            # A copy left by a call that expired is not a call: its contract's expired record
            # holds its contribution (expiry cut-offs follow the 30-minute step, so this is the
            # test expire() made) and its ids were retired into its slot.
            expired = self._expired.get(key[0])
            step = None if expired is None else expired.step
            if step is not None and state.latest_ms < step * _EXPIRY_EVERY_MS - self.lateness_ms:
                del self._calls[key]
                self._gen_live[state.generation].discard(key)
                continue
            self._slot(key[0], state.slot, dirty=False).calls.add(key[1])
            self._seen_ids.update(state.event_ids)
        # Records holding superseded copies get compacted or deleted by the next drain.
        self._gens_shrunk.update(
            generation
            for generation, live in self._gen_live.items()
            if len(live) < self._gen_copies[generation]
        )

    def _derive_figures(self) -> None:
        """Every figure = what expired calls contributed + what the live calls contribute."""
        for contract_id, expired in self._expired.items():
            for (line, date), counts in expired.days.items():
                self._days[(contract_id, line, date)] = list(counts)
            for line, totals in expired.totals.items():
                self.totals[(contract_id, line)] = list(totals)
            for line, buckets in expired.windows.items():
                for minute, counts in buckets.items():
                    self.windows.load_bucket((contract_id, line), minute, counts)
        for key, state in self._calls.items():
            assert isinstance(state, StreamCallState)
            state.shown = facts = state.facts()
            state.day = self._add(key[0], facts, 1)
            state.items, state.waiting = call_contribution(state, facts)
            self._add_window(key, facts.line, state.items, state.waiting, 1)
        self.windows.finish_load(
            None if self.watermark_ms is None else self.watermark_ms // MINUTE_MS
        )

    # -- reading -------------------------------------------------------------------------------

    def live_queue(self, series: SeriesKey) -> tuple[int, float]:
        """Calls waiting now and the oldest wait in seconds, at the watermark."""
        waiting = self.queue.get(series)
        if not waiting or self.watermark_ms is None:
            return 0, 0.0
        return len(waiting), max(0, self.watermark_ms - min(waiting.values())) / 1000.0

    def series(self) -> set[SeriesKey]:
        """Every (contract, line) with figures of any kind."""
        return set(self.totals) | set(self.windows.buckets) | set(self.queue)

    def contracts(self) -> set[str]:
        return {contract for contract, _ in self.series()}
