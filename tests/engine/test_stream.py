"""The stream engine: rolling windows, live queue, lateness, expiry and persistence."""

from __future__ import annotations

import random
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.engine import CallEvent, EventType
from monitor.engine.engine import ComplianceEngine
from monitor.engine.stream import Outcome, StreamEngine
from monitor.engine.windows import WINDOW_MINUTES

T0 = 1_767_621_600_000  # 2026-01-05T14:00:00Z
MIN = 60_000
CALL_TYPES = [t for t in EventType if not t.is_status]


def ev(n: int, call: str, kind: EventType, ts: int, contract: str = "H1234",
       line: str = "member_services") -> CallEvent:  # fmt: skip
    return CallEvent(f"e{n}", contract, call, kind, ts, line)


def brute_force_windows(
    events: list[CallEvent], watermark: int
) -> dict[tuple[str, str], list[list[int]]]:
    """Independent reference: group accepted events per call, attribute each fact by hand."""
    calls: dict[tuple[str, str], list[CallEvent]] = defaultdict(list)
    for e in events:
        if e.call_id is not None:
            calls[(e.contract_id, e.call_id)].append(e)
    out: dict[tuple[str, str], list[list[int]]] = {}
    wm_min = watermark // MIN
    for (contract, _), evs in calls.items():

        def first(kind: EventType, evs: list[CallEvent] = evs) -> CallEvent | None:
            found = [e for e in evs if e.type == kind]
            return min(found, key=lambda e: (e.ts_ms, e.line)) if found else None

        received = first(EventType.CALL_RECEIVED)
        arrival_event = received or min(evs, key=lambda e: (e.ts_ms, e.line))
        # Arrival-time ties go to the alphabetically first line, whatever the arrival order.
        line = arrival_event.line
        arrival = arrival_event.ts_ms
        queued, answered = first(EventType.QUEUED), first(EventType.ANSWERED)
        ends = [first(k) for k in (EventType.ABANDONED, EventType.DISCONNECTED, EventType.ENDED)]
        facts: list[tuple[int, int, int]] = [(arrival, 0, 1)]
        if queued or answered:
            hold_start = queued.ts_ms if queued else arrival
            facts.append(((queued or answered).ts_ms, 6, 1))  # type: ignore[union-attr]
            if answered:
                hold = max(0, answered.ts_ms - hold_start)
                facts += [(answered.ts_ms, 1, 1), (answered.ts_ms, 3, 1), (answered.ts_ms, 4, hold)]
                if hold <= 30_000:
                    facts.append((answered.ts_ms, 2, 1))
                if hold <= 120_000:
                    facts.append((answered.ts_ms, 7, 1))
            elif any(ends):
                facts.append((min(e.ts_ms for e in ends if e), 1, 1))
        disc = first(EventType.DISCONNECTED)
        if disc:
            facts += [(disc.ts_ms, 5, 1), (arrival, 8, 1)]
        sums = out.setdefault((contract, line), [[0] * 9 for _ in WINDOW_MINUTES])
        for ts, index, amount in facts:
            for position, size in enumerate(WINDOW_MINUTES):
                if wm_min - size < ts // MIN <= wm_min:
                    sums[position][index] += amount
    return out


def random_events(rng: random.Random, n_calls: int, span_ms: int) -> list[CallEvent]:
    events: list[CallEvent] = []
    n = 0
    for c in range(n_calls):
        contract = rng.choice(["H1234", "S5678"])
        line = rng.choice(["member_services", "pharmacy_help_desk"])
        start = T0 + rng.randrange(span_ms)
        for kind in rng.sample(CALL_TYPES, rng.randint(1, 6)):
            n += 1
            events.append(
                CallEvent(
                    f"e{n}",
                    contract,
                    f"c{c}",
                    kind,
                    start + rng.randrange(20 * MIN),
                    rng.choice([line, line, "prospective_enrollee"]),
                )
            )
            if rng.random() < 0.1:  # a duplicate id with other content
                events.append(CallEvent(f"e{n}", contract, f"c{c}", EventType.ANSWERED,
                                        start, line))  # fmt: skip
    rng.shuffle(events)
    return events


def nonzero(d: dict[tuple[str, str], list[list[int]]]) -> dict[tuple[str, str], list[list[int]]]:
    return {k: v for k, v in d.items() if any(any(row) for row in v)}


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n_calls=st.integers(1, 40), hours=st.integers(1, 30))
def test_window_sums_equal_brute_force_after_every_event(
    seed: int, n_calls: int, hours: int
) -> None:
    rng = random.Random(seed)
    events = random_events(rng, n_calls, hours * 60 * MIN)
    engine = StreamEngine(lateness_ms=100 * 60 * MIN, max_future_ms=None)
    accepted: list[CallEvent] = []
    check_at = set(rng.sample(range(len(events)), min(8, len(events)))) | {len(events) - 1}
    for i, event in enumerate(events):
        if engine.process(event) is Outcome.ACCEPTED:
            accepted.append(event)
        if i in check_at:
            assert engine.watermark_ms is not None
            expected = nonzero(brute_force_windows(accepted, engine.watermark_ms))
            actual = nonzero({s: engine.windows.window_counts(s) for s in engine.windows.sums})
            assert actual == expected


OUTAGE_INDEXES = (0, 1, 3, 5, 6, 7, 8)  # what outage detection reads (windows.W_*)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n_calls=st.integers(1, 40), hours=st.integers(1, 20))
def test_replay_minute_buckets_equal_the_stream_buckets(
    seed: int, n_calls: int, hours: int
) -> None:
    """``monitor report`` derives outages from minute counts built from the calls' final
    state; the stream reads its rolling windows' buckets: the same counts, index by index."""
    events = random_events(random.Random(seed), n_calls, hours * 60 * MIN)
    stream = StreamEngine(lateness_ms=100 * 60 * MIN, max_future_ms=None)
    replay = ComplianceEngine(incremental=False)
    for event in events:
        stream.process(event)
        replay.apply(event)

    def picked(buckets: dict[tuple[str, str], dict[int, list[int]]]) -> dict[object, list[int]]:
        out: dict[object, list[int]] = {}
        for series, minutes in buckets.items():
            for minute, counts in minutes.items():
                values = [counts[i] for i in OUTAGE_INDEXES]
                if any(values):
                    out[(series, minute)] = values
        return out

    assert picked(replay.minute_buckets()) == picked(stream.windows.buckets)


def test_too_late_events_are_refused_and_counted() -> None:
    engine = StreamEngine(lateness_ms=60 * MIN, max_future_ms=None)
    assert engine.process(ev(1, "a", EventType.CALL_RECEIVED, T0 + 120 * MIN)) is Outcome.ACCEPTED
    assert engine.process(ev(2, "b", EventType.CALL_RECEIVED, T0 + 59 * MIN)) is Outcome.TOO_LATE
    assert engine.process(ev(3, "c", EventType.CALL_RECEIVED, T0 + 60 * MIN)) is Outcome.ACCEPTED
    assert engine.process(ev(1, "a", EventType.CALL_RECEIVED, T0)) is Outcome.DUPLICATE
    assert engine.late_events == 1
    assert engine.stats.duplicates == 1


def test_future_timestamps_do_not_drag_the_watermark() -> None:
    engine = StreamEngine(max_future_ms=24 * 60 * MIN, wall_clock_ms=lambda: T0)
    assert engine.process(ev(1, "a", EventType.CALL_RECEIVED, T0 + 25 * 60 * MIN)) is Outcome.FUTURE
    assert engine.watermark_ms is None
    assert engine.process(ev(2, "a", EventType.CALL_RECEIVED, T0)) is Outcome.ACCEPTED
    assert engine.watermark_ms == T0


def test_live_queue_counts_waiting_calls_and_oldest_wait() -> None:
    engine = StreamEngine(max_future_ms=None)
    engine.process(ev(1, "a", EventType.QUEUED, T0))
    engine.process(ev(2, "b", EventType.QUEUED, T0 + 30_000))
    engine.process(ev(3, "c", EventType.QUEUED, T0 + 90_000))
    engine.process(ev(4, "b", EventType.ANSWERED, T0 + 100_000))
    waiting, oldest = engine.live_queue(("H1234", "member_services"))
    assert waiting == 2  # a and c; b was answered
    assert oldest == 100.0  # watermark T0+100 s minus a's queued time T0
    engine.process(ev(5, "a", EventType.ABANDONED, T0 + 110_000))
    assert engine.live_queue(("H1234", "member_services")) == (1, 20.0)


def test_idle_calls_expire_and_their_ids_are_still_duplicates() -> None:
    engine = StreamEngine(lateness_ms=60 * MIN, dedup_horizon_ms=180 * MIN, max_future_ms=None)
    engine.process(ev(1, "a", EventType.QUEUED, T0))
    engine.process(
        ev(2, "b", EventType.CALL_RECEIVED, T0 + 90 * MIN)
    )  # expiry runs in 30-minute steps
    engine.expire()
    assert engine.call_state("H1234", "a") is None
    assert engine.live_queue(("H1234", "member_services"))[0] == 0
    assert engine.process(ev(1, "a", EventType.QUEUED, T0 + 90 * MIN)) is Outcome.DUPLICATE
    # Ids are kept per 30-minute slot of the call's first event (T0 starts a slot): once the
    # whole slot is past the horizon, they are forgotten.
    # Expiry cut-offs come from the 30-minute step of the watermark (T0+180 min here).
    engine.process(ev(3, "z", EventType.CALL_RECEIVED, T0 + 209 * MIN))
    engine.expire()
    assert engine.process(ev(1, "a2", EventType.QUEUED, T0 + 209 * MIN)) is Outcome.DUPLICATE
    engine.process(ev(4, "y", EventType.CALL_RECEIVED, T0 + 211 * MIN))
    engine.expire()
    assert engine.process(ev(1, "a3", EventType.QUEUED, T0 + 211 * MIN)) is Outcome.ACCEPTED


def merge(into: dict[str, bytes], changes: dict[str, bytes | None]) -> None:
    """What a compacted changelog keeps: the latest value of each key, deletions dropped."""
    for key, value in changes.items():
        if value is None:
            into.pop(key, None)
        else:
            into[key] = value


def test_restored_engine_equals_uninterrupted_one() -> None:
    rng = random.Random(5)
    events = random_events(rng, 80, 10 * 60 * MIN)
    events.sort(key=lambda e: e.ts_ms)
    uninterrupted = StreamEngine(lateness_ms=120 * MIN, max_future_ms=None)
    persisted: dict[str, bytes] = {}
    first = StreamEngine(lateness_ms=120 * MIN, max_future_ms=None)
    half = len(events) // 2
    for i, event in enumerate(events):
        uninterrupted.process(event)
        if i < half:
            first.process(event)
            if i % 17 == 0:
                merge(persisted, first.drain_changes())
    merge(persisted, first.drain_changes())
    restored = StreamEngine(lateness_ms=120 * MIN, max_future_ms=None)
    restored.load_records(persisted.items())
    for event in events[half - 40 :]:  # replays some already-processed events, as Kafka would
        restored.process(event)
    assert restored.rows() == uninterrupted.rows()
    assert restored.totals == uninterrupted.totals
    assert restored.watermark_ms == uninterrupted.watermark_ms
    for series in uninterrupted.windows.sums:
        assert restored.windows.window_counts(series) == uninterrupted.windows.window_counts(series)
    assert restored.queue == uninterrupted.queue


def persisted_state(engine: StreamEngine) -> tuple[object, ...]:
    """Everything a restore must bring back, in comparable form."""
    calls = {key: state.encode() for key, state in engine._calls.items()}  # type: ignore[attr-defined]
    windows = {s: engine.windows.window_counts(s) for s in engine.windows.sums}
    return (engine.rows(), engine.totals, engine.watermark_ms, nonzero_windows(windows),
            engine.queue, engine._seen_ids, calls)  # fmt: skip


def nonzero_windows(windows: dict[tuple[str, str], object]) -> dict[tuple[str, str], object]:
    return {k: v for k, v in windows.items() if any(any(row) for row in v)}  # type: ignore[attr-defined]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_calls=st.integers(1, 60),
    hours=st.integers(1, 20),
    drain_every=st.integers(1, 30),
    restarts=st.integers(1, 4),
    deltas_per_base=st.sampled_from([1, 2, 3, 48]),
)
def test_repeated_restores_equal_an_uninterrupted_run(
    seed: int, n_calls: int, hours: int, drain_every: int, restarts: int, deltas_per_base: int
) -> None:
    """Out-of-order events, duplicates, late events and expiry; the engine is drained at random
    points and restored several times, replaying a few already-processed events each time (as
    Kafka redelivers after a crash). Small ``deltas_per_base`` make the expired figures'
    base records (and the deletion of the deltas they hold) happen often."""
    rng = random.Random(seed)
    events = random_events(rng, n_calls, hours * 60 * MIN)
    events.sort(key=lambda e: e.ts_ms + rng.randrange(-40 * MIN, 40 * MIN))
    make = lambda: StreamEngine(  # noqa: E731
        lateness_ms=60 * MIN, max_future_ms=None, deltas_per_base=deltas_per_base
    )
    uninterrupted = make()
    for event in events:
        uninterrupted.process(event)
    persisted: dict[str, bytes] = {}
    engine = make()
    cuts = sorted(rng.sample(range(len(events) + 1), min(restarts, len(events) + 1)))
    position = 0
    for cut in [*cuts, len(events)]:
        for i in range(position, cut):
            engine.process(events[i])
            if i % drain_every == 0:
                merge(persisted, engine.drain_changes())
        merge(persisted, engine.drain_changes())
        engine = make()
        engine.load_records(persisted.items())
        position = max(0, cut - rng.randint(0, 5))  # redelivery of a few processed events
        position = cut if position > cut else position
        for i in range(position, cut):
            engine.process(events[i])  # duplicates now: no effect
        position = cut
    assert persisted_state(engine) == persisted_state(uninterrupted)


# Fixed examples: a failure here must reproduce, and it depends on where the crash falls.
@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 1_000_000),
    drain_every=st.integers(1, 10),
    deltas_per_base=st.sampled_from([1, 2, 48]),
)
def test_crash_in_the_middle_of_a_flush_loses_and_doubles_nothing(
    seed: int, drain_every: int, deltas_per_base: int
) -> None:
    """A worker killed while a batch's records are being written: only a prefix of them lands,
    and Kafka redelivers every event since the last fully written batch. The figures equal an
    uninterrupted run. (Ids of calls that expired in the lost batch may be forgotten: their
    redelivered events are older than the restored watermark allows, so they are refused as
    late rather than counted again.)"""
    rng = random.Random(seed)
    events = random_events(rng, 40, 10 * 60 * MIN)
    events.sort(key=lambda e: e.ts_ms + rng.randrange(-40 * MIN, 40 * MIN))
    make = lambda: StreamEngine(  # noqa: E731
        lateness_ms=60 * MIN, max_future_ms=None, deltas_per_base=deltas_per_base
    )
    uninterrupted = make()
    for event in events:
        uninterrupted.process(event)
    engine, persisted, committed = make(), {}, 0
    crash = rng.randint(1, len(events))  # drawn from the seed: spread over the whole run
    for start in range(0, crash, drain_every):
        end = min(crash, start + drain_every)
        for event in events[start:end]:
            engine.process(event)
        changes = list(engine.drain_changes().items())
        if end < crash:
            merge(persisted, dict(changes))
            committed = end
        else:  # the crash: a prefix of the batch's records lands
            merge(persisted, dict(changes[: rng.randint(0, len(changes))]))
    restored = make()
    restored.load_records(persisted.items())
    for event in events[committed:]:
        restored.process(event)
    got, want = persisted_state(restored), persisted_state(uninterrupted)
    assert got[:5] == want[:5]  # rows, totals, watermark, windows, live queue
    assert got[6] == want[6]  # every live call's state


def test_expired_figures_are_written_as_deltas_and_folded_into_a_base() -> None:
    """Each drain writes what expired since the last one; every ``deltas_per_base`` deltas the
    contract's base record takes them over and the deltas are deleted, so the records a
    restore reads stay few however long the engine runs."""
    rng = random.Random(11)
    events = sorted(random_events(rng, 300, 30 * 60 * MIN), key=lambda e: e.ts_ms)
    engine = StreamEngine(lateness_ms=30 * MIN, max_future_ms=None, deltas_per_base=3)
    persisted: dict[str, bytes] = {}
    written: list[str] = []
    for i, event in enumerate(events):
        engine.process(event)
        if i % 25 == 0:
            changes = engine.drain_changes()
            written += [k for k, v in changes.items() if "|x" in k and v is not None]
            merge(persisted, changes)
    merge(persisted, engine.drain_changes())
    assert any(k.count("|") == 2 for k in written)  # deltas were written...
    assert any(k.endswith("|x") for k in written)  # ...and bases took them over
    deltas = [k for k in persisted if "|x|" in k]
    assert len(deltas) < 3 * len({k.split("|")[0] for k in persisted if "|x" in k})
    restored = StreamEngine(lateness_ms=30 * MIN, max_future_ms=None, deltas_per_base=3)
    restored.load_records(persisted.items())
    assert persisted_state(restored)[:5] == persisted_state(engine)[:5]
