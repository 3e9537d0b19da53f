"""Daily figures per (contract, line, date) (issue 2, §4): counts, ratios, means and flags."""

from __future__ import annotations

import dataclasses

import pytest

from monitor.engine import ROW_FIELDS, CallFacts, CallState, DailyFigures, EventType
from monitor.engine.aggregates import (
    ANSWER_RATIO_TARGET,
    DISCONNECT_RATE_LIMIT,
    HOLD_LIMIT_SECONDS,
    N_COUNTS,
    add_into,
)
from tests import spec

KEY = ("H1234", "member_services", "2026-01-05")
T0 = 1_767_621_600_000  # 2026-01-05T14:00:00Z
SEC = 1_000


def call(
    *,
    queued: bool = False,
    hold_ms: int | None = None,
    disconnected: bool = False,
    tty: bool | None = None,
    interpreter: bool | None = None,
    skew: bool = False,
) -> CallFacts:
    """Facts of one call. ``hold_ms`` set means answered; tty/interpreter None = not requested,
    True/False = requested and connected in time or not."""
    answered = hold_ms is not None
    hold = hold_ms or 0
    return CallFacts(
        arrival_ms=T0,
        line="member_services",
        requested_live=queued or answered,
        answered=answered,
        answered_within_30s=answered and hold <= 30_000,
        hold_ms=hold,
        disconnected=disconnected,
        tty=tty is not None,
        tty_in_time=bool(tty),
        interpreter=interpreter is not None,
        interpreter_in_time=bool(interpreter),
        clock_skew=skew,
    )


def figures(calls: list[CallFacts], parent_org: str | None = "Acme Health") -> DailyFigures:
    counts = [0] * N_COUNTS
    for facts in calls:
        add_into(counts, facts)
    return DailyFigures.from_counts(KEY, parent_org, counts)


def test_limits_are_the_cms_standards() -> None:
    assert HOLD_LIMIT_SECONDS == 120.0
    assert ANSWER_RATIO_TARGET == 0.80
    assert DISCONNECT_RATE_LIMIT == 0.05


def test_row_fields_are_the_key_columns_then_every_figure_of_section_4() -> None:
    assert ROW_FIELDS == spec.ROW_FIELDS
    assert {f.name for f in dataclasses.fields(DailyFigures)} == set(ROW_FIELDS)


def test_every_field_by_formula() -> None:
    calls = [
        call(),  # IVR only
        call(disconnected=True),  # dropped in the IVR
        call(queued=True),  # queued, abandoned
        call(queued=True, disconnected=True),  # dropped in the queue
        call(hold_ms=10_000),
        call(hold_ms=30_000, tty=True),
        call(hold_ms=30_001, tty=False, interpreter=True),
        call(hold_ms=90_000, interpreter=False),
        call(tty=None, interpreter=True),  # interpreter requested in the IVR
        call(tty=False),
    ]
    row = figures(calls)
    assert row == DailyFigures(
        contract_id="H1234",
        line="member_services",
        date="2026-01-05",
        parent_org="Acme Health",
        calls_received=10,
        calls_queued=6,
        calls_answered=4,
        answered_within_30s=2,
        answered_within_30s_ratio=2 / 6,
        avg_hold_seconds=40.00025,  # (10 000 + 30 000 + 30 001 + 90 000) / 4 ms
        calls_disconnected=2,
        disconnect_rate=0.2,
        tty_calls=3,
        tty_connected_within_7m=1,
        interpreter_calls=3,
        interpreter_connected_within_8m=2,
        compliant_hold=True,
        compliant_answer=False,
        compliant_disconnect=False,
    )


def test_as_dict_keys_in_row_order_with_values() -> None:
    row = figures([call(hold_ms=1_000)], parent_org=None)
    d = row.as_dict()
    assert list(d) == list(ROW_FIELDS)
    assert d["parent_org"] is None
    assert d["avg_hold_seconds"] == 1.0
    assert d["answered_within_30s_ratio"] == 1.0
    assert d["disconnect_rate"] == 0.0
    assert d["compliant_hold"] is True
    assert d["compliant_answer"] is True
    assert d["compliant_disconnect"] is True


# -- zero denominators -------------------------------------------------------------------------


def test_no_queued_calls_gives_null_answer_ratio_hold_and_their_flags() -> None:
    row = figures([call(), call(disconnected=True)])
    assert row.calls_received == 2
    assert row.calls_queued == 0
    assert row.calls_answered == 0
    assert row.answered_within_30s_ratio is None
    assert row.avg_hold_seconds is None
    assert row.compliant_answer is None
    assert row.compliant_hold is None
    # the disconnect rate still has a denominator
    assert row.disconnect_rate == 0.5
    assert row.compliant_disconnect is False


def test_queued_but_none_answered_gives_zero_ratio_and_null_hold() -> None:
    row = figures([call(queued=True), call(queued=True)])
    assert row.answered_within_30s_ratio == 0.0
    assert row.compliant_answer is False
    assert row.avg_hold_seconds is None
    assert row.compliant_hold is None


def test_empty_counts_give_null_everywhere_a_ratio_or_mean_is_involved() -> None:
    row = DailyFigures.from_counts(KEY, None, [0] * N_COUNTS)
    assert row.calls_received == 0
    assert row.answered_within_30s_ratio is None
    assert row.avg_hold_seconds is None
    assert row.disconnect_rate is None
    assert row.compliant_hold is None
    assert row.compliant_answer is None
    assert row.compliant_disconnect is None


def test_zero_is_a_value_not_null() -> None:
    row = figures([call(hold_ms=0)])
    assert row.avg_hold_seconds == 0.0
    assert row.disconnect_rate == 0.0
    assert row.compliant_hold is True
    assert row.compliant_disconnect is True


# -- thresholds exactly at and just past the limits ----------------------------------------------


@pytest.mark.parametrize(
    ("holds", "avg", "compliant"),
    [
        ([120_000], 120.0, True),
        ([120_001], 120.001, False),
        ([119_999], 119.999, True),
        ([60_000, 180_000], 120.0, True),  # mean exactly 120 s
        ([60_000, 180_001], 120.0005, False),
        ([0, 0, 360_000], 120.0, True),
    ],
)
def test_hold_limit_boundary(holds: list[int], avg: float, compliant: bool) -> None:
    row = figures([call(hold_ms=h) for h in holds])
    assert row.avg_hold_seconds == avg
    assert row.compliant_hold is compliant


@pytest.mark.parametrize(
    ("within", "late", "unanswered", "ratio", "compliant"),
    [
        (4, 1, 0, 0.8, True),  # exactly 80 %
        (8, 1, 1, 0.8, True),  # exactly 80 %, an abandoned call in the denominator
        (12, 3, 0, 0.8, True),
        (3, 1, 0, 0.75, False),
        (79, 21, 0, 0.79, False),
        (4, 0, 1, 0.8, True),
        (399, 101, 0, 0.798, False),
        (1, 0, 0, 1.0, True),
    ],
)
def test_answer_ratio_boundary(
    within: int, late: int, unanswered: int, ratio: float, compliant: bool
) -> None:
    calls = (
        [call(hold_ms=30_000)] * within
        + [call(hold_ms=30_001)] * late
        + [call(queued=True)] * unanswered
    )
    row = figures(calls)
    assert row.calls_queued == within + late + unanswered
    assert row.answered_within_30s == within
    assert row.answered_within_30s_ratio == ratio
    assert row.compliant_answer is compliant


@pytest.mark.parametrize(
    ("dropped", "total", "rate", "compliant"),
    [
        (1, 20, 0.05, True),  # exactly 5 %
        (5, 100, 0.05, True),
        (3, 60, 0.05, True),
        (1, 19, 1 / 19, False),
        (6, 100, 0.06, False),
        (51, 1000, 0.051, False),
        (0, 1, 0.0, True),
    ],
)
def test_disconnect_rate_boundary(dropped: int, total: int, rate: float, compliant: bool) -> None:
    calls = [call(disconnected=True)] * dropped + [call()] * (total - dropped)
    row = figures(calls)
    assert row.calls_disconnected == dropped
    assert row.calls_received == total
    assert row.disconnect_rate == rate
    assert row.compliant_disconnect is compliant


def test_floats_are_not_rounded() -> None:
    row = figures(
        [call(hold_ms=1_000), call(hold_ms=2_001), call(hold_ms=40_000), call(disconnected=True)]
        + [call()] * 2
    )
    assert row.avg_hold_seconds == 43_001 / 3 / 1000
    assert row.answered_within_30s_ratio == 2 / 3
    assert row.disconnect_rate == 1 / 6


# -- add and retract -----------------------------------------------------------------------------


def test_retracting_a_call_leaves_nothing_behind() -> None:
    counts = [0] * N_COUNTS
    every_flag = call(hold_ms=45_678, disconnected=True, tty=True, interpreter=False, skew=True)
    add_into(counts, call(hold_ms=1_000))
    before = counts[:]
    add_into(counts, every_flag)
    assert counts != before
    add_into(counts, every_flag, -1)
    assert counts == before
    add_into(counts, call(hold_ms=1_000), -1)
    assert counts == [0] * N_COUNTS


def test_counts_from_call_state_feed_the_figures() -> None:
    """End to end through CallState: two calls, one answered at 30 s, one abandoned."""
    a, b = CallState(), CallState()
    for kind, ts in [
        (EventType.CALL_RECEIVED, T0),
        (EventType.QUEUED, T0 + 10 * SEC),
        (EventType.ANSWERED, T0 + 40 * SEC),
    ]:
        a.observe(kind, ts, "member_services")
    for kind, ts in [
        (EventType.CALL_RECEIVED, T0),
        (EventType.QUEUED, T0 + 10 * SEC),
        (EventType.ABANDONED, T0 + 200 * SEC),
    ]:
        b.observe(kind, ts, "member_services")
    counts = [0] * N_COUNTS
    add_into(counts, a.facts())
    add_into(counts, b.facts())
    row = DailyFigures.from_counts(KEY, None, counts)
    assert (row.calls_received, row.calls_queued, row.calls_answered) == (2, 2, 1)
    assert row.answered_within_30s == 1
    assert row.answered_within_30s_ratio == 0.5
    assert row.avg_hold_seconds == 30.0
    assert row.compliant_answer is False
    assert row.compliant_hold is True
