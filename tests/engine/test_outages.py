"""Outages and the 72-hour clock: scenarios through the stream engine and the replay."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import pytest

from monitor.engine import ComplianceEngine, ContractRegistry
from monitor.engine.events import CallEvent, EventType
from monitor.engine.outages import (
    BREACHED,
    CLOSED,
    ESCALATED,
    OPENED,
    Outage,
    OutageRecord,
    OutageRules,
    replay_outages,
    required_minutes_open,
)
from monitor.engine.registry import Contract
from monitor.engine.stream import StreamEngine

MIN = 60_000
HOUR = 3_600_000
NY, LA, OTHER = "H1001", "H2002", "H3003"
LINE = "member_services"


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def make_registry() -> ContractRegistry:
    return ContractRegistry([
        Contract(NY, None, "America/New_York"),
        Contract(LA, None, "America/Los_Angeles"),
        Contract(OTHER, None, "America/Chicago"),
    ])  # fmt: skip


class Calls:
    """Builds call events with unique ids."""

    def __init__(self) -> None:
        self.n = 0
        self.events: list[CallEvent] = []

    def _ev(self, contract: str, call: str | None, kind: EventType, ts: int, line: str,
            reason: str | None = None) -> None:  # fmt: skip
        self.n += 1
        self.events.append(CallEvent(f"e{self.n}", contract, call, kind, ts, line, reason))

    def call(self, contract: str, start: int, outcome: str, *, line: str = LINE,
             wait_ms: int = 30_000) -> None:  # fmt: skip
        """A call received at ``start``, queued 10 s later, then answered (after ``wait_ms``),
        abandoned or disconnected; answered calls end 3 minutes later."""
        self.n += 1
        call = f"c{self.n}"
        queued = start + 10_000
        self._ev(contract, call, EventType.CALL_RECEIVED, start, line)
        self._ev(contract, call, EventType.QUEUED, queued, line)
        if outcome == "answered":
            self._ev(contract, call, EventType.ANSWERED, queued + wait_ms, line)
            self._ev(contract, call, EventType.ENDED, queued + wait_ms + 180_000, line)
        elif outcome == "abandoned":
            self._ev(contract, call, EventType.ABANDONED, queued + wait_ms, line)
        elif outcome == "disconnected":
            self._ev(contract, call, EventType.DISCONNECTED, queued + wait_ms, line)
        else:
            raise ValueError(outcome)

    def every(self, contract: str, start: int, end: int, step: int, outcome: str, *,
              line: str = LINE, wait_ms: int = 30_000) -> None:  # fmt: skip
        for t in range(start, end, step):
            self.call(contract, t, outcome, line=line, wait_ms=wait_ms)

    def status(self, contract: str, kind: EventType, ts: int, reason: str | None = None) -> None:
        self._ev(contract, None, kind, ts, LINE, reason)

    def sorted(self) -> list[CallEvent]:
        return sorted(self.events, key=lambda e: (e.ts_ms, e.event_id))


def run_stream(
    events: Iterable[CallEvent], engine: StreamEngine | None = None
) -> list[OutageRecord]:
    engine = engine or StreamEngine(make_registry(), max_future_ms=None, lateness_ms=6 * HOUR)
    records: list[OutageRecord] = []
    for event in events:
        engine.process(event)
        records += engine.outages.drain_records()
    return records


def run_replay(events: Iterable[CallEvent]) -> list[Outage]:
    engine = ComplianceEngine(make_registry(), incremental=False)
    for event in events:
        engine.apply(event)
    return replay_outages(engine).all_outages()


def summary(records: list[OutageRecord]) -> list[tuple[str, str, int, str, int | None]]:
    return [(r.kind, r.contract_id, r.at_ms, r.cause, r.hours) for r in records]


def outages_from_records(
    records: list[OutageRecord],
) -> list[tuple[str, str, int, int | None, str]]:
    """(contract, line, start, end, cause) of every outage the records describe."""
    found: dict[tuple[str, str, int], int | None] = {}
    causes: dict[tuple[str, str, int], str] = {}
    for r in records:
        key = (r.contract_id, r.line, r.start_ms)
        if r.kind == OPENED:
            found[key] = None
            causes[key] = r.cause
        elif r.kind == CLOSED:
            found[key] = r.end_ms
    return sorted((*key, end, causes[key]) for key, end in found.items())


def outages_of(outages: list[Outage]) -> list[tuple[str, str, int, int | None, str]]:
    return [(o.contract_id, o.line, o.start_ms, o.end_ms, o.cause) for o in outages]


def assert_stream_equals_replay(events: list[CallEvent]) -> list[OutageRecord]:
    records = run_stream(events)
    assert outages_from_records(records) == outages_of(run_replay(events))
    return records


MONDAY_8AM_NY = ms("2026-01-05T08:00:00-05:00")


def typhoon(hours: int) -> tuple[list[CallEvent], int]:
    """Calls every 2 minutes, all abandoned after 5 minutes of waiting, for ``hours``; then
    answered calls (30 s holds) every 2 minutes. Another contract keeps the feed moving."""
    calls = Calls()
    t0 = MONDAY_8AM_NY
    restore = t0 + hours * HOUR
    calls.every(NY, t0, restore, 2 * MIN, "abandoned", wait_ms=5 * MIN)
    calls.every(NY, restore, restore + 40 * MIN, 2 * MIN, "answered")
    calls.every(OTHER, t0, restore + 60 * MIN, 5 * MIN, "answered")
    return calls.sorted(), restore


def test_typhoon_80_hours_breaches_once_and_escalates_once_each() -> None:
    events, restore = typhoon(80)
    records = assert_stream_equals_replay(events)
    t0 = MONDAY_8AM_NY
    # The first unanswered request (13:00:10Z) starts it; 10 requests make it (at 13:18).
    # Restored at the end of the minute of the fifth answer within 120 s: the restore calls
    # come at restore + 0, 2, .., 8 min, answered 40 s after arrival.
    closed_at = restore + 9 * MIN
    assert summary(records) == [
        (OPENED, NY, t0, "no_answers", None),
        (ESCALATED, NY, t0 + 24 * HOUR, "no_answers", 24),
        (ESCALATED, NY, t0 + 48 * HOUR, "no_answers", 48),
        (ESCALATED, NY, t0 + 60 * HOUR, "no_answers", 60),
        (BREACHED, NY, t0 + 72 * HOUR, "no_answers", 72),
        (CLOSED, NY, closed_at, "no_answers", None),
    ]
    (outage,) = run_replay(events)
    assert outage.breached and outage.end_ms == closed_at
    assert len({r.record_id for r in records}) == len(records)


def test_ten_hour_outage_closes_without_breach() -> None:
    events, restore = typhoon(10)
    records = assert_stream_equals_replay(events)
    assert summary(records) == [
        (OPENED, NY, MONDAY_8AM_NY, "no_answers", None),
        (CLOSED, NY, restore + 9 * MIN, "no_answers", None),
    ]
    (outage,) = run_replay(events)
    assert not outage.breached
    assert outage.end_ms is not None and outage.end_ms - outage.start_ms == 10 * HOUR + 9 * MIN


def test_declared_outage_waits_for_service_up() -> None:
    calls = Calls()
    t0 = MONDAY_8AM_NY
    calls.every(NY, t0, t0 + 6 * HOUR, MIN, "answered")  # healthy calls do not close it
    calls.status(NY, EventType.SERVICE_DOWN, t0 + HOUR + 1234, reason="IVR failure")
    calls.status(NY, EventType.SERVICE_UP, t0 + 4 * HOUR + 5678)
    records = assert_stream_equals_replay(calls.sorted())
    assert summary(records) == [
        (OPENED, NY, t0 + HOUR + 1234, "declared", None),
        (CLOSED, NY, t0 + 4 * HOUR + 5678, "declared", None),
    ]
    assert records[0].reason == "IVR failure"


def test_mass_drops() -> None:
    calls = Calls()
    t0 = MONDAY_8AM_NY + 2 * HOUR
    calls.every(NY, t0 - HOUR, t0, 2 * MIN, "answered")
    # 12 calls in 12 minutes; the 2nd, 4th, ... and the last two dropped: 7 of 12.
    for i in range(12):
        outcome = "disconnected" if i % 2 or i >= 10 else "answered"
        calls.call(NY, t0 + i * MIN + 5_000, outcome)
    calls.every(OTHER, t0 - HOUR, t0 + HOUR, 5 * MIN, "answered")
    records = assert_stream_equals_replay(calls.sorted())
    # At t0+10 the window [t0-4, t0+10] holds 2 healthy calls and 11 new ones, 6 dropped:
    # 6 of 13. At t0+11 it holds 1 healthy call (t0-2) and 12 new ones, 7 dropped: 7 of 13.
    # The outage starts with the window's first received call.
    opened = records[0]
    assert (opened.kind, opened.cause, opened.at_ms) == (OPENED, "mass_drops", t0 - 2 * MIN)


def day_traffic(calls: Calls, contract: str, day_8am: int, per_hour: int = 30) -> None:
    calls.every(contract, day_8am, day_8am + 12 * HOUR, HOUR // per_hour, "answered")


def test_quiet_line_at_night_is_no_outage() -> None:
    calls = Calls()
    for day in range(3):
        day_traffic(calls, NY, MONDAY_8AM_NY + day * 24 * HOUR)
    calls.every(OTHER, MONDAY_8AM_NY, MONDAY_8AM_NY + 60 * HOUR, 5 * MIN, "answered")
    assert assert_stream_equals_replay(calls.sorted()) == []


def test_silent_line_in_required_hours_while_others_flow() -> None:
    calls = Calls()
    day_traffic(calls, NY, MONDAY_8AM_NY)
    tuesday = MONDAY_8AM_NY + 24 * HOUR
    calls.every(OTHER, MONDAY_8AM_NY, tuesday + 4 * HOUR, 5 * MIN, "answered")
    records = assert_stream_equals_replay(calls.sorted())
    # Silent from Tuesday 8:00 local: detected at 8:29, it starts with the first silent minute.
    assert summary(records) == [(OPENED, NY, tuesday, "silence", None)]


def test_silence_not_inferred_when_the_feed_stops() -> None:
    """Nothing after the line's last call: no minute is ever evaluated past the grace."""
    calls = Calls()
    day_traffic(calls, NY, MONDAY_8AM_NY)
    assert assert_stream_equals_replay(calls.sorted()) == []


@pytest.mark.parametrize(("contract", "zone_offset"), [(NY, "-04:00"), (LA, "-07:00")])
@pytest.mark.parametrize(
    ("busy_day", "quiet_day", "expected"),
    [
        ("2026-03-27", "2026-03-28", True),  # Saturday in the every-day season
        ("2026-04-03", "2026-04-04", False),  # Saturday in the weekday season
        ("2026-06-25", "2026-06-26", True),  # an ordinary Friday
        ("2026-07-02", "2026-07-03", False),  # Independence Day observed
    ],
)
def test_holidays_and_season_switch_in_two_zones(
    contract: str, zone_offset: str, busy_day: str, quiet_day: str, expected: bool
) -> None:
    calls = Calls()
    busy = ms(f"{busy_day}T08:00:00{zone_offset}")
    quiet = ms(f"{quiet_day}T08:00:00{zone_offset}")
    day_traffic(calls, contract, busy)
    calls.every(OTHER, busy, quiet + 13 * HOUR, 5 * MIN, "answered")
    records = assert_stream_equals_replay(calls.sorted())
    if expected:
        assert summary(records) == [(OPENED, contract, quiet, "silence", None)]
    else:
        assert records == []


def test_overlapping_causes_are_one_outage() -> None:
    calls = Calls()
    t0 = MONDAY_8AM_NY
    calls.every(NY, t0, t0 + 2 * HOUR, 2 * MIN, "abandoned", wait_ms=5 * MIN)
    calls.status(NY, EventType.SERVICE_DOWN, t0 + HOUR, reason="confirmed")
    # Calls are answered again, but the declared cause waits for service_up.
    calls.every(NY, t0 + 2 * HOUR, t0 + 3 * HOUR, 2 * MIN, "answered")
    calls.status(NY, EventType.SERVICE_UP, t0 + 150 * MIN)
    calls.every(OTHER, t0, t0 + 4 * HOUR, 5 * MIN, "answered")
    records = assert_stream_equals_replay(calls.sorted())
    assert [(r.kind, r.at_ms, r.causes) for r in records] == [
        (OPENED, t0, ("no_answers",)),
        (CLOSED, t0 + 150 * MIN, ("no_answers", "declared")),
    ]


def test_restart_mid_outage_resumes_the_same_clock() -> None:
    """Persist, drop the engine, restore from the records, continue: the same audit trail
    as an uninterrupted run, every record once (a worker killed 50 h into an outage)."""
    events, _ = typhoon(80)
    expected = run_stream(events)
    cut = next(i for i, e in enumerate(events) if e.ts_ms >= MONDAY_8AM_NY + 50 * HOUR)
    table: dict[str, bytes] = {}
    first = StreamEngine(make_registry(), max_future_ms=None)
    records = run_stream(events[:cut], first)
    for key, value in first.drain_changes().items():
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    restored = StreamEngine(make_registry(), max_future_ms=None)
    restored.load_records(table.items())
    (open_outage,) = restored.outages.open_outages()
    assert open_outage.start_ms == MONDAY_8AM_NY
    assert open_outage.escalated == [24, 48]
    records += run_stream(events[cut:], restored)
    assert summary(records) == summary(expected)


def test_rules_validate() -> None:
    with pytest.raises(ValueError, match="windows"):
        OutageRules(no_answer_minutes=0)
    with pytest.raises(ValueError, match="ratio"):
        OutageRules(drop_ratio=1.5)


@pytest.mark.parametrize("contract", [NY, LA])
@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-03-06T10:00:30+00:00", "2026-03-10T05:00:00+00:00"),  # over the DST switch
        ("2026-10-30T23:59:59+00:00", "2026-11-02T12:00:00+00:00"),  # and back
        ("2026-07-02T12:00:00+00:00", "2026-07-07T12:00:00+00:00"),  # a holiday weekend
    ],
)
def test_required_minutes_per_day_equal_a_minute_by_minute_count(
    contract: str, start: str, end: str
) -> None:
    registry = make_registry()
    outage = Outage(contract, LINE, ms(start), "declared", ["declared"], True, end_ms=ms(end))
    expected: dict[str, int] = {}
    engine = ComplianceEngine(registry)
    for minute in range(-(-outage.start_ms // MIN), -(-ms(end) // MIN)):
        if registry.in_required_hours(contract, LINE, minute * MIN):
            day = engine.local_date(contract, minute * MIN)
            expected[day] = expected.get(day, 0) + 1
    assert required_minutes_open(registry, outage, until_ms=0) == expected
    assert sum(expected.values()) > 0


def _mixed_traffic(seed: int) -> list[CallEvent]:
    """A day and a half of random stretches (working, typhoon, mass drops, silence) on two
    contracts, a few status events, and events delivered up to 5 minutes out of order."""
    import random

    rng = random.Random(seed)
    calls = Calls()
    for contract in (NY, OTHER):
        t = MONDAY_8AM_NY
        while t < MONDAY_8AM_NY + 36 * HOUR:
            length = rng.randrange(20, 240) * MIN
            kind = rng.choice(["answered", "answered", "abandoned", "disconnected", "silence"])
            if kind != "silence":
                calls.every(contract, t, t + length, rng.randrange(1, 6) * MIN, kind,
                            wait_ms=rng.choice([20_000, 90_000, 300_000]))  # fmt: skip
            if rng.random() < 0.1:
                calls.status(contract, EventType.SERVICE_DOWN, t + length // 3, "test")
                calls.status(contract, EventType.SERVICE_UP, t + length // 2)
            t += length
    return sorted(calls.events, key=lambda e: e.ts_ms + rng.randrange(0, 5 * MIN))


def _outage_state(engine: StreamEngine) -> dict[str, object]:
    contracts = {contract for contract, _ in engine.outages.series}
    return {c: engine.outages.contract_record(c) for c in sorted(contracts)}


@pytest.mark.parametrize("seed", range(12))
def test_restores_between_drains_equal_an_uninterrupted_run(seed: int) -> None:
    """Outage records are written on transitions and hourly, not every evaluated minute; a
    restore re-evaluates the minutes since. With drains at random points, restarts, and
    events out of order (some after their minute was evaluated), the audit trail and the
    final outage state equal an uninterrupted run's."""
    import random

    rng = random.Random(seed)
    events = _mixed_traffic(seed)
    make = lambda: StreamEngine(make_registry(), max_future_ms=None)  # noqa: E731
    uninterrupted = make()
    expected = run_stream(events, uninterrupted)
    table: dict[str, bytes] = {}
    engine, records = make(), []
    cuts = sorted(rng.sample(range(len(events)), 4))
    position = 0
    for cut in [*cuts, len(events)]:
        for i in range(position, cut):
            engine.process(events[i])
            records += engine.outages.drain_records()
            if rng.random() < 0.05:
                for key, value in engine.drain_changes().items():
                    if value is None:
                        table.pop(key, None)
                    else:
                        table[key] = value
        for key, value in engine.drain_changes().items():
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
        engine = make()
        engine.load_records(table.items())
        position = cut
    engine.advance_outages()  # what the next event would do: evaluate up to the watermark
    records += engine.outages.drain_records()
    assert expected, "the scenario opens outages"
    # A restore may emit a record again (same content, same id); the consumer dedupes by id.
    assert sorted(set(summary(records))) == sorted(set(summary(expected)))
    assert _outage_state(engine) == _outage_state(uninterrupted)
