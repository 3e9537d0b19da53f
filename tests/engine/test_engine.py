"""ComplianceEngine (issue 2, §2 duplicates, §3-§4 through the engine, §5 registry, §7 modes)."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from monitor.engine import (
    CallEvent,
    ComplianceEngine,
    Contract,
    ContractRegistry,
    DailyFigures,
    EventType,
    RegistryError,
    Rejection,
    validate_record,
)
from tests.spec import AB, IC, IR, MIN, SEC, TC, TR, A, D, E, Q, R


def ms(text: str) -> int:
    """Epoch ms of an ISO time with an offset (independent of the code under test)."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert dt.tzinfo is not None
    return int(dt.timestamp() * 1000)


class Feed:
    """Builds events with fresh ids."""

    def __init__(self, prefix: str = "e") -> None:
        self.prefix = prefix
        self.n = 0
        self.events: list[CallEvent] = []

    def ev(
        self,
        call: str | None,
        kind: EventType,
        ts: int,
        contract: str = "H1234",
        line: str = "member_services",
    ) -> CallEvent:
        self.n += 1
        event = CallEvent(f"{self.prefix}{self.n}", contract, call, kind, ts, line)
        self.events.append(event)
        return event

    def call(
        self,
        call: str,
        steps: Iterable[tuple[EventType, int]],
        contract: str = "H1234",
        line: str = "member_services",
    ) -> None:
        for kind, ts in steps:
            self.ev(call, kind, ts, contract, line)


def run(
    events: Iterable[CallEvent],
    registry: ContractRegistry | None = None,
    *,
    incremental: bool = True,
) -> ComplianceEngine:
    engine = ComplianceEngine(registry, incremental=incremental)
    for event in events:
        engine.apply(event)
    return engine


def rows_by_key(engine: ComplianceEngine) -> dict[tuple[str, str, str], DailyFigures]:
    return {(r.contract_id, r.line, r.date): r for r in engine.rows()}


REGISTRY = ContractRegistry(
    [
        Contract("H1234", "Acme Health", "America/New_York"),
        Contract("S5678", "Beta Rx", "America/Los_Angeles"),
        Contract("H0001", "Island Care", "Pacific/Honolulu"),
        Contract("R0002", "Caribe Salud", "America/Puerto_Rico"),
        Contract("X0003", "North Plans", "America/Anchorage"),
        Contract("90004", "Typhoon Health", "Pacific/Guam"),
    ]
)

MODES = pytest.mark.parametrize("incremental", [True, False], ids=["incremental", "deferred"])


# -- a hand-built day (and two more) ----------------------------------------------------------


def build_days() -> tuple[list[CallEvent], dict[tuple[str, str, str], DailyFigures]]:
    """Three rows crossing the thresholds in known ways; expected figures worked out by hand."""
    f = Feed()
    # Day 1: H1234 member_services 2026-01-05 (09:00 EST = 14:00Z) - fails every standard.
    t = ms("2026-01-05T14:00:00Z")
    holds = [10_000, 20_000, 30_000, 30_001, 200_000, 459_999]  # sum 750 000 -> mean 125 s
    for i, hold in enumerate(holds):
        start = t + i * 10 * MIN
        f.call(f"d1-a{i}", [(R, start), (Q, start + 5 * SEC), (A, start + 5 * SEC + hold),
                            (E, start + 20 * MIN)])  # fmt: skip
    # interpreter on the first two answered calls: one in time (exactly 8 min), one never.
    f.ev("d1-a0", IR, t + 20 * SEC)
    f.ev("d1-a0", IC, t + 20 * SEC + 480_000)
    f.ev("d1-a1", IR, t + 10 * MIN + 20 * SEC)
    s = t + 2 * 3_600_000
    f.call("d1-ab", [(R, s), (Q, s + 5 * SEC), (AB, s + 3 * MIN)])
    f.call("d1-dq", [(R, s + MIN), (Q, s + MIN + 5 * SEC), (D, s + 4 * MIN)])
    f.call("d1-ivr", [(R, s + 2 * MIN), (TR, s + 2 * MIN + SEC),
                      (TC, s + 2 * MIN + SEC + 420_000), (E, s + 12 * MIN)])  # fmt: skip
    f.call("d1-ivrd", [(R, s + 3 * MIN), (TR, s + 3 * MIN + SEC),
                       (TC, s + 3 * MIN + SEC + 420_001), (D, s + 12 * MIN)])  # fmt: skip
    day1 = DailyFigures(
        contract_id="H1234",
        line="member_services",
        date="2026-01-05",
        parent_org="Acme Health",
        calls_received=10,
        calls_queued=8,
        calls_answered=6,
        answered_within_30s=3,
        answered_within_30s_ratio=0.375,
        avg_hold_seconds=125.0,
        calls_disconnected=2,
        disconnect_rate=0.2,
        tty_calls=2,
        tty_connected_within_7m=1,
        interpreter_calls=2,
        interpreter_connected_within_8m=1,
        compliant_hold=False,
        compliant_answer=False,
        compliant_disconnect=False,
    )
    # Day 2: H1234 member_services 2026-01-06 - every figure exactly at its limit: compliant.
    t = ms("2026-01-06T14:00:00Z")
    for i in range(20):
        start = t + i * MIN
        hold = 30_000 if i < 16 else 480_000  # 16×30 s + 4×480 s = 2 400 s = 20×120 s
        steps = [(R, start), (Q, start + 2 * SEC), (A, start + 2 * SEC + hold)]
        steps.append((D if i == 0 else E, start + 15 * MIN))  # 1 of 20 dropped = 5 %
        f.call(f"d2-{i}", steps)
    day2 = DailyFigures("H1234", "member_services", "2026-01-06", "Acme Health",
                        20, 20, 20, 16, 0.8, 120.0, 1, 0.05, 0, 0, 0, 0,
                        True, True, True)  # fmt: skip
    # Day 3: H1234 pharmacy_help_desk 2026-01-05 - no live request: ratio and mean are null.
    t = ms("2026-01-05T20:00:00Z")
    f.call("d3-0", [(R, t), (E, t + MIN)], line="pharmacy_help_desk")
    f.call("d3-1", [(R, t + MIN), (E, t + 2 * MIN)], line="pharmacy_help_desk")
    day3 = DailyFigures("H1234", "pharmacy_help_desk", "2026-01-05", "Acme Health",
                        2, 0, 0, 0, None, None, 0, 0.0, 0, 0, 0, 0,
                        None, None, True)  # fmt: skip
    # Day 4: S5678 (Los Angeles) 2026-01-05 - each figure just past its limit.
    t = ms("2026-01-05T17:00:00Z")  # 09:00 PST
    for i in range(20):
        start = t + i * MIN
        hold = 30_000 if i < 15 else 390_004  # 15×30 000 + 5×390 004 = 20×120 001 ms
        steps = [(R, start), (Q, start), (A, start + hold)]
        steps.append((D if i < 2 else E, start + 10 * MIN))
        f.call(f"d4-{i}", steps, contract="S5678")
    # one more queued call abandoned: 15 of 21 within 30 s, 2 of 21 dropped
    f.call("d4-ab", [(R, t + 30 * MIN), (Q, t + 30 * MIN), (AB, t + 31 * MIN)], contract="S5678")
    day4 = DailyFigures("S5678", "member_services", "2026-01-05", "Beta Rx",
                        21, 21, 20, 15, 15 / 21, 120.001, 2, 2 / 21, 0, 0, 0, 0,
                        False, False, False)  # fmt: skip
    expected = {(r.contract_id, r.line, r.date): r for r in (day1, day2, day3, day4)}
    return f.events, expected


@MODES
def test_hand_built_days_in_input_order(incremental: bool) -> None:
    events, expected = build_days()
    engine = run(events, REGISTRY, incremental=incremental)
    assert rows_by_key(engine) == expected
    assert engine.rows() == sorted(expected.values(), key=lambda r: (r.contract_id, r.line, r.date))


@MODES
def test_hand_built_days_shuffled_with_duplicates(incremental: bool) -> None:
    events, expected = build_days()
    rng = random.Random(7)
    for _ in range(5):
        noisy = events + rng.sample(events, len(events) // 3)
        rng.shuffle(noisy)
        engine = run(noisy, REGISTRY, incremental=incremental)
        assert rows_by_key(engine) == expected
        assert engine.stats.duplicates == len(events) // 3


def test_each_threshold_crossed_on_day1_and_met_on_day2() -> None:
    events, _ = build_days()
    rows = rows_by_key(run(events, REGISTRY))
    day1 = rows[("H1234", "member_services", "2026-01-05")]
    day2 = rows[("H1234", "member_services", "2026-01-06")]
    assert (day1.compliant_hold, day1.compliant_answer, day1.compliant_disconnect) == (
        False,
        False,
        False,
    )
    assert (day2.compliant_hold, day2.compliant_answer, day2.compliant_disconnect) == (
        True,
        True,
        True,
    )


# -- incremental and deferred modes --------------------------------------------------------------


def random_events(rng: random.Random, n_calls: int) -> list[CallEvent]:
    base = ms("2026-03-07T12:00:00Z")  # spans the New York DST change of 2026-03-08
    contracts = ["H1234", "S5678", "H0001", "X0003", "H7777"]  # H7777: not in the registry
    lines = ["member_services", "pharmacy_help_desk", "prospective_enrollee"]
    kinds = [t for t in EventType if not t.is_status]
    events: list[CallEvent] = []
    n = 0
    for c in range(n_calls):
        contract = rng.choice(contracts)
        start = base + rng.randrange(48 * 3_600_000)
        for kind in rng.sample(kinds, rng.randint(1, 7)):
            n += 1
            events.append(
                CallEvent(f"e{n}", contract, f"c{c}", kind,
                          start + rng.randrange(-2 * MIN, 15 * MIN), rng.choice(lines))
            )  # fmt: skip
            if rng.random() < 0.15:  # same id, other content: a duplicate
                events.append(CallEvent(f"e{n}", contract, f"c{c}", A, start, lines[0]))
        if rng.random() < 0.05:
            n += 1
            events.append(CallEvent(f"e{n}", contract, None, EventType.SERVICE_DOWN, start,
                                    lines[0]))  # fmt: skip
    rng.shuffle(events)
    return events


def test_incremental_equals_deferred_after_every_prefix() -> None:
    rng = random.Random(42)
    for _ in range(8):
        events = random_events(rng, 40)
        incremental = ComplianceEngine(REGISTRY, incremental=True)
        deferred = ComplianceEngine(REGISTRY, incremental=False)
        for i, event in enumerate(events):
            incremental.apply(event)
            deferred.apply(event)  # deferred rows are also read repeatedly, mid-stream
            if i % 7 == 0 or i == len(events) - 1:
                batch = run(events[: i + 1], REGISTRY, incremental=False)
                assert incremental.rows() == batch.rows()
                assert deferred.rows() == batch.rows()
                assert incremental.clock_skew_calls == batch.clock_skew_calls
        assert incremental.stats.duplicates == deferred.stats.duplicates


def test_deferred_rows_reflect_events_applied_after_a_read() -> None:
    f = Feed()
    t = ms("2026-01-05T14:00:00Z")
    engine = ComplianceEngine(REGISTRY, incremental=False)
    engine.apply(f.ev("c1", R, t))
    assert [r.calls_received for r in engine.rows()] == [1]
    engine.apply(f.ev("c2", R, t))
    engine.apply(f.ev("c1", A, t + 10 * SEC))
    (row,) = engine.rows()
    assert (row.calls_received, row.calls_answered, row.avg_hold_seconds) == (2, 1, 10.0)


def test_late_event_moves_a_call_to_its_arrival_day() -> None:
    f = Feed()
    engine = ComplianceEngine(REGISTRY)
    engine.apply(f.ev("c1", Q, ms("2026-01-06T05:00:30Z")))  # 00:00:30 EST on Jan 6
    assert [r.date for r in engine.rows()] == ["2026-01-06"]
    engine.apply(f.ev("c1", R, ms("2026-01-06T04:59:50Z")))  # 23:59:50 EST on Jan 5
    (row,) = engine.rows()
    assert row.date == "2026-01-05"
    assert (row.calls_received, row.calls_queued) == (1, 1)
    engine.apply(f.ev("c1", A, ms("2026-01-06T05:00:40Z")))
    (row,) = engine.rows()
    assert (row.date, row.calls_answered, row.avg_hold_seconds) == ("2026-01-05", 1, 10.0)


def test_late_event_moves_a_call_to_another_line() -> None:
    f = Feed()
    t = ms("2026-01-05T15:00:00Z")
    engine = ComplianceEngine(REGISTRY)
    engine.apply(f.ev("c1", Q, t, line="member_services"))
    engine.apply(f.ev("c1", R, t + SEC, line="prospective_enrollee"))
    (row,) = engine.rows()
    assert (row.line, row.calls_received, row.calls_queued) == ("prospective_enrollee", 1, 1)


# -- duplicates ------------------------------------------------------------------------------------


@MODES
def test_duplicate_id_with_other_content_is_ignored_and_counted(incremental: bool) -> None:
    t = ms("2026-01-05T14:00:00Z")
    events = [
        CallEvent("x1", "H1234", "c1", R, t, "member_services"),
        CallEvent("x2", "H1234", "c1", Q, t + SEC, "member_services"),
        # same ids, different call / type / time / contract / line: all ignored
        CallEvent("x1", "H1234", "c2", R, t, "member_services"),
        CallEvent("x2", "H1234", "c1", A, t + 2 * SEC, "member_services"),
        CallEvent("x1", "S5678", "c9", D, t, "pharmacy_help_desk"),
        CallEvent("x2", "H1234", "c1", Q, t + SEC, "member_services"),  # identical repeat
    ]
    engine = run(events, REGISTRY, incremental=incremental)
    (row,) = engine.rows()
    assert (row.contract_id, row.calls_received, row.calls_queued) == ("H1234", 1, 1)
    assert (row.calls_answered, row.calls_disconnected) == (0, 0)
    assert engine.stats.duplicates == 4
    assert engine.sync_stats().accepted == 2
    assert engine.calls_tracked == 1


def test_first_valid_event_wins_even_when_a_later_one_would_be_earlier() -> None:
    t = ms("2026-01-05T14:00:00Z")
    engine = run(
        [
            CallEvent("x1", "H1234", "c1", R, t + 10 * MIN, "member_services"),
            CallEvent("x1", "H1234", "c1", R, t, "pharmacy_help_desk"),
        ]
    )
    (row,) = engine.rows()
    assert row.line == "member_services"


def test_apply_reports_whether_the_event_was_taken() -> None:
    t = ms("2026-01-05T14:00:00Z")
    engine = ComplianceEngine()
    assert engine.apply(CallEvent("x1", "H1234", "c1", R, t, "member_services")) is True
    assert engine.apply(CallEvent("x1", "H1234", "c1", R, t, "member_services")) is False


def test_rejected_event_does_not_claim_its_event_id() -> None:
    engine = ComplianceEngine(REGISTRY)
    bad = validate_record(
        orjson.dumps({"event_id": "z1", "call_id": "c1", "contract_id": "Q1234",
                      "type": "call_received", "ts": "2026-01-05T14:00:00Z"})
    )  # fmt: skip
    assert isinstance(bad, Rejection)
    assert engine.offer(bad) is False
    good = validate_record(
        orjson.dumps({"event_id": "z1", "call_id": "c1", "contract_id": "H1234",
                      "type": "call_received", "ts": "2026-01-05T09:00:00-05:00"})
    )  # fmt: skip
    assert isinstance(good, CallEvent)
    assert engine.offer(good) is True
    assert engine.stats.duplicates == 0
    assert engine.stats.rejected_total == 1
    (row,) = engine.rows()
    assert (row.date, row.line, row.calls_received) == ("2026-01-05", "member_services", 1)


def test_status_event_id_reused_by_a_call_event_is_a_duplicate() -> None:
    t = ms("2026-01-05T14:00:00Z")
    engine = run(
        [
            CallEvent("s1", "H1234", None, EventType.SERVICE_DOWN, t, "member_services"),
            CallEvent("s1", "H1234", "c1", R, t, "member_services"),
        ]
    )
    assert engine.rows() == []
    assert engine.stats.duplicates == 1


# -- status events ---------------------------------------------------------------------------------


@MODES
def test_status_events_create_no_rows(incremental: bool) -> None:
    t = ms("2026-01-05T14:00:00Z")
    engine = run(
        [
            CallEvent("s1", "H1234", None, EventType.SERVICE_DOWN, t, "member_services"),
            CallEvent("s2", "H1234", None, EventType.SERVICE_UP, t + MIN, "member_services"),
        ],
        REGISTRY,
        incremental=incremental,
    )
    assert engine.rows() == []
    assert engine.calls_tracked == 0
    assert engine.stats.status_events == 2
    assert engine.sync_stats().accepted == 2


@MODES
def test_status_events_do_not_change_call_figures(incremental: bool) -> None:
    f = Feed()
    t = ms("2026-01-05T14:00:00Z")
    f.call("c1", [(R, t), (Q, t + SEC), (A, t + 11 * SEC)])
    before = run(f.events, REGISTRY, incremental=incremental).rows()
    f.ev(None, EventType.SERVICE_DOWN, t - MIN)
    f.ev(None, EventType.SERVICE_UP, t + MIN)
    assert run(f.events, REGISTRY, incremental=incremental).rows() == before


@pytest.mark.parametrize("kind", ["service_down", "service_up"])
@MODES
def test_status_event_carrying_a_call_id_creates_no_rows(kind: str, incremental: bool) -> None:
    # §2: call_id is optional on a status event ("no call_id needed"), and status events have
    # "no effect on call figures" - also when the telephony happens to stamp a call_id.
    event = validate_record(
        orjson.dumps({"event_id": "s1", "call_id": "c1", "contract_id": "H1234", "type": kind,
                      "ts": "2026-01-05T14:00:00Z"})
    )  # fmt: skip
    assert isinstance(event, CallEvent)
    engine = ComplianceEngine(REGISTRY, incremental=incremental)
    engine.apply(event)
    assert engine.rows() == []
    assert engine.stats.status_events == 1


# -- per-call rules through the engine -------------------------------------------------------------


@MODES
def test_clock_skew_is_counted_in_engine_statistics(incremental: bool) -> None:
    f = Feed()
    t = ms("2026-01-05T14:00:00Z")
    f.call("c1", [(R, t), (Q, t + 10 * SEC), (A, t + 4 * SEC)])  # answered 6 s before queued
    f.call("c2", [(R, t), (Q, t + 10 * SEC), (A, t + 50 * SEC)])
    engine = run(f.events, REGISTRY, incremental=incremental)
    assert engine.clock_skew_calls == 1
    (row,) = engine.rows()
    assert row.calls_answered == 2
    assert row.avg_hold_seconds == 20.0  # (0 + 40 000) / 2 ms
    assert row.answered_within_30s == 1
    # a late, earlier queued event removes the skew: hold becomes 4 s - 1 s = 3 s
    engine.apply(f.ev("c1", Q, t + SEC))
    assert engine.clock_skew_calls == 0
    (row,) = engine.rows()
    assert row.avg_hold_seconds == 21.5


@MODES
def test_answered_within_30s_boundary_through_the_engine(incremental: bool) -> None:
    f = Feed()
    t = ms("2026-01-05T14:00:00Z")
    f.call("at", [(R, t), (Q, t + SEC), (A, t + SEC + 30_000)])
    f.call("over", [(R, t), (Q, t + SEC), (A, t + SEC + 30_001)])
    (row,) = run(f.events, REGISTRY, incremental=incremental).rows()
    assert (row.calls_answered, row.answered_within_30s) == (2, 1)
    assert row.answered_within_30s_ratio == 0.5
    assert row.avg_hold_seconds == 30.0005


@MODES
def test_tty_and_interpreter_boundaries_through_the_engine(incremental: bool) -> None:
    f = Feed()
    t = ms("2026-01-05T14:00:00Z")
    f.call("t1", [(R, t), (TR, t + SEC), (TC, t + SEC + 420_000)])
    f.call("t2", [(R, t), (TR, t + SEC), (TC, t + SEC + 420_001)])
    f.call("t3", [(R, t), (TC, t + SEC)])  # connected without a request: not a TTY call
    f.call("i1", [(R, t), (IR, t + SEC), (IC, t + SEC + 480_000)])
    f.call("i2", [(R, t), (IR, t + SEC), (IC, t + SEC + 480_001)])
    f.call("i3", [(R, t), (IC, t + SEC)])
    (row,) = run(f.events, REGISTRY, incremental=incremental).rows()
    assert (row.tty_calls, row.tty_connected_within_7m) == (2, 1)
    assert (row.interpreter_calls, row.interpreter_connected_within_8m) == (2, 1)
    assert row.calls_received == 6
    assert row.calls_queued == 0


def test_a_call_is_identified_by_contract_and_call_id() -> None:
    t = ms("2026-01-05T14:00:00Z")
    engine = run(
        [
            CallEvent("e1", "H1234", "c1", R, t, "member_services"),
            CallEvent("e2", "S5678", "c1", R, t, "member_services"),
            CallEvent("e3", "H1234", "c1", A, t + 5 * SEC, "member_services"),
        ],
        REGISTRY,
    )
    assert engine.calls_tracked == 2
    rows = rows_by_key(engine)
    assert rows[("H1234", "member_services", "2026-01-05")].calls_answered == 1
    assert rows[("S5678", "member_services", "2026-01-05")].calls_answered == 0


def test_disconnected_counts_calls_not_events() -> None:
    f = Feed()
    t = ms("2026-01-05T14:00:00Z")
    f.call("c1", [(R, t), (D, t + SEC), (D, t + 2 * SEC)])
    f.call("c2", [(R, t), (E, t + SEC)])
    (row,) = run(f.events, REGISTRY).rows()
    assert (row.calls_disconnected, row.disconnect_rate) == (1, 0.5)


def test_memory_grows_with_calls_not_with_events_per_call() -> None:
    f = Feed()
    t = ms("2026-01-05T14:00:00Z")
    for i in range(500):
        f.ev("c1", EventType(i % 10), t + i * SEC)
    engine = run(f.events, REGISTRY)
    assert engine.calls_tracked == 1
    state = engine.call_state("H1234", "c1")
    assert state is not None
    assert len(state.earliest) == 10


# -- dates and time zones --------------------------------------------------------------------------


@MODES
def test_call_spanning_local_midnight_counts_on_its_arrival_date(incremental: bool) -> None:
    f = Feed()
    f.call(
        "c1",
        [
            (R, ms("2026-01-06T04:59:50Z")),  # 23:59:50 EST, Jan 5
            (Q, ms("2026-01-06T04:59:55Z")),
            (A, ms("2026-01-06T05:00:20Z")),  # 00:00:20 EST, Jan 6
            (D, ms("2026-01-06T05:10:00Z")),
        ],
    )
    (row,) = run(reversed(f.events), REGISTRY, incremental=incremental).rows()
    assert row.date == "2026-01-05"
    assert (row.calls_received, row.calls_answered, row.answered_within_30s) == (1, 1, 1)
    assert row.avg_hold_seconds == 25.0
    assert row.calls_disconnected == 1


def test_arrival_without_call_received_dates_by_earliest_event() -> None:
    f = Feed()
    f.call("c1", [(Q, ms("2026-01-06T05:00:05Z")), (A, ms("2026-01-06T04:59:58Z"))])
    (row,) = run(f.events, REGISTRY).rows()
    assert row.date == "2026-01-05"  # 23:59:58 EST


@pytest.mark.parametrize(
    ("contract", "instant", "date"),
    [
        # America/New_York, EST (UTC-5)
        ("H1234", "2026-01-06T04:59:59.999Z", "2026-01-05"),
        ("H1234", "2026-01-06T05:00:00Z", "2026-01-06"),
        # America/Los_Angeles, PST (UTC-8)
        ("S5678", "2026-01-06T07:59:59.999Z", "2026-01-05"),
        ("S5678", "2026-01-06T08:00:00Z", "2026-01-06"),
        # Pacific/Honolulu, HST (UTC-10, no DST)
        ("H0001", "2026-01-06T09:59:59.999Z", "2026-01-05"),
        ("H0001", "2026-01-06T10:00:00Z", "2026-01-06"),
        ("H0001", "2026-07-06T09:59:59.999Z", "2026-07-05"),
        ("H0001", "2026-07-06T10:00:00Z", "2026-07-06"),
        # America/Puerto_Rico, AST (UTC-4, no DST)
        ("R0002", "2026-01-06T03:59:59.999Z", "2026-01-05"),
        ("R0002", "2026-01-06T04:00:00Z", "2026-01-06"),
        ("R0002", "2026-07-06T03:59:59.999Z", "2026-07-05"),
        # America/Anchorage, AKST (UTC-9) in winter, AKDT (UTC-8) in summer
        ("X0003", "2026-01-06T08:59:59.999Z", "2026-01-05"),
        ("X0003", "2026-01-06T09:00:00Z", "2026-01-06"),
        ("X0003", "2026-07-06T07:59:59.999Z", "2026-07-05"),
        ("X0003", "2026-07-06T08:00:00Z", "2026-07-06"),
        # Pacific/Guam, ChST (UTC+10): ahead of UTC
        ("90004", "2026-01-05T13:59:59.999Z", "2026-01-05"),
        ("90004", "2026-01-05T14:00:00Z", "2026-01-06"),
        # Not in the registry: America/New_York
        ("H9999", "2026-01-06T04:59:59.999Z", "2026-01-05"),
        ("H9999", "2026-01-06T05:00:00Z", "2026-01-06"),
        ("H9999", "2026-07-06T03:59:59.999Z", "2026-07-05"),
        ("H9999", "2026-07-06T04:00:00Z", "2026-07-06"),
    ],
)
def test_local_date_in_the_contract_time_zone(contract: str, instant: str, date: str) -> None:
    engine = run([CallEvent("e1", contract, "c1", R, ms(instant), "member_services")], REGISTRY)
    (row,) = engine.rows()
    assert (row.contract_id, row.date) == (contract, date)
    assert engine.local_date(contract, ms(instant)) == date


@pytest.mark.parametrize(
    ("contract", "instant", "date"),
    [
        # New York spring forward 2026-03-08 02:00 EST -> 03:00 EDT: a 23-hour local day
        ("H1234", "2026-03-08T04:59:59.999Z", "2026-03-07"),
        ("H1234", "2026-03-08T05:00:00Z", "2026-03-08"),
        ("H1234", "2026-03-08T06:59:59.999Z", "2026-03-08"),  # 01:59:59.999 EST
        ("H1234", "2026-03-08T07:00:00Z", "2026-03-08"),  # 03:00 EDT
        ("H1234", "2026-03-09T03:59:59.999Z", "2026-03-08"),  # 23:59:59.999 EDT
        ("H1234", "2026-03-09T04:00:00Z", "2026-03-09"),
        # New York fall back 2026-11-01 02:00 EDT -> 01:00 EST: a 25-hour local day
        ("H1234", "2026-11-01T03:59:59.999Z", "2026-10-31"),
        ("H1234", "2026-11-01T04:00:00Z", "2026-11-01"),
        ("H1234", "2026-11-01T05:30:00Z", "2026-11-01"),  # 01:30 EDT
        ("H1234", "2026-11-01T06:30:00Z", "2026-11-01"),  # 01:30 EST
        ("H1234", "2026-11-02T04:30:00Z", "2026-11-01"),  # 23:30 EST
        ("H1234", "2026-11-02T04:59:59.999Z", "2026-11-01"),
        ("H1234", "2026-11-02T05:00:00Z", "2026-11-02"),
        # Los Angeles and Anchorage change on the same dates
        ("S5678", "2026-03-09T06:59:59.999Z", "2026-03-08"),  # 23:59:59.999 PDT
        ("S5678", "2026-03-09T07:00:00Z", "2026-03-09"),
        ("S5678", "2026-11-02T07:59:59.999Z", "2026-11-01"),  # 23:59:59.999 PST
        ("X0003", "2026-03-08T08:59:59.999Z", "2026-03-07"),  # 23:59:59.999 AKST
        ("X0003", "2026-03-09T07:59:59.999Z", "2026-03-08"),  # 23:59:59.999 AKDT
        ("X0003", "2026-03-09T08:00:00Z", "2026-03-09"),
        # Honolulu and Puerto Rico do not change
        ("H0001", "2026-03-09T09:59:59.999Z", "2026-03-08"),
        ("R0002", "2026-11-02T03:59:59.999Z", "2026-11-01"),
    ],
)
def test_local_date_across_dst_transitions(contract: str, instant: str, date: str) -> None:
    engine = run([CallEvent("e1", contract, "c1", R, ms(instant), "member_services")], REGISTRY)
    (row,) = engine.rows()
    assert row.date == date


@MODES
def test_dst_day_counts_every_call_of_the_23_hour_day(incremental: bool) -> None:
    f = Feed()
    start, end = ms("2026-03-08T05:00:00Z"), ms("2026-03-09T04:00:00Z")  # local Mar 8
    for i, ts in enumerate(range(start - 30 * MIN, end + 30 * MIN, 30 * MIN)):
        f.ev(f"c{i}", R, ts)
    rows = [(r.date, r.calls_received) for r in run(f.events, REGISTRY,
                                                     incremental=incremental).rows()]  # fmt: skip
    assert rows == [("2026-03-07", 1), ("2026-03-08", 46), ("2026-03-09", 1)]


def test_same_instant_different_zones_different_dates() -> None:
    t = ms("2026-01-06T06:00:00Z")  # 01:00 EST Jan 6, 22:00 PST Jan 5, 16:00 ChST Jan 6
    engine = run(
        [
            CallEvent("e1", "H1234", "c1", R, t, "member_services"),
            CallEvent("e2", "S5678", "c1", R, t, "member_services"),
            CallEvent("e3", "90004", "c1", R, t, "member_services"),
        ],
        REGISTRY,
    )
    assert [(r.contract_id, r.date) for r in engine.rows()] == [
        ("90004", "2026-01-06"),
        ("H1234", "2026-01-06"),
        ("S5678", "2026-01-05"),
    ]


def test_unknown_contract_has_no_parent_org_and_new_york_dates() -> None:
    engine = run(
        [CallEvent("e1", "E4321", "c1", R, ms("2026-07-06T03:30:00Z"), "member_services")],
        REGISTRY,
    )
    (row,) = engine.rows()
    assert row.parent_org is None
    assert row.date == "2026-07-05"  # 23:30 EDT
    assert REGISTRY.timezone_name("E4321") == "America/New_York"


def test_engine_without_registry_uses_new_york() -> None:
    engine = run([CallEvent("e1", "H1234", "c1", R, ms("2026-01-06T04:30:00Z"),
                            "member_services")])  # fmt: skip
    (row,) = engine.rows()
    assert (row.date, row.parent_org) == ("2026-01-05", None)


def test_parent_org_comes_from_the_registry() -> None:
    t = ms("2026-01-05T20:00:00Z")
    engine = run(
        [CallEvent(f"e{c}", c, "c1", R, t, "member_services") for c in ("H1234", "S5678", "H0001")],
        REGISTRY,
    )
    assert {r.contract_id: r.parent_org for r in engine.rows()} == {
        "H1234": "Acme Health",
        "S5678": "Beta Rx",
        "H0001": "Island Care",
    }


# -- row order -------------------------------------------------------------------------------------


@MODES
def test_rows_sorted_by_contract_line_date(incremental: bool) -> None:
    f = Feed()
    keys = [
        ("S5678", "pharmacy_help_desk", "2026-01-07"),
        ("S5678", "member_services", "2026-01-07"),
        ("H1234", "prospective_enrollee", "2026-01-05"),
        ("H1234", "member_services", "2026-01-07"),
        ("H1234", "member_services", "2026-01-05"),
        ("H1234", "member_services", "2025-12-31"),
        ("E0001", "pharmacy_help_desk", "2026-01-06"),
        ("90004", "member_services", "2026-01-09"),
    ]
    for i, (contract, line, date) in enumerate(keys):
        f.ev(f"c{i}", R, ms(f"{date}T12:00:00Z"), contract=contract, line=line)
    engine = run(f.events, REGISTRY, incremental=incremental)
    assert [(r.contract_id, r.line, r.date) for r in engine.rows()] == sorted(keys)


# -- contract registry -----------------------------------------------------------------------------


def write(tmp_path: Path, text: str | bytes, name: str = "contracts.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return path


def test_registry_loads_with_extra_columns_in_any_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name,timezone,contract_id,parent_org\n"
        '"Acme, Gold Plan",America/Los_Angeles,H1234,"Acme Health, Inc."\n'
        "Island,Pacific/Honolulu,H0001,\n",
    )
    registry = ContractRegistry.from_csv(path)
    assert len(registry) == 2
    assert registry["H1234"] == Contract("H1234", "Acme Health, Inc.", "America/Los_Angeles")
    assert registry.parent_org("H0001") is None  # empty parent_org
    assert registry.timezone_name("H0001") == "Pacific/Honolulu"
    assert registry.contract("S9999") == Contract("S9999", None, "America/New_York")


def test_registry_with_utf8_bom_and_crlf(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "\ufeffcontract_id,parent_org,timezone\r\nH1234,Acme,America/Puerto_Rico\r\n",
    )
    registry = ContractRegistry.from_csv(path)
    assert registry["H1234"] == Contract("H1234", "Acme", "America/Puerto_Rico")


def test_registry_skips_blank_lines_and_counts_them_in_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "contract_id,parent_org,timezone\n\nH1234,Acme,America/New_York\n\nH12X4,Bad,UTC\n",
    )
    with pytest.raises(RegistryError) as info:
        ContractRegistry.from_csv(path)
    assert f"{path}:5:" in str(info.value)
    assert "H12X4" in str(info.value)


def test_registry_header_only_is_empty(tmp_path: Path) -> None:
    path = write(tmp_path, "contract_id,parent_org,timezone\n")
    assert len(ContractRegistry.from_csv(path)) == 0


def test_registry_drives_engine_dates(tmp_path: Path) -> None:
    path = write(tmp_path, "contract_id,parent_org,timezone\nH1234,Acme,Pacific/Honolulu\n")
    engine = run(
        [CallEvent("e1", "H1234", "c1", R, ms("2026-01-06T09:30:00Z"), "member_services")],
        ContractRegistry.from_csv(path),
    )
    (row,) = engine.rows()
    assert (row.date, row.parent_org) == ("2026-01-05", "Acme")


@pytest.mark.parametrize(
    ("text", "line", "fragments"),
    [
        # header without a required column
        ("contract_id,parent_org\nH1234,Acme\n", 1, ["timezone"]),
        ("id,parent_org,timezone\nH1234,Acme,UTC\n", 1, ["contract_id"]),
        # bad contract ids
        ("contract_id,parent_org,timezone\nH123,Acme,UTC\n", 2, ["H123"]),
        ("contract_id,parent_org,timezone\nh1234,Acme,UTC\n", 2, ["h1234"]),
        ("contract_id,parent_org,timezone\nA1234,Acme,UTC\n", 2, ["A1234"]),
        ("contract_id,parent_org,timezone\nH12345,Acme,UTC\n", 2, ["H12345"]),
        ("contract_id,parent_org,timezone\n,Acme,UTC\n", 2, ["contract_id"]),
        # unknown or empty time zone
        ("contract_id,parent_org,timezone\nH1234,Acme,Mars/Olympus_Mons\n", 2, ["Mars/Olympus"]),
        ("contract_id,parent_org,timezone\nH1234,Acme,EST+5\n", 2, ["EST+5"]),
        ("contract_id,parent_org,timezone\nH1234,Acme,\n", 2, ["timezone"]),
        # duplicate contract: names both lines
        (
            "contract_id,parent_org,timezone\nH1234,A,UTC\nS0001,B,UTC\nH1234,C,UTC\n",
            4,
            ["H1234", "line 2"],
        ),
        # wrong column counts
        ("contract_id,parent_org,timezone\nH1234,Acme,UTC,extra\n", 2, ["3", "4"]),
        ("contract_id,parent_org,timezone\nH1234,Acme\n", 2, ["3", "2"]),
        ("contract_id,parent_org,timezone,name\nH1234,Acme,UTC\n", 2, ["4", "3"]),
    ],
)
def test_registry_errors_name_file_line_and_problem(
    tmp_path: Path, text: str, line: int, fragments: list[str]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RegistryError) as info:
        ContractRegistry.from_csv(path)
    message = str(info.value)
    assert f"{path}:{line}:" in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\n\n"])
def test_registry_empty_file_is_an_error_naming_the_file(tmp_path: Path, content: bytes) -> None:
    path = write(tmp_path, content)
    with pytest.raises(RegistryError) as info:
        ContractRegistry.from_csv(path)
    assert str(path) in str(info.value)


def test_registry_missing_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.csv"
    with pytest.raises(RegistryError) as info:
        ContractRegistry.from_csv(path)
    assert str(path) in str(info.value)


def test_registry_invalid_utf8_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, b"contract_id,parent_org,timezone\nH1234,Acme \xff,UTC\n")
    with pytest.raises(RegistryError) as info:
        ContractRegistry.from_csv(path)
    assert str(path) in str(info.value)


def test_registry_error_is_a_value_error() -> None:
    assert issubclass(RegistryError, ValueError)
