"""Per-call facts (issue 2, §3): arrival, line, live request, hold, disconnect, TTY, interpreter.

Every expected value below is worked out by hand from the spec, not from the code under test.
"""

from __future__ import annotations

import itertools
import random

import pytest

from monitor.engine import CallFacts, CallState, EventType
from monitor.engine.calls import (
    ANSWER_TARGET_MS,
    INTERPRETER_TARGET_MS,
    TTY_TARGET_MS,
)
from monitor.engine.events import DEFAULT_LINE, EVENT_TYPES
from tests.spec import AB, CALL_TYPES, IC, IR, MIN, SEC, STATUS_TYPES, TC, TR, A, D, E, Q, R

T0 = 1_767_621_600_000  # 2026-01-05T14:00:00Z

Ev = tuple[EventType, int, str]  # (type, ts_ms, line)


def facts_of(*events: Ev | tuple[EventType, int]) -> CallFacts:
    """Fold events into a fresh CallState, in the order given, and return its facts."""
    state = CallState()
    for event in events:
        kind, ts = event[0], event[1]
        line = event[2] if len(event) > 2 else DEFAULT_LINE  # type: ignore[misc]
        state.observe(kind, ts, line)
    return state.facts()


# -- constants and event types ---------------------------------------------------------------


def test_targets_are_the_cms_limits_in_ms() -> None:
    assert ANSWER_TARGET_MS == 30_000
    assert TTY_TARGET_MS == 7 * 60_000 == 420_000
    assert INTERPRETER_TARGET_MS == 8 * 60_000 == 480_000


def test_wire_names_cover_exactly_the_contract_types() -> None:
    assert set(EVENT_TYPES) == {*CALL_TYPES, *STATUS_TYPES}
    assert {name for name, t in EVENT_TYPES.items() if t.is_status} == {
        "service_down",
        "service_up",
    }


# -- arrival and line ---------------------------------------------------------------------------


def test_arrival_is_earliest_call_received() -> None:
    f = facts_of((R, T0 + 5 * SEC), (R, T0 + 2 * SEC), (E, T0 + 60 * SEC))
    assert f.arrival_ms == T0 + 2 * SEC


def test_arrival_prefers_call_received_over_an_earlier_event_of_another_type() -> None:
    # queued stamped before call_received: arrival is still the call_received time.
    f = facts_of((Q, T0, "a"), (R, T0 + 5 * SEC, "b"), (A, T0 + 15 * SEC, "c"))
    assert f.arrival_ms == T0 + 5 * SEC
    assert f.line == "b"
    # hold start is the queued time, not arrival: 15 s.
    assert f.hold_ms == 15 * SEC
    assert f.clock_skew is False


def test_arrival_without_call_received_is_earliest_event_of_any_type() -> None:
    f = facts_of((E, T0 + 90 * SEC, "x"), (Q, T0 + 10 * SEC, "y"), (A, T0 + 3 * SEC, "z"))
    assert f.arrival_ms == T0 + 3 * SEC
    assert f.line == "z"


def test_line_comes_from_the_earliest_call_received_not_other_events() -> None:
    f = facts_of(
        (Q, T0 + 10 * SEC, "member_services"),
        (R, T0 + 4 * SEC, "pharmacy_help_desk"),
        (R, T0 + 1 * SEC, "prospective_enrollee"),
        (A, T0 + 20 * SEC, "member_services"),
    )
    assert f.arrival_ms == T0 + 1 * SEC
    assert f.line == "prospective_enrollee"


def test_line_of_a_later_call_received_does_not_override() -> None:
    f = facts_of((R, T0, "pharmacy_help_desk"), (R, T0 + SEC, "member_services"))
    assert f.line == "pharmacy_help_desk"


def test_single_event_call() -> None:
    f = facts_of((R, T0, "pharmacy_help_desk"))
    assert f == CallFacts(
        arrival_ms=T0,
        line="pharmacy_help_desk",
        requested_live=False,
        answered=False,
        answered_within_30s=False,
        hold_ms=0,
        disconnected=False,
        tty=False,
        tty_in_time=False,
        interpreter=False,
        interpreter_in_time=False,
        clock_skew=False,
    )


# -- live request, hold, answer -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "requested"),
    [
        (((R, T0),), False),
        (((R, T0), (E, T0 + MIN)), False),
        (((R, T0), (AB, T0 + MIN)), False),  # hung up in the IVR: never asked for a person
        (((R, T0), (D, T0 + MIN)), False),
        (((R, T0), (Q, T0 + MIN)), True),
        (((R, T0), (Q, T0 + MIN), (AB, T0 + 2 * MIN)), True),
        (((R, T0), (A, T0 + MIN)), True),  # answered without a queued event
        (((A, T0),), True),
    ],
)
def test_requested_live_person_iff_queued_or_answered(
    events: tuple[tuple[EventType, int], ...], requested: bool
) -> None:
    assert facts_of(*events).requested_live is requested


def test_hold_starts_at_earliest_queued() -> None:
    f = facts_of(
        (R, T0),
        (Q, T0 + 20 * SEC),
        (Q, T0 + 10 * SEC),  # a re-queue stamped earlier: the earliest counts
        (A, T0 + 50 * SEC),
        (A, T0 + 70 * SEC),  # a later answered (transfer) does not count
    )
    assert f.answered is True
    assert f.hold_ms == 40 * SEC
    assert f.answered_within_30s is False


def test_hold_starts_at_arrival_when_never_queued() -> None:
    f = facts_of((R, T0), (A, T0 + 25 * SEC))
    assert f.requested_live is True
    assert f.answered is True
    assert f.hold_ms == 25 * SEC
    assert f.answered_within_30s is True


def test_hold_from_arrival_without_call_received() -> None:
    # No call_received, no queued: arrival = earliest event (the answered itself) -> hold 0.
    f = facts_of((A, T0 + 7 * SEC), (E, T0 + MIN))
    assert f.arrival_ms == T0 + 7 * SEC
    assert f.hold_ms == 0
    assert f.clock_skew is False
    assert f.answered_within_30s is True


def test_unanswered_call_has_zero_hold_and_is_not_within_30s() -> None:
    f = facts_of((R, T0), (Q, T0 + SEC), (AB, T0 + 5 * MIN))
    assert f.answered is False
    assert f.hold_ms == 0
    assert f.answered_within_30s is False
    assert f.requested_live is True


@pytest.mark.parametrize(
    ("hold", "within"),
    [(0, True), (1, True), (29_999, True), (30_000, True), (30_001, False), (31_000, False)],
)
def test_answered_within_30s_boundary(hold: int, within: bool) -> None:
    f = facts_of((R, T0 - 5 * SEC), (Q, T0), (A, T0 + hold))
    assert f.hold_ms == hold
    assert f.answered_within_30s is within


def test_negative_hold_is_clamped_to_zero_and_flagged_as_clock_skew() -> None:
    f = facts_of((R, T0), (Q, T0 + 10 * SEC), (A, T0 + 4 * SEC))
    assert f.answered is True
    assert f.hold_ms == 0
    assert f.clock_skew is True
    assert f.answered_within_30s is True  # hold = max(0, gap) = 0 ≤ 30 s


def test_answered_before_call_received_without_queue_is_clock_skew() -> None:
    f = facts_of((R, T0 + 10 * SEC), (A, T0))
    assert f.arrival_ms == T0 + 10 * SEC
    assert f.hold_ms == 0
    assert f.clock_skew is True


def test_zero_gap_is_not_clock_skew() -> None:
    f = facts_of((R, T0), (Q, T0 + SEC), (A, T0 + SEC))
    assert f.hold_ms == 0
    assert f.clock_skew is False


def test_late_earlier_queued_clears_clock_skew() -> None:
    state = CallState()
    state.observe(R, T0, DEFAULT_LINE)
    state.observe(Q, T0 + 10 * SEC, DEFAULT_LINE)
    state.observe(A, T0 + 4 * SEC, DEFAULT_LINE)
    assert state.facts().clock_skew is True
    state.observe(Q, T0 + 1 * SEC, DEFAULT_LINE)
    f = state.facts()
    assert f.clock_skew is False
    assert f.hold_ms == 3 * SEC


def test_unanswered_call_with_queue_after_arrival_order_is_not_skew() -> None:
    assert facts_of((Q, T0 + 10 * SEC), (R, T0 + 20 * SEC)).clock_skew is False


# -- disconnects ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "events",
    [
        ((R, T0), (D, T0 + 5 * SEC)),  # in the IVR
        ((R, T0), (Q, T0 + 5 * SEC), (D, T0 + 60 * SEC)),  # in the queue
        ((R, T0), (Q, T0 + 5 * SEC), (A, T0 + 9 * SEC), (D, T0 + 90 * SEC)),  # mid-conversation
        ((D, T0),),  # only a disconnected event
        ((R, T0), (E, T0 + 5 * SEC), (D, T0 + 6 * SEC)),  # ended and disconnected both present
    ],
)
def test_any_disconnected_event_makes_the_call_disconnected(
    events: tuple[tuple[EventType, int], ...],
) -> None:
    assert facts_of(*events).disconnected is True


@pytest.mark.parametrize("end", [E, AB])
def test_normal_end_or_abandon_is_not_a_disconnect(end: EventType) -> None:
    assert facts_of((R, T0), (Q, T0 + SEC), (end, T0 + MIN)).disconnected is False


# -- TTY and interpreter ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gap", "in_time"),
    [(0, True), (419_999, True), (420_000, True), (420_001, False), (3_600_000, False)],
)
def test_tty_connected_within_7_minutes_boundary(gap: int, in_time: bool) -> None:
    f = facts_of((R, T0), (TR, T0 + MIN), (TC, T0 + MIN + gap))
    assert f.tty is True
    assert f.tty_in_time is in_time
    assert f.interpreter is False


@pytest.mark.parametrize(
    ("gap", "in_time"),
    [(0, True), (479_999, True), (480_000, True), (480_001, False), (3_600_000, False)],
)
def test_interpreter_connected_within_8_minutes_boundary(gap: int, in_time: bool) -> None:
    f = facts_of((R, T0), (IR, T0 + MIN), (IC, T0 + MIN + gap))
    assert f.interpreter is True
    assert f.interpreter_in_time is in_time
    assert f.tty is False


def test_tty_requested_never_connected_counts_but_not_in_time() -> None:
    f = facts_of((R, T0), (TR, T0 + SEC), (E, T0 + 20 * MIN))
    assert (f.tty, f.tty_in_time) == (True, False)


def test_interpreter_requested_never_connected_counts_but_not_in_time() -> None:
    f = facts_of((R, T0), (IR, T0 + SEC), (E, T0 + 20 * MIN))
    assert (f.interpreter, f.interpreter_in_time) == (True, False)


def test_tty_connected_without_request_does_not_count() -> None:
    f = facts_of((R, T0), (TC, T0 + SEC))
    assert (f.tty, f.tty_in_time) == (False, False)


def test_interpreter_connected_without_request_does_not_count() -> None:
    f = facts_of((R, T0), (IC, T0 + SEC))
    assert (f.interpreter, f.interpreter_in_time) == (False, False)


def test_tty_uses_earliest_request_and_earliest_connect() -> None:
    # earliest request T0+1m, earliest connect T0+8m5s -> gap 7m5s > 7m, though the later
    # request (T0+2m) would have been within 7 minutes of it.
    f = facts_of(
        (R, T0),
        (TR, T0 + 2 * MIN),
        (TR, T0 + MIN),
        (TC, T0 + 9 * MIN),
        (TC, T0 + 8 * MIN + 5 * SEC),
    )
    assert (f.tty, f.tty_in_time) == (True, False)


def test_interpreter_uses_earliest_request_and_earliest_connect() -> None:
    f = facts_of(
        (R, T0),
        (IR, T0 + MIN),
        (IR, T0 + 5 * MIN),
        (IC, T0 + 12 * MIN),
        (IC, T0 + 9 * MIN),  # earliest connect: exactly 8 min after earliest request
    )
    assert (f.interpreter, f.interpreter_in_time) == (True, True)


def test_tty_and_interpreter_are_independent() -> None:
    f = facts_of(
        (R, T0),
        (TR, T0 + MIN),
        (TC, T0 + MIN + 420_001),
        (IR, T0 + 2 * MIN),
        (IC, T0 + 2 * MIN + 480_000),
    )
    assert (f.tty, f.tty_in_time, f.interpreter, f.interpreter_in_time) == (
        True,
        False,
        True,
        True,
    )


def test_tty_and_interpreter_do_not_affect_live_request_or_hold() -> None:
    f = facts_of((R, T0), (TR, T0 + SEC), (TC, T0 + 2 * SEC), (IR, T0 + 3 * SEC))
    assert f.requested_live is False
    assert f.answered is False
    assert f.hold_ms == 0


# -- order independence ----------------------------------------------------------------------------


RICH_CALL: list[Ev] = [
    (R, T0 + 2 * SEC, "pharmacy_help_desk"),
    (R, T0 + 9 * SEC, "member_services"),
    (Q, T0 + 40 * SEC, "member_services"),
    (Q, T0 + 30 * SEC, "member_services"),
    (A, T0 + 60 * SEC, "member_services"),
    (A, T0 + 95 * SEC, "member_services"),
    (TR, T0 + 100 * SEC, "member_services"),
    (TC, T0 + 100 * SEC + 420_000, "member_services"),
    (IR, T0 + 110 * SEC, "member_services"),
    (IC, T0 + 110 * SEC + 480_001, "member_services"),
    (D, T0 + 20 * MIN, "member_services"),
    (E, T0 + 21 * MIN, "member_services"),
]

RICH_FACTS = CallFacts(
    arrival_ms=T0 + 2 * SEC,
    line="pharmacy_help_desk",
    requested_live=True,
    answered=True,
    answered_within_30s=True,  # 60 s - 30 s = 30 000 ms exactly
    hold_ms=30_000,
    disconnected=True,
    tty=True,
    tty_in_time=True,
    interpreter=True,
    interpreter_in_time=False,
    clock_skew=False,
)


def test_rich_call_facts_in_given_order() -> None:
    assert facts_of(*RICH_CALL) == RICH_FACTS


def test_rich_call_facts_in_every_order_sampled() -> None:
    rng = random.Random(20260105)
    for _ in range(300):
        events = RICH_CALL[:]
        rng.shuffle(events)
        assert facts_of(*events) == RICH_FACTS


def test_all_permutations_of_a_small_call_give_same_facts() -> None:
    events: list[Ev] = [
        (Q, T0 + 5 * SEC, "a"),
        (A, T0 + 36 * SEC, "b"),
        (R, T0 + SEC, "c"),
        (D, T0 + MIN, "d"),
        (TR, T0, "e"),  # earlier than call_received: must not define arrival
    ]
    expected = CallFacts(T0 + SEC, "c", True, True, False, 31 * SEC, True, True, False, False,
                         False, False)  # fmt: skip
    for perm in itertools.permutations(events):
        assert facts_of(*perm) == expected


def test_repeated_events_do_not_change_facts() -> None:
    once = facts_of(*RICH_CALL)
    assert facts_of(*(RICH_CALL * 3)) == once


def test_observe_reports_whether_state_changed() -> None:
    state = CallState()
    assert state.observe(R, T0, DEFAULT_LINE) is True
    assert state.observe(R, T0, DEFAULT_LINE) is False  # same time again
    assert state.observe(R, T0 + SEC, DEFAULT_LINE) is False  # later call_received
    assert state.observe(Q, T0 + SEC, DEFAULT_LINE) is True  # first of its type
    assert state.observe(Q, T0 - SEC, DEFAULT_LINE) is True  # earlier queued (and any)
    assert state.event_time(Q) == T0 - SEC
    assert state.event_time(A) is None
    assert state.arrival_ms == T0


@pytest.mark.parametrize(
    "events",
    [
        # Two call_received with the same ts on different lines.
        [(R, T0, "member_services"), (R, T0, "pharmacy_help_desk")],
        # No call_received; the earliest ts is shared by two events on different lines.
        [(Q, T0, "member_services"), (A, T0, "pharmacy_help_desk")],
    ],
)
def test_line_with_tied_arrival_events_does_not_depend_on_arrival_order(
    events: list[Ev],
) -> None:
    # §3: the facts come from the call's events "in any arrival order"; §7: shuffled input must
    # give the same figures. With two equally early arrival-defining events the line must still
    # be one fixed choice, whichever event arrives first.
    assert facts_of(*events).line == facts_of(*reversed(events)).line


def test_state_size_is_fixed_whatever_the_number_of_events() -> None:
    state = CallState()
    before = len(state.earliest)
    for i in range(1_000):
        state.observe(EventType(i % 10), T0 + i, f"line{i % 7}")
    assert len(state.earliest) == before == 10
    assert not hasattr(state, "__dict__")
