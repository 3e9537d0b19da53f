"""Daily figures per (contract, line, local date): additive counts and the CMS ratios.

Counts are integers (hold in integer ms) so adding a call and later retracting it leaves exactly
nothing behind; ratios are derived only when a row is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from monitor.engine.calls import CallFacts

HOLD_LIMIT_SECONDS = 120.0
ANSWER_RATIO_TARGET = 0.80
DISCONNECT_RATE_LIMIT = 0.05

DayKey = tuple[str, str, str]  # (contract_id, line, local ISO date)

# Positions in a count vector. Order matches CallFacts' booleans after the line field.
RECEIVED, QUEUED, ANSWERED, WITHIN_30S, HOLD_MS, DISCONNECTED = range(6)
TTY, TTY_IN_TIME, INTERPRETER, INTERPRETER_IN_TIME, CLOCK_SKEW = range(6, 11)
N_COUNTS = 11

# Column order of a report row (JSON keys and CSV header), exactly as the contract lists them.
ROW_FIELDS: tuple[str, ...] = (
    "contract_id",
    "line",
    "date",
    "parent_org",
    "calls_received",
    "calls_queued",
    "calls_answered",
    "answered_within_30s",
    "answered_within_30s_ratio",
    "avg_hold_seconds",
    "calls_disconnected",
    "disconnect_rate",
    "tty_calls",
    "tty_connected_within_7m",
    "interpreter_calls",
    "interpreter_connected_within_8m",
    "compliant_hold",
    "compliant_answer",
    "compliant_disconnect",
)


def add_into(target: list[int], facts: CallFacts, sign: int = 1) -> None:
    """Add (sign=1) or retract (sign=-1) one call's contribution to a count vector in place.

    Spelled out field by field: this runs once per call in every replay.
    """
    target[RECEIVED] += sign
    if facts.requested_live:
        target[QUEUED] += sign
    if facts.answered:
        target[ANSWERED] += sign
        target[HOLD_MS] += sign * facts.hold_ms
        if facts.answered_within_30s:
            target[WITHIN_30S] += sign
    if facts.disconnected:
        target[DISCONNECTED] += sign
    if facts.tty:
        target[TTY] += sign
        if facts.tty_in_time:
            target[TTY_IN_TIME] += sign
    if facts.interpreter:
        target[INTERPRETER] += sign
        if facts.interpreter_in_time:
            target[INTERPRETER_IN_TIME] += sign
    if facts.clock_skew:
        target[CLOCK_SKEW] += sign


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


@dataclass(frozen=True, slots=True)
class DailyFigures:
    """One report row: the CMS figures of a (contract, line, date)."""

    contract_id: str
    line: str
    date: str
    parent_org: str | None
    calls_received: int
    calls_queued: int
    calls_answered: int
    answered_within_30s: int
    answered_within_30s_ratio: float | None
    avg_hold_seconds: float | None
    calls_disconnected: int
    disconnect_rate: float | None
    tty_calls: int
    tty_connected_within_7m: int
    interpreter_calls: int
    interpreter_connected_within_8m: int
    compliant_hold: bool | None
    compliant_answer: bool | None
    compliant_disconnect: bool | None

    @classmethod
    def from_counts(cls, key: DayKey, parent_org: str | None, counts: list[int]) -> DailyFigures:
        contract_id, line, date = key
        answer_ratio = _ratio(counts[WITHIN_30S], counts[QUEUED])
        avg_hold = counts[HOLD_MS] / counts[ANSWERED] / 1000.0 if counts[ANSWERED] else None
        disconnect_rate = _ratio(counts[DISCONNECTED], counts[RECEIVED])
        return cls(
            contract_id=contract_id,
            line=line,
            date=date,
            parent_org=parent_org,
            calls_received=counts[RECEIVED],
            calls_queued=counts[QUEUED],
            calls_answered=counts[ANSWERED],
            answered_within_30s=counts[WITHIN_30S],
            answered_within_30s_ratio=answer_ratio,
            avg_hold_seconds=avg_hold,
            calls_disconnected=counts[DISCONNECTED],
            disconnect_rate=disconnect_rate,
            tty_calls=counts[TTY],
            tty_connected_within_7m=counts[TTY_IN_TIME],
            interpreter_calls=counts[INTERPRETER],
            interpreter_connected_within_8m=counts[INTERPRETER_IN_TIME],
            compliant_hold=None if avg_hold is None else avg_hold <= HOLD_LIMIT_SECONDS,
            compliant_answer=None if answer_ratio is None else answer_ratio >= ANSWER_RATIO_TARGET,
            compliant_disconnect=(
                None if disconnect_rate is None else disconnect_rate <= DISCONNECT_RATE_LIMIT
            ),
        )

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ROW_FIELDS}
